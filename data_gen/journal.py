"""Moved to :mod:`st_code.llm.journal`; these names stay importable from here."""

from st_code.llm.journal import Journal, work_key  # noqa: F401

__all__ = ["Journal", "work_key"]
