"""Async LLM calls through litellm: bounded concurrency, per-request timeout, retries with backoff,
load spread over several endpoints, and usage accounting.

Every call goes through ``litellm.Router`` (one deployment per ``api_base``), which owns retries with
backoff on 429, 5xx and timeouts; a semaphore bounds how many calls are in flight.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@dataclass
class LLMStats:
    calls: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
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


class LLMClient:
    """``await client.complete(prompt)`` -> text. One client per pipeline run.

    Args:
        model: a litellm model name: ``hosted_vllm/Qwen2.5-Coder-32B-Instruct``, ``openai/gpt-4o-mini``,
            ``anthropic/claude-...``, ``openai/<name>`` for any OpenAI-compatible server.
        api_bases: endpoints to spread load over (``None``/empty: the provider's default).
        concurrency: calls in flight at most.
        timeout: seconds per request attempt.
        retries: attempts after the first, with backoff, on 429 / 5xx / timeouts / connection errors.
        temperature, max_tokens: sampling settings.
    """

    def __init__(self, model: str, api_bases: list[str] | None = None, concurrency: int = 16, timeout: float = 60.0,
                 retries: int = 3, temperature: float = 0.7, max_tokens: int = 1024, api_key: str | None = None) -> None:
        import litellm

        litellm.suppress_debug_info = True
        bases = list(api_bases or [None])
        deployments = []
        for base in bases:
            params = {"model": model, "timeout": timeout}
            if base:
                params["api_base"] = base
                params["api_key"] = api_key or os.environ.get("OPENAI_API_KEY", "sk-local")
            elif api_key:
                params["api_key"] = api_key
            deployments.append({"model_name": "data_gen", "litellm_params": params})
        self.router = litellm.Router(model_list=deployments, num_retries=retries, retry_after=0,
                                     timeout=timeout, routing_strategy="simple-shuffle",
                                     allowed_fails=max(3, 10 * retries), cooldown_time=0)
        self.model = model
        self.semaphore = asyncio.Semaphore(concurrency)
        self.temperature, self.max_tokens = temperature, max_tokens
        self.stats = LLMStats()

    async def complete(self, prompt: str, temperature: float | None = None, max_tokens: int | None = None) -> str:
        """The model's answer text; raises :class:`LLMError` after the retries are spent."""
        import litellm

        async with self.semaphore:
            start = time.perf_counter()
            try:
                response = await self.router.acompletion(
                    model="data_gen", messages=[{"role": "user", "content": prompt}],
                    temperature=self.temperature if temperature is None else temperature,
                    max_tokens=max_tokens or self.max_tokens,
                )
            except Exception as exc:  # noqa: BLE001 - every provider error becomes one counted LLMError
                self.stats.failures += 1
                reason = _reason(exc)
                self.stats.failure_reasons[reason] = self.stats.failure_reasons.get(reason, 0) + 1
                raise LLMError(reason, str(exc)[:300]) from None
            finally:
                self.stats.seconds += time.perf_counter() - start
        self.stats.calls += 1
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.stats.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.stats.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        try:
            cost = litellm.completion_cost(completion_response=response)
            if cost:
                self.stats.cost = (self.stats.cost or 0.0) + float(cost)
        except Exception:  # noqa: BLE001 - unknown models (local servers) have no price
            pass
        return response.choices[0].message.content or ""
