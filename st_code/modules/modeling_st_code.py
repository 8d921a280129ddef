"""st-code's custom sentence-transformers modules, in one self-contained file.

A saved model that needs one of these carries a copy of this file as ``modeling_st_code.py``, and its
``modules.json`` names ``modeling_st_code.PMAPooling`` / ``modeling_st_code.BidirectionalTransformer``,
so ``SentenceTransformer(folder_or_hub_id, trust_remote_code=True)`` loads it on a machine without
st-code. This file may therefore import only torch, transformers and sentence-transformers; st-code
itself uses the very same classes (``st_code.modules``), so a saved model computes what was trained.

* ``PMAPooling``: Pooling by Multihead Attention, as in C2LLM (section 3, equations 1-6). A learnable
  query attends over the backbone's last hidden states (masked to real tokens), so the pooled vector
  can draw on every token instead of only the EOS token, and the projections set the output dimension
  independently of the backbone's hidden size.
* ``BidirectionalTransformer``: sentence-transformers' ``Transformer`` whose decoder attends in both
  directions (CodeXEmbed / LLM2Vec style).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from sentence_transformers.sentence_transformer.modules import Module, Transformer
from torch import nn

#: The name this file has in a saved model folder, and in its ``modules.json`` types.
PORTABLE_CODE_MODULE = "modeling_st_code"
_PREFERRED_HEADS = (32, 16, 8, 4, 2, 1)


def default_num_heads(embedding_dim: int) -> int:
    """32 heads where they divide ``embedding_dim`` (C2LLM's setting), else the largest of 16, 8, 4, 2, 1."""
    return next(h for h in _PREFERRED_HEADS if embedding_dim % h == 0)


class PMAPooling(Module):
    """C2LLM's PMA head: ``E = LN(ReLU(Õ W_o) + Õ)``, ``Õ = LN(softmax(Q Kᵀ/√d_h) V + Q)``.

    Args:
        hidden_size: the backbone's hidden size (``d_LLM``).
        embedding_dim: output dimension ``d``; defaults to ``hidden_size``. Must be divisible by ``num_heads``.
        num_heads: attention heads; defaults to 32 where it divides ``embedding_dim``.
        num_seeds: learnable queries (Set Transformer's ``k``); their outputs are averaged into one vector.
        layer_norm_eps: LayerNorm epsilon.

    Reads ``token_embeddings`` and ``attention_mask`` and writes ``sentence_embedding``. Padding never
    changes the result: padded positions get exactly zero attention weight and zeroed values. Flattened
    (unpadded, flash-attention varlen) batches carrying ``cu_seq_lens_q`` are re-padded first.
    """

    config_keys: list[str] = ["hidden_size", "embedding_dim", "num_heads", "num_seeds", "layer_norm_eps"]

    def __init__(
        self,
        hidden_size: int,
        embedding_dim: int | None = None,
        num_heads: int | None = None,
        num_seeds: int = 1,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        embedding_dim = int(embedding_dim or hidden_size)
        if num_heads is None:
            num_heads = default_num_heads(embedding_dim)
        if embedding_dim % num_heads != 0:
            raise ValueError(
                f"PMA embedding_dim={embedding_dim} is not divisible by num_heads={num_heads}; pick an "
                f"embedding_dim that is a multiple of num_heads, or num_heads in "
                f"{[h for h in range(1, 65) if embedding_dim % h == 0]}"
            )
        if num_seeds < 1:
            raise ValueError(f"PMA num_seeds must be >= 1, got {num_seeds}")
        self.hidden_size = int(hidden_size)
        self.embedding_dim = embedding_dim
        self.num_heads = int(num_heads)
        self.num_seeds = int(num_seeds)
        self.layer_norm_eps = float(layer_norm_eps)

        self.seed = nn.Parameter(torch.empty(self.num_seeds, embedding_dim))  # q, eq. (1)
        self.q_proj = nn.Linear(embedding_dim, embedding_dim)  # W_q
        self.k_proj = nn.Linear(self.hidden_size, embedding_dim)  # W_k, eq. (2)
        self.v_proj = nn.Linear(self.hidden_size, embedding_dim)  # W_v, eq. (3)
        self.norm_attention = nn.LayerNorm(embedding_dim, eps=self.layer_norm_eps)  # eq. (5)
        self.out_proj = nn.Linear(embedding_dim, embedding_dim)  # W_o, eq. (6)
        self.norm_output = nn.LayerNorm(embedding_dim, eps=self.layer_norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.seed, std=1.0 / math.sqrt(self.embedding_dim))
        for linear in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, features: dict[str, Any], **kwargs) -> dict[str, Any]:
        hidden, mask = self._padded_inputs(features)
        dtype = self.k_proj.weight.dtype
        hidden = hidden.to(dtype).masked_fill(~mask.bool().unsqueeze(-1), 0.0)  # pads may hold NaN: zero them

        batch, length, _ = hidden.shape
        heads, head_dim = self.num_heads, self.embedding_dim // self.num_heads
        query = self.q_proj(self.seed)  # (S, d)
        q = query.view(1, self.num_seeds, heads, head_dim).transpose(1, 2)  # (1, H, S, dh)
        k = self.k_proj(hidden).view(batch, length, heads, head_dim).transpose(1, 2)  # (B, H, L, dh)
        v = self.v_proj(hidden).view(batch, length, heads, head_dim).transpose(1, 2)

        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head_dim)  # (B, H, S, L)
        keep = mask.bool()[:, None, None, :]
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
        weights = F.softmax(scores.float(), dim=-1).to(dtype) * keep  # exact zeros on pads
        attended = torch.matmul(weights, v).transpose(1, 2).reshape(batch, self.num_seeds, self.embedding_dim)

        pooled = self.norm_attention(attended + query.unsqueeze(0))  # eq. (5)
        pooled = self.norm_output(F.relu(self.out_proj(pooled)) + pooled)  # eq. (6)
        features["sentence_embedding"] = pooled.mean(dim=1)
        return features

    @staticmethod
    def _padded_inputs(features: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = features["token_embeddings"]
        if "cu_seq_lens_q" in features:  # flash-attention varlen layout: (1, total_tokens, d)
            boundaries = features["cu_seq_lens_q"]
            lengths = (boundaries[1:] - boundaries[:-1]).tolist()
            pieces = torch.split(hidden.reshape(-1, hidden.shape[-1]), lengths)
            hidden = nn.utils.rnn.pad_sequence(pieces, batch_first=True)
            mask = nn.utils.rnn.pad_sequence([torch.ones(n, device=hidden.device) for n in lengths], batch_first=True)
            return hidden, mask
        if "attention_mask" not in features:
            raise ValueError("PMAPooling needs 'attention_mask' (or 'cu_seq_lens_q') from the backbone module")
        return hidden, features["attention_mask"]

    def get_embedding_dimension(self) -> int:
        return self.embedding_dim

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token=None, cache_folder=None, revision=None,
             local_files_only: bool = False, **kwargs) -> "PMAPooling":
        hub_kwargs = dict(subfolder=subfolder, token=token, cache_folder=cache_folder, revision=revision,
                          local_files_only=local_files_only)
        config = cls.load_config(model_name_or_path, **hub_kwargs)
        if not config:
            raise FileNotFoundError(f"no PMAPooling config.json under {model_name_or_path}/{subfolder}")
        module = cls(**config)
        return cls.load_torch_weights(model_name_or_path, model=module, **hub_kwargs)


def make_bidirectional(model: nn.Module) -> None:
    """Let a decoder attend in both directions: transformers' mask builders read ``config.is_causal``,
    the sdpa and flash-attention kernels read each attention layer's ``is_causal``."""
    model.config.is_causal = False
    for module in model.modules():
        if hasattr(module, "is_causal"):
            module.is_causal = False


class BidirectionalTransformer(Transformer):
    """sentence-transformers' ``Transformer`` with bidirectional attention (same arguments, same files)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        make_bidirectional(self.model)


__all__ = ["PMAPooling", "BidirectionalTransformer", "default_num_heads", "make_bidirectional", "PORTABLE_CODE_MODULE"]
