"""Liger Kernel's fused Triton kernels (RMSNorm, rotary embedding, SwiGLU) in a decoder backbone.

``liger_kernel: true`` patches the loaded transformers model in place through Liger's own per-model
functions (``pip install liger-kernel``: no build step, CUDA GPUs); ``auto`` does so where it is
installed and the model trains on a CUDA GPU. Applied before LoRA is added: Liger's SwiGLU forward calls
the layer's own ``gate_proj``/``up_proj``/``down_proj``, so peft's LoRA layers that replace them later
keep their maths. The language-model loss kernels stay off: an embedder has no LM head.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch


def liger_unavailable(model_type: str | None, device: torch.device | str | None) -> str | None:
    """Why Liger's kernels cannot serve this backbone here, or None when they can."""
    if importlib.util.find_spec("liger_kernel") is None:
        return "liger-kernel is not installed (pip install liger-kernel)"
    target = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    if target.type != "cuda":
        return f"its Triton kernels run on CUDA GPUs, not on {target.type}"
    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN

    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        return f"Liger has no kernels for model type {model_type!r}"
    return None


def apply_liger(model: Any, setting: bool | str, device: torch.device | str | None = None) -> str:
    """Patch ``model`` (a transformers model) with Liger's kernels as ``setting`` (true / false / auto)
    asks; returns a line saying what was done. ``true`` where they cannot run raises ValueError."""
    if setting not in (True, False, "auto"):
        raise ValueError(f"liger_kernel: true, false or auto, got {setting!r}")
    if setting is False:
        return "liger kernels: off"
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    reason = liger_unavailable(model_type, device)
    if reason:
        if setting is True:
            raise ValueError(f"liger_kernel: true, but {reason}; set liger_kernel: auto or false")
        return f"liger kernels: off ({reason})"
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model=model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                    fused_linear_cross_entropy=False)
    return f"liger kernels: RMSNorm, RoPE and SwiGLU fused ({model_type})"


__all__ = ["apply_liger", "liger_unavailable"]
