"""Moved to :mod:`st_code.llm.openai_http`; these names stay importable from here."""

from st_code.llm.openai_http import (  # noqa: F401
    OPENAI_COMPATIBLE_PROVIDERS, HTTPCallError, OpenAIHTTPClient, served_model_name,
)

__all__ = ["OPENAI_COMPATIBLE_PROVIDERS", "HTTPCallError", "OpenAIHTTPClient", "served_model_name"]
