"""Async LLM calls: bounded concurrency, per-request timeout, retries with backoff, load spread over
several endpoints, and usage accounting.

Two ways out, same behaviour: ``litellm.Router`` (one deployment per ``api_base``; retries with
backoff on 429, 5xx and timeouts) reaches every provider litellm knows; OpenAI-compatible servers
given by ``api_base`` (vLLM, llama.cpp, SGLang...) go through :mod:`st_code.llm.openai_http` by default,
because litellm's per-call CPU (5-7 ms) caps throughput far below what such a server sustains.
A semaphore bounds how many calls are in flight either way.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from st_code.llm.openai_http import OPENAI_COMPATIBLE_PROVIDERS, HTTPCallError, OpenAIHTTPClient


def import_litellm():
    """litellm, imported with its local price table: without LITELLM_LOCAL_MODEL_COST_MAP it fetches
    the table from the network at import. Set here, where litellm is used, not when st-code is
    imported (an explicit value in the environment is left alone)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


@dataclass
class LLMStats:
    calls: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None  # set by LLMClient.cost()
    seconds: float = 0.0
    failure_reasons: dict[str, int] = field(default_factory=dict)


class LLMError(RuntimeError):
    """A call that failed after all retries; ``reason`` is a short key (timeout, rate_limit, server_error...)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _reason(exc: Exception) -> str:
    name = type(exc).__name__.lower()
    for key, words in (("timeout", ("timeout",)), ("rate_limit", ("ratelimit",)), ("server_error",
                       ("internalserver", "serviceunavailable", "apierror", "badgateway")),
                       ("bad_request", ("badrequest", "notfound", "unprocessable")), ("connection", ("connection",))):
        if any(w in name for w in words):
            return key
    return name or "error"


CLIENTS = ("auto", "litellm", "openai-compatible")


def check_call_settings(concurrency: int, timeout: float, retries: int) -> None:
    """Settings that would make no call at all, or wait forever, are refused up front."""
    import math

    from st_code.errors import UsageError

    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise UsageError(f"concurrency must be a whole number of calls in flight, >= 1 (got {concurrency!r})")
    if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise UsageError(f"timeout must be a positive number of seconds (got {timeout!r}); there is no 'no timeout'")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise UsageError(f"retries must be a whole number >= 0 (got {retries!r})")


def choose_client(model: str, api_bases: list[str] | None, client: str = "auto") -> str:
    """``auto``: the lean OpenAI-compatible client for ``openai/``, ``hosted_vllm/``... models with an
    ``api_base``; litellm for everything else (hosted providers, no ``api_base``)."""
    if client not in CLIENTS:
        raise ValueError(f"unknown client {client!r}; use one of {CLIENTS}")
    if client == "openai-compatible" and not api_bases:
        raise ValueError("--client openai-compatible needs --api-base (the server's URL, e.g. http://host:8000/v1)")
    if client != "auto":
        return client
    provider = model.split("/", 1)[0] if "/" in model else ""
    return "openai-compatible" if api_bases and provider in OPENAI_COMPATIBLE_PROVIDERS else "litellm"


def _api_key_from_env(model: str) -> str | None:
    provider = model.split("/", 1)[0].upper() if "/" in model else "OPENAI"
    return os.environ.get(f"{provider}_API_KEY") or os.environ.get("OPENAI_API_KEY")


class LLMClient:
    """``await client.complete(prompt)`` -> text. One client per pipeline run; ``await aclose()`` at the end.

    Args:
        model: a litellm model name: ``hosted_vllm/Qwen/Qwen2.5-Coder-32B-Instruct``, ``openai/gpt-4o-mini``,
            ``anthropic/claude-...``, ``openai/<name>`` for any OpenAI-compatible server.
        api_bases: endpoints to spread load over (``None``/empty: the provider's default).
        concurrency: calls in flight at most.
        timeout: seconds per request attempt.
        retries: attempts after the first, with backoff, on 429 / 5xx / timeouts / connection errors.
        temperature, max_tokens: sampling settings.
        client: ``auto`` (default), ``litellm`` or ``openai-compatible``; see :func:`choose_client`.
    """

    def __init__(self, model: str, api_bases: list[str] | None = None, concurrency: int = 16, timeout: float = 60.0,
                 retries: int = 3, temperature: float = 0.7, max_tokens: int = 1024, api_key: str | None = None,
                 client: str = "auto") -> None:
        check_call_settings(concurrency, timeout, retries)
        self.model = model
        self.retries = retries
        self.kind = choose_client(model, api_bases, client)
        self.semaphore = asyncio.Semaphore(concurrency)
        self.temperature, self.max_tokens = temperature, max_tokens
        self.stats = LLMStats()
        self.router = self.http = None
        if self.kind == "openai-compatible":
            self.http = OpenAIHTTPClient(model, list(api_bases or []), api_key or _api_key_from_env(model),
                                         timeout=timeout, retries=retries)
        else:
            self.router = _litellm_router(model, api_bases, timeout, retries, api_key)

    async def complete(self, prompt: str, temperature: float | None = None, max_tokens: int | None = None) -> str:
        """The model's answer text; raises :class:`LLMError` after the retries are spent. An answer with
        empty content is a transient failure (a server hiccup, a truncated reply): asked again, and if
        every try comes back empty, ``LLMError("empty_answer")`` (not journaled, so a rerun asks again)."""
        temperature = self.temperature if temperature is None else temperature
        max_tokens = max_tokens or self.max_tokens
        for attempt in range(self.retries + 1):
            text = await self._once(prompt, temperature, max_tokens)
            if text and text.strip():
                return text
            if attempt < self.retries:
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        self.stats.failures += 1
        self.stats.failure_reasons["empty_answer"] = self.stats.failure_reasons.get("empty_answer", 0) + 1
        raise LLMError("empty_answer", f"{self.model} answered with empty content {self.retries + 1} time(s)")

    async def _once(self, prompt: str, temperature: float, max_tokens: int) -> str:
        async with self.semaphore:
            start = time.perf_counter()
            try:
                if self.http is not None:
                    text, prompt_tokens, completion_tokens = await self.http.chat(prompt, temperature, max_tokens)
                else:
                    text, prompt_tokens, completion_tokens = await self._litellm(prompt, temperature, max_tokens)
            except Exception as exc:  # noqa: BLE001 - every provider error becomes one counted LLMError
                self.stats.failures += 1
                reason = exc.reason if isinstance(exc, HTTPCallError) else _reason(exc)
                self.stats.failure_reasons[reason] = self.stats.failure_reasons.get(reason, 0) + 1
                raise LLMError(reason, str(exc)[:300]) from None
            finally:
                self.stats.seconds += time.perf_counter() - start
        self.stats.calls += 1
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        return text

    async def _litellm(self, prompt: str, temperature: float, max_tokens: int) -> tuple[str, int, int]:
        response = await self.router.acompletion(model="data_gen", messages=[{"role": "user", "content": prompt}],
                                                 temperature=temperature, max_tokens=max_tokens)
        usage = getattr(response, "usage", None)
        return (response.choices[0].message.content or "", int(getattr(usage, "prompt_tokens", 0) or 0),
                int(getattr(usage, "completion_tokens", 0) or 0))

    def cost(self) -> float | None:
        """Dollars for the tokens so far at litellm's price for ``model``; ``None`` when litellm has no price
        (local servers). Priced once on the totals, not per call, to keep litellm off the hot path."""
        litellm = import_litellm()

        if not (self.stats.prompt_tokens or self.stats.completion_tokens):
            return None
        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=self.model, prompt_tokens=self.stats.prompt_tokens,
                completion_tokens=self.stats.completion_tokens)
        except Exception:  # noqa: BLE001 - unknown models have no price
            return None
        self.stats.cost = float(prompt_cost) + float(completion_cost) or None
        return self.stats.cost

    async def aclose(self) -> None:
        """Close the HTTP connections (call inside the event loop that made the calls)."""
        if self.http is not None:
            await self.http.aclose()


def _litellm_router(model: str, api_bases: list[str] | None, timeout: float, retries: int, api_key: str | None):
    litellm = import_litellm()

    litellm.suppress_debug_info = True
    deployments = []
    for base in list(api_bases or [None]):
        params = {"model": model, "timeout": timeout}
        if base:
            params["api_base"] = base
            # local OpenAI-compatible servers take any key; litellm's openai client insists on one
            params["api_key"] = api_key or os.environ.get("OPENAI_API_KEY", "sk-local")
        elif api_key:
            params["api_key"] = api_key
        deployments.append({"model_name": "data_gen", "litellm_params": params})
    try:
        return litellm.Router(model_list=deployments, num_retries=retries, retry_after=0, timeout=timeout,
                              routing_strategy="simple-shuffle", allowed_fails=max(3, 10 * retries), cooldown_time=0)
    except Exception as exc:  # noqa: BLE001 - litellm raises its own error types for an unknown provider
        from st_code.errors import UsageError

        detail = str(exc).split("\n")[0].replace("litellm.BadRequestError: ", "")[:200]
        raise UsageError(f"litellm cannot call the model {model!r} ({detail}); name it with a provider prefix, e.g. "
                         "openai/gpt-4o-mini, hosted_vllm/<served name> with --api-base, anthropic/<model>") from None
