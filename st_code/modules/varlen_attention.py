"""Variable-length attention from PyTorch itself, registered with transformers as ``st_code_varlen``.

``torch.nn.attention.varlen.varlen_attn`` (PyTorch >= 2.10, flash kernels on CUDA) attends within each
sequence of a flat token stream given the sequences' cumulative lengths, so packed rows need no mask at
all and padded rows compute nothing on their padding; the flash-attn package is not needed. Registered
through transformers' ``AttentionInterface`` (and its mask interface, so transformers hands over a 2D
padding mask or none, never an O(L^2) one), it serves every model that reads ``_attn_implementation``.

Where the sequences come from, per call: ``cu_seq_lens_q``/``cu_seq_lens_k`` when the caller passes
them (transformers' flash-attention keywords); else a 2D padding mask (padded rows, either side); else
position ids that restart at 0 (packed rows, :mod:`st_code.training.packing`); else one sequence a row.
A layer's ``is_causal`` picks causal or full attention, so bidirectional decoders pack safely.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

#: The ``attn_implementation`` name this module registers with transformers.
VARLEN_ATTENTION = "st_code_varlen"


class VarlenKernel(Protocol):
    """Attention over a flat stream: ``query`` (tokens, heads, dim), ``key``/``value`` (tokens, kv heads,
    dim), sequences at ``cu_seq`` offsets; returns (tokens, heads, dim)."""

    def __call__(self, query: Tensor, key: Tensor, value: Tensor, cu_seq: Tensor, max_length: int, *,
                 causal: bool, scale: float | None) -> Tensor: ...


def _repeat_heads(states: Tensor, heads: int) -> Tensor:
    """(tokens, kv heads, dim) -> (tokens, heads, dim): each kv head serves its group of query heads."""
    groups = heads // states.shape[1]
    return states if groups == 1 else states.repeat_interleave(groups, dim=1)


def torch_varlen_kernel() -> VarlenKernel | None:
    """PyTorch's ``varlen_attn`` behind one signature, or None where this PyTorch has none. Its signature
    changed: 2.10-2.11 take ``is_causal``, 2.12 on take ``window_size``, ``scale`` and ``enable_gqa``; the
    older one gets grouped heads repeated and the scale folded into the query."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    accepts = set(inspect.signature(varlen_attn).parameters)

    def kernel(query: Tensor, key: Tensor, value: Tensor, cu_seq: Tensor, max_length: int, *, causal: bool,
               scale: float | None) -> Tensor:
        options: dict[str, Any] = {}
        if "window_size" in accepts:
            options["window_size"] = (-1, 0) if causal else (-1, -1)
        else:
            options["is_causal"] = causal
        if "enable_gqa" in accepts and key.shape[1] != query.shape[1]:
            options["enable_gqa"] = True
        elif key.shape[1] != query.shape[1]:
            key, value = _repeat_heads(key, query.shape[1]), _repeat_heads(value, query.shape[1])
        if scale is not None:
            if "scale" in accepts:
                options["scale"] = scale
            else:  # the kernel's own scale is 1/sqrt(dim)
                query = query * (scale * query.shape[-1] ** 0.5)
        dtype = query.dtype
        if dtype not in (torch.float16, torch.bfloat16):  # flash kernels take half precision only
            query, key, value = (states.to(torch.bfloat16) for states in (query, key, value))
        return varlen_attn(query, key, value, cu_seq, cu_seq, max_length, max_length, **options).to(dtype)

    return kernel


def varlen_unavailable(device: torch.device | str | None = None) -> str | None:
    """Why PyTorch's variable-length attention cannot run here, or None when it can."""
    if torch_varlen_kernel() is None:
        return f"PyTorch {torch.__version__} has no torch.nn.attention.varlen (it came in 2.10)"
    device = torch.device(device) if device is not None else None
    if device is not None and device.type != "cuda":
        return f"its flash kernels run on CUDA GPUs, not on {device.type}"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    major, _ = torch.cuda.get_device_capability(device if device is not None and device.type == "cuda" else None)
    if major < 8:
        return f"its flash kernels need an Ampere or newer GPU (compute capability 8.0), this one is {major}.x"
    return None


def narrow_sliding_window(config: Any, max_length: int | None) -> int | None:
    """The model's sliding attention window where texts of ``max_length`` tokens can outgrow it, else None."""
    window = getattr(config, "sliding_window", None)
    if not window or getattr(config, "use_sliding_window", True) is False:
        return None
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None and "sliding_attention" not in layer_types:
        return None
    return window if max_length is None or max_length > window else None


def varlen_unsuited(config: Any, max_length: int | None) -> str | None:
    """Why the variable-length kernel would not compute this model's attention, or None."""
    if getattr(config, "attn_logit_softcapping", None):
        return f"{config.model_type} soft-caps its attention logits, which the kernel does not do"
    window = narrow_sliding_window(config, max_length)
    if window:
        return f"{config.model_type} has sliding-window layers of {window} tokens and texts up to {max_length}"
    return None


def sequence_offsets(attention_mask: Tensor | None, position_ids: Tensor | None, rows: int, length: int,
                     device: torch.device) -> tuple[Tensor, int]:
    """The cumulative lengths of the sequences in the flattened (rows x length) stream of real tokens,
    and the longest: from a 2D padding mask (its real tokens only), else from position ids restarting at
    0 (each restart opens a sequence; a row's start always does), else one sequence a row."""
    if attention_mask is not None:
        lengths = attention_mask.sum(dim=1, dtype=torch.int32)
    elif position_ids is not None:
        positions = position_ids.expand(rows, -1).reshape(-1)
        starts = positions == 0
        starts[::length] = True
        first = starts.nonzero().flatten().to(torch.int32)
        lengths = torch.diff(first, append=first.new_tensor([rows * length]))
    else:
        lengths = torch.full((rows,), length, dtype=torch.int32, device=device)
    offsets = torch.nn.functional.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))
    return offsets.to(device), int(lengths.max())


_kernel: VarlenKernel | None = None


def varlen_attention_forward(module: torch.nn.Module, query: Tensor, key: Tensor, value: Tensor,
                             attention_mask: Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                             sliding_window: int | None = None, softcap: float | None = None,
                             is_causal: bool | None = None, **kwargs: Any) -> tuple[Tensor, None]:
    """transformers' attention-function contract: ``query`` (rows, heads, length, dim) -> (rows, length,
    heads, dim), no weights. Padding slots of a padded batch come back as zeros."""
    if _kernel is None:
        raise RuntimeError(f"{VARLEN_ATTENTION} is not registered: call register_varlen_attention() first")
    rows, heads, length, dim = query.shape
    if dropout or softcap or (sliding_window and length > sliding_window):
        raise NotImplementedError(f"{VARLEN_ATTENTION} does not do attention dropout, soft-capping or sliding windows "
                                  "narrower than the texts; use attn_implementation: sdpa for this model")
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    padding = attention_mask if attention_mask is not None and attention_mask.ndim == 2 else None
    if attention_mask is not None and padding is None:
        raise ValueError(f"{VARLEN_ATTENTION} takes a 2D padding mask or none, got shape {tuple(attention_mask.shape)}")
    if kwargs.get("cu_seq_lens_q") is not None:
        offsets, longest = kwargs["cu_seq_lens_q"].to(torch.int32), int(kwargs["max_length_q"])
    else:
        offsets, longest = sequence_offsets(padding, kwargs.get("position_ids"), rows, length, query.device)

    def flat(states: Tensor) -> Tensor:  # (rows, h, length, d) -> (tokens, h, d), real tokens only
        states = states.transpose(1, 2).reshape(rows * length, states.shape[1], dim)
        return states[padding.reshape(-1).bool()] if padding is not None else states

    output = _kernel(flat(query), flat(key), flat(value), offsets, longest, causal=causal, scale=scaling)
    if padding is not None:
        full = output.new_zeros(rows * length, heads, dim)
        full[padding.reshape(-1).bool()] = output
        output = full
    return output.view(rows, length, heads, dim), None


def varlen_registered() -> bool:
    """Whether :data:`VARLEN_ATTENTION` is registered with transformers in this process, with a kernel."""
    from transformers import AttentionInterface

    return _kernel is not None and VARLEN_ATTENTION in AttentionInterface._global_mapping


def register_varlen_attention(kernel: VarlenKernel | Callable[..., Tensor] | None = None) -> str:
    """Register :func:`varlen_attention_forward` with transformers under :data:`VARLEN_ATTENTION` and
    return the name. ``kernel``: PyTorch's (the default); tests on a CPU pass a reference kernel, since
    PyTorch's runs on CUDA only."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

    global _kernel
    _kernel = kernel or torch_varlen_kernel()
    if _kernel is None:
        raise RuntimeError(varlen_unavailable() or "no variable-length attention kernel")
    AttentionInterface.register(VARLEN_ATTENTION, varlen_attention_forward)
    AttentionMaskInterface.register(VARLEN_ATTENTION, flash_attention_mask)  # a 2D padding mask or None
    return VARLEN_ATTENTION


__all__ = ["VARLEN_ATTENTION", "VarlenKernel", "register_varlen_attention", "sequence_offsets", "torch_varlen_kernel",
           "varlen_attention_forward", "varlen_registered", "varlen_unavailable",
           "varlen_unsuited", "narrow_sliding_window"]
