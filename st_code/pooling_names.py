"""The poolings ``build_model`` offers and its default truncation length, apart from the builder so a
config can be checked without importing sentence-transformers (a bad config is refused in a blink)."""

from __future__ import annotations

from typing import Literal

PoolingName = Literal["pma", "lasttoken", "mean", "cls"]
POOLINGS: tuple[str, ...] = ("pma", "lasttoken", "mean", "cls")
#: Truncation length of queries and documents (CodeR and CodeXEmbed train at 512).
DEFAULT_MAX_SEQ_LENGTH = 512

__all__ = ["PoolingName", "POOLINGS", "DEFAULT_MAX_SEQ_LENGTH"]
