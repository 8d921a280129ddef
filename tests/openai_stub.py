"""A real OpenAI-compatible HTTP server on 127.0.0.1 with scripted answers, for litellm tests.

Not a mock of litellm: requests go through litellm's real client over real sockets. Answers are
chosen by a function of the prompt, so tests can script labels, errors (HTTP 500/429) and delays.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = str | tuple[int, str]  # text, or (HTTP status, body) for errors


class OpenAIStub:
    def __init__(self, answer: Callable[[str], Answer], delay: float = 0.0) -> None:
        self.answer, self.delay = answer, delay
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                prompt = body["messages"][-1]["content"]
                stub.requests.append(prompt)
                if stub.delay:
                    time.sleep(stub.delay)
                result = stub.answer(prompt)
                status, text = result if isinstance(result, tuple) else (200, result)
                if status != 200:
                    payload = json.dumps({"error": {"message": text, "type": "server_error"}}).encode()
                else:
                    payload = json.dumps({
                        "id": "stub", "object": "chat.completion", "created": 0, "model": body.get("model", "stub"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
                    }).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "OpenAIStub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
