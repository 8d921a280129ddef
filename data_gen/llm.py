"""Moved to :mod:`st_code.llm.client`: one LLM client for data_gen and the curriculum's judge.
These names stay importable from here."""

from st_code.llm.client import CLIENTS, LLMClient, LLMError, LLMStats, choose_client, import_litellm  # noqa: F401

__all__ = ["LLMClient", "LLMError", "LLMStats", "CLIENTS", "choose_client", "import_litellm"]
