"""The ``modules.json`` type each of st-code's modules is saved under: what the saved model and its model
card name, so a folder loads without st-code (sentence-transformers' own types, or the portable code
shipped beside the weights)."""

from __future__ import annotations

from typing import Any

from st_code.modules.code_transformer import CodeTransformer
from st_code.modules.modeling_st_code import PORTABLE_CODE_MODULE, BidirectionalTransformer
from st_code.modules.pma_pooling import PMAPooling


def saved_type(module: Any) -> str | None:
    """The ``modules.json`` type a saved folder names for one of st-code's modules (None: keep the
    type sentence-transformers wrote)."""
    if isinstance(module, CodeTransformer):
        return module.saved_type
    if isinstance(module, (PMAPooling, BidirectionalTransformer)):
        return f"{PORTABLE_CODE_MODULE}.{type(module).__name__}"
    return None


__all__ = ["saved_type"]
