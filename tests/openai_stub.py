"""A real OpenAI-compatible HTTP server on 127.0.0.1 with scripted answers, for LLM-client tests.

Not a mock: requests go through the real clients (litellm, aiohttp) over real sockets, HTTP/1.1 with
keep-alive as vLLM and llama.cpp serve. Answers are chosen by a function of the prompt, so tests
can script labels, errors (HTTP 500/429) and delays. The server is aiohttp's, on its own event loop
in a background thread, so a delayed answer holds no thread and a benchmark at concurrency 64 is
not limited by the server.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

Answer = str | tuple[int, str]  # text, or (HTTP status, body): an error, or with 200 a raw (malformed) body


class OpenAIStub:
    def __init__(self, answer: Callable[[str], Answer], delay: float = 0.0) -> None:
        self.answer, self.delay = answer, delay
        self.requests: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = None

    async def _chat(self, request):
        from aiohttp import web

        body = await request.json()
        prompt = body["messages"][-1]["content"]
        self.requests.append(prompt)
        if self.delay:
            await asyncio.sleep(self.delay)
        result = self.answer(prompt)
        if isinstance(result, tuple) and result[0] == 200:
            return web.Response(text=result[1], content_type="application/json")  # raw, e.g. malformed JSON
        status, text = result if isinstance(result, tuple) else (200, result)
        if status != 200:
            return web.json_response({"error": {"message": text, "type": "server_error"}}, status=status)
        return web.json_response({
            "id": "stub", "object": "chat.completion", "created": 0, "model": body.get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        })

    async def _start(self) -> int:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        return self._runner.addresses[0][1]

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "OpenAIStub":
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
