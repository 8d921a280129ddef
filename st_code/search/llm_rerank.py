"""An optional LLM stage after the ranking: the head of each query's ranked candidates is shown to a
chat model (through the project's LLM client: any litellm provider, or an OpenAI-compatible server such
as vLLM or llama.cpp), which answers with the candidates' numbers, most relevant first.

One call per query reads every candidate of the head together (a listwise reranker): the model can
compare them, which a cross-encoder scoring pairs one at a time cannot. A malformed answer keeps what it
can (the valid numbers, in the model's order; the rest after them in the ranking's order), and a failed
call (after the client's retries) keeps the ranking's order: a search never fails because the LLM did.
Each hit's ``similarity`` stays its cosine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from typing import Any

from st_code.errors import UsageError
from st_code.search.ranking import head_then_tail

logger = logging.getLogger(__name__)

#: Lines of a unit shown to the model (its head: signature, doc comment, the start of the body).
UNIT_LINES = 30
PROMPT = """You rank code search results. Query: {query}

Candidates (file, symbol, code):
{candidates}

Which candidates answer the query best? Reply with a JSON list of all {count} candidate numbers, most \
relevant first, and nothing else, e.g. [2, 1, 3]."""


def candidate_text(number: int, unit: dict[str, Any]) -> str:
    """One numbered candidate as the model reads it: path and symbol, then the unit's first lines."""
    lines = (unit.get("text") or "").split("\n")
    code = "\n".join(lines[:UNIT_LINES]) + ("\n..." if len(lines) > UNIT_LINES else "")
    header = f"[{number}] {unit['path']} {unit.get('symbol') or ''}".rstrip()
    return f"{header}\n{code}"


def parse_order(answer: str, count: int) -> list[int] | None:
    """0-based candidate positions from an answer such as ``[3, 1, 2]`` (numbers 1..count, first mention
    wins, out-of-range ones dropped); ``None`` when the answer holds no usable number."""
    match = re.search(r"\[[\d\s,]*\]", answer)
    try:
        numbers = json.loads(match.group(0)) if match else [int(n) for n in re.findall(r"\d+", answer)]
    except ValueError:
        numbers = []
    order: list[int] = []
    for number in numbers:
        if isinstance(number, int) and 1 <= number <= count and number - 1 not in order:
            order.append(number - 1)
    return order or None


class LLMReranker:
    """Reorder the first ``candidates`` of a ranked list by a chat model's listwise judgement.

    Args:
        model: a litellm model name (``openai/gpt-4o-mini``, ``hosted_vllm/Qwen/Qwen2.5-Coder-7B-Instruct``,
            ``openai/<name>`` with ``api_base`` for any OpenAI-compatible server).
        candidates: how many of the ranking's best the model reads (one prompt; more: longer prompts).
        api_base: the server's URL for self-hosted models (vLLM, llama.cpp, SGLang).
        timeout, retries: per call, as the LLM client takes them.
    """

    def __init__(self, model: str, candidates: int = 10, api_base: str | None = None, timeout: float = 60.0,
                 retries: int = 2) -> None:
        from st_code.llm.client import LLMClient

        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise UsageError(f"--rerank-candidates must be a whole number >= 1, got {candidates!r}")
        if not model:
            raise UsageError("--rerank llm:MODEL needs a model name, e.g. llm:openai/gpt-4o-mini")
        self.candidates = candidates
        self.client = LLMClient(model, [api_base] if api_base else None, concurrency=4, timeout=timeout,
                                retries=retries, temperature=0.0, max_tokens=16 + 6 * candidates)
        self.failures = 0
        self._loop = asyncio.new_event_loop()  # one loop for the client's connections, in its own thread
        threading.Thread(target=self._loop.run_forever, daemon=True, name="st-code-llm-rerank").start()

    def rerank(self, query: str, ranked: list[tuple[dict, float, float | None]]
               ) -> list[tuple[dict, float, float | None]]:
        """``ranked`` (unit, score, cosine) best first -> the head in the model's order (scores count down
        from the head's length), the rest after it with their scores shifted below."""
        head, tail = ranked[:self.candidates], ranked[self.candidates:]
        if len(head) < 2:
            return ranked
        prompt = PROMPT.format(query=query, count=len(head), candidates="\n\n".join(
            candidate_text(i + 1, unit) for i, (unit, _, _) in enumerate(head)))
        order = None
        try:
            answer = asyncio.run_coroutine_threadsafe(self.client.complete(prompt), self._loop).result()
            order = parse_order(answer, len(head))
            if order is None:
                logger.warning("the LLM reranker's answer named no candidate (%r); keeping the ranking's order",
                               answer[:200])
        except Exception as exc:  # noqa: BLE001 - an LLMError after the retries, or a transport error
            logger.warning("the LLM reranker failed (%s); keeping the ranking's order", exc)
        if order is None:
            self.failures += 1
            return ranked
        order += [i for i in range(len(head)) if i not in order]
        return head_then_tail([(head[i][0], float(len(head) - rank), head[i][2]) for rank, i in enumerate(order)],
                              tail)

    def close(self) -> None:
        """Close the client's connections and stop its loop."""
        asyncio.run_coroutine_threadsafe(self.client.aclose(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)


__all__ = ["LLMReranker", "PROMPT", "UNIT_LINES", "candidate_text", "parse_order"]
