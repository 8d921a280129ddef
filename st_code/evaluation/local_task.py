"""Moved to :mod:`st_code.retrieval.local_task` (shared with the curriculum's per-stage scores)."""

from st_code.retrieval.local_task import make_local_task  # noqa: F401

__all__ = ["make_local_task"]
