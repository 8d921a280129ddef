"""A lean async client for OpenAI-compatible chat endpoints (vLLM, llama.cpp, SGLang, OpenAI itself).

Why not litellm here: measured on 2 cores (``benchmarks/data_gen_throughput.py``), a call through
``litellm.Router`` costs 5-7 ms of client CPU, which caps one process at under 200 calls/s, far below
what a vLLM server sustains (a 100 ms server at concurrency 64 answers 640/s). This client posts the
JSON body with aiohttp and reads ``choices[0].message.content`` and ``usage``: about 0.4 ms per call.
litellm stays the path for every other provider (see :mod:`st_code.llm.client`), and for prices.

It keeps what the Router gave: retries with exponential backoff and jitter on 429 / 5xx / timeouts /
dropped connections (honouring ``Retry-After``), and load spread over several endpoints (the one with
the fewest calls in flight; a retry moves to another endpoint when there is one).
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass

#: litellm provider prefixes that speak the OpenAI chat API when given an ``api_base``.
OPENAI_COMPATIBLE_PROVIDERS = ("openai", "hosted_vllm", "custom_openai", "llamafile", "lm_studio")
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class HTTPCallError(RuntimeError):
    """One failed call; ``reason`` is timeout, rate_limit, server_error, bad_request or connection."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.retry_after = reason, retry_after


def served_model_name(model: str) -> str:
    """``hosted_vllm/Qwen/Qwen2.5-Coder-32B-Instruct`` -> ``Qwen/Qwen2.5-Coder-32B-Instruct`` (what the server serves)."""
    provider, _, rest = model.partition("/")
    return rest if provider in OPENAI_COMPATIBLE_PROVIDERS and rest else model


@dataclass
class Endpoint:
    url: str  # .../chat/completions
    in_flight: int = 0


class OpenAIHTTPClient:
    """``await client.chat(prompt, temperature, max_tokens)`` -> ``(text, prompt_tokens, completion_tokens)``.

    Create and use it inside one event loop; ``await client.aclose()`` when done.
    """

    def __init__(self, model: str, api_bases: list[str], api_key: str | None = None, timeout: float = 60.0,
                 retries: int = 3, backoff: float = 0.25, max_backoff: float = 8.0) -> None:
        if not api_bases:
            raise ValueError("the OpenAI-compatible client needs at least one api_base (e.g. http://host:8000/v1)")
        self.model = served_model_name(model)
        self.endpoints = [Endpoint(base.rstrip("/") + "/chat/completions") for base in api_bases]
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout, self.retries, self.backoff, self.max_backoff = timeout, retries, backoff, max_backoff
        self._session = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turn = 0

    def _http(self):
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            # a session belongs to one event loop; a new loop (a second asyncio.run) needs its own
            # limit=0: the caller's semaphore bounds calls in flight, the pool must not queue them again
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=self.headers,
                                                  timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._loop = loop
        return self._session

    def _pick(self, avoid: Endpoint | None) -> Endpoint:
        candidates = [e for e in self.endpoints if e is not avoid] or self.endpoints
        least = min(e.in_flight for e in candidates)
        tied = [e for e in candidates if e.in_flight == least]
        self._turn += 1
        return tied[self._turn % len(tied)]

    async def chat(self, prompt: str, temperature: float, max_tokens: int) -> tuple[str, int, int]:
        """The answer text and token usage; raises :class:`HTTPCallError` once the retries are spent."""
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": prompt}],
                           "temperature": temperature, "max_tokens": max_tokens}, ensure_ascii=False).encode()
        last: Endpoint | None = None
        for attempt in range(self.retries + 1):
            endpoint = self._pick(last)
            try:
                return await self._post(endpoint, body)
            except HTTPCallError as exc:
                if exc.reason == "bad_request" or attempt == self.retries:
                    raise
                delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random())
                if exc.retry_after is not None:
                    delay = min(self.max_backoff * 4, max(delay, exc.retry_after))
                last = endpoint
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _post(self, endpoint: Endpoint, body: bytes) -> tuple[str, int, int]:
        import aiohttp

        endpoint.in_flight += 1
        try:
            async with self._http().post(endpoint.url, data=body) as response:
                payload = await response.read()
                status, retry_after = response.status, response.headers.get("Retry-After")
        except asyncio.TimeoutError:
            raise HTTPCallError("timeout", f"no answer from {endpoint.url} within {self.timeout}s") from None
        except aiohttp.ClientError as exc:
            raise HTTPCallError("connection", f"{endpoint.url}: {type(exc).__name__}: {exc}") from None
        finally:
            endpoint.in_flight -= 1
        if status != 200:
            detail = f"HTTP {status} from {endpoint.url}: {payload[:200].decode('utf-8', 'replace')}"
            if status == 429:
                raise HTTPCallError("rate_limit", detail, _seconds(retry_after))
            if status in RETRY_STATUSES or status >= 500:
                raise HTTPCallError("server_error", detail, _seconds(retry_after))
            raise HTTPCallError("bad_request", detail)
        try:
            data = json.loads(payload)
            text = data["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise HTTPCallError("server_error", f"malformed response from {endpoint.url}: {payload[:200]!r}") from None
        usage = data.get("usage") or {}
        return text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
