"""The attention mask of packed rows for a bidirectional decoder: each text attends to all of itself and
to nothing else.

transformers reads packed texts off restarting position ids for causal masks only; its bidirectional mask
ignores them, so packed texts would attend to each other. A 4D mask handed to the model is used as is:
this builds it in the form each implementation takes (a boolean tensor for sdpa, an additive one for
eager, a block mask for FlexAttention, which then skips the blocks across texts). The variable-length
kernel (:mod:`st_code.modules.varlen_attention`) needs none: it reads the texts off the position ids.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def document_ids(position_ids: Tensor) -> Tensor:
    """Each slot's text within its packed row: a new text starts wherever the position is 0."""
    return (position_ids == 0).long().cumsum(dim=-1)


def packed_document_mask(position_ids: Tensor, implementation: str, dtype: torch.dtype) -> Any:
    """(rows, 1, width, width) mask, True/0 where query and key share a text; a ``BlockMask`` for
    ``flex_attention``."""
    documents = document_ids(position_ids)
    rows, width = documents.shape
    if implementation == "flex_attention":
        from torch.nn.attention.flex_attention import create_block_mask

        def same_document(batch: Tensor, head: Tensor, query: Tensor, key: Tensor) -> Tensor:
            return documents[batch, query] == documents[batch, key]

        return create_block_mask(same_document, rows, None, width, width, device=documents.device)
    same = documents[:, None, :, None] == documents[:, None, None, :]
    if implementation == "sdpa":
        return same
    if implementation == "eager":
        return torch.zeros(same.shape, dtype=dtype, device=same.device).masked_fill(~same, torch.finfo(dtype).min)
    raise ValueError(f"no packed document mask for attention implementation {implementation!r}")


__all__ = ["document_ids", "packed_document_mask"]
