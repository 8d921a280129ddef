"""One journaled question to an LLM: asked once, its parsed answer (or why it was rejected) written
to the journal, so a rerun after a crash asks nothing twice. A call that failed after its retries
is not journaled: the next run asks again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from st_code.llm.answers import Rejected
from st_code.llm.client import LLMClient, LLMError
from st_code.llm.journal import Journal, work_key


@dataclass
class Answer:
    """``status`` is ``ok`` (``value`` holds the parsed answer), ``rejected`` (``reason``: the answer broke
    the prompt's rules) or ``failed`` (``reason``: ``llm_<why>``, the call itself failed)."""

    status: str
    value: Any = None
    reason: str | None = None


async def ask(client: LLMClient, journal: Journal, stage: str, key_parts: tuple, prompt: str,
              parse: Callable[[str], Any], task: str | None = None, max_tokens: int | None = None,
              temperature: float | None = None) -> Answer:
    """Ask ``prompt`` and ``parse`` the answer (raising :class:`Rejected` to reject it); journaled under
    ``work_key(stage, *key_parts, prompt)``. ``max_tokens`` / ``temperature``: the client's by default."""
    journal_key = work_key(stage, *key_parts, prompt)
    done = journal.get(journal_key)
    if done is None:
        try:
            text = await client.complete(prompt, temperature=temperature, max_tokens=max_tokens)
        except LLMError as exc:
            return Answer("failed", reason=f"llm_{exc.reason}")
        try:
            done = {"key": journal_key, "stage": stage, "status": "ok", "value": parse(text), "task": task}
        except Rejected as exc:
            done = {"key": journal_key, "stage": stage, "status": "rejected", "reason": exc.reason, "task": task,
                    "output": (text or "")[:300]}  # what the model said, to see why
        journal.write(done)
    if done["status"] != "ok":
        return Answer("rejected", reason=done["reason"])
    return Answer("ok", value=_value(done))


def _value(record: dict[str, Any]) -> Any:
    """A journal record's answer; st-code 0.1 stored it under a per-stage name."""
    for name in ("value", "output", "tasks", "recipe"):
        if name in record:
            return record[name]
    raise KeyError(f"journal record {record.get('key')} holds no answer")


__all__ = ["Answer", "ask"]
