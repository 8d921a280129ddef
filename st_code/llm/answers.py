"""What every LLM answer goes through: think blocks and code fences off, and a :class:`Rejected`
with a short stable reason for an answer that breaks its prompt's rules (counted, never kept)."""

from __future__ import annotations

import re

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"^\s*```[\w+#.-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)


class Rejected(ValueError):
    """An LLM output that breaks the prompt's rules; ``reason`` is a short stable key for counting."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def clean(text: str | None) -> str:
    """Drop ``<think>`` blocks and one wrapping code fence; strip whitespace and wrapping quotes."""
    text = _THINK.sub("", text or "").strip()
    match = _FENCE.match(text)
    if match:
        text = match.group(1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


__all__ = ["Rejected", "clean"]
