"""Which attention implementation a model loads with: ``attn_implementation: auto`` picks the best one
installed and says which and why; ``varlen`` names PyTorch's own variable-length kernel.

On a CUDA GPU, best first: the flash-attn package (``flash_attention_2``: sentence-transformers then
also encodes without padding), PyTorch's variable-length flash kernel (``st_code_varlen``, PyTorch >= 2.10
on an Ampere or newer GPU), the hub's flash kernel (``kernels-community/flash-attn``, where the ``kernels``
package is installed and the hub is not switched off), FlexAttention (``flex_attention``, compiled by
Triton), sdpa. On a CPU: sdpa
(FlexAttention compiles there too, but sdpa is the one measured). Any other name goes to transformers
as given (``eager``, ``kernels-community/flash-attn`` from the hub, ...).
"""

from __future__ import annotations

import importlib.util
import logging
import os

import torch

from st_code.modules.varlen_attention import (
    VARLEN_ATTENTION, register_varlen_attention, varlen_registered, varlen_unavailable,
)

logger = logging.getLogger(__name__)

#: The settings st-code resolves itself; every other name is transformers'.
AUTO, VARLEN = "auto", "varlen"
#: transformers loads this flash-attention build from the hub through the ``kernels`` package.
HUB_FLASH_KERNEL = "kernels-community/flash-attn"


def _hub_offline() -> bool:
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _flex_unavailable() -> str | None:
    try:
        import torch.nn.attention.flex_attention  # noqa: F401
    except ImportError:
        return f"PyTorch {torch.__version__} has no FlexAttention"
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed (FlexAttention compiles with it on a GPU)"
    return None


def choose_attention(setting: str | None, device: torch.device | str | None = None) -> tuple[str | None, str]:
    """The ``attn_implementation`` to load with for ``setting`` on ``device`` (default: CUDA when one is
    visible), and a line saying why. ``None`` stays None: transformers' default (sdpa)."""
    if setting == VARLEN_ATTENTION and varlen_registered():  # registered already (by a test: its own kernel)
        return setting, "as configured"
    if setting in (VARLEN, VARLEN_ATTENTION):
        reason = varlen_unavailable(device)
        if reason:
            raise ValueError(f"attn_implementation {setting!r}: {reason}; use auto, sdpa or flex_attention")
        return register_varlen_attention(), "PyTorch's variable-length flash kernel, as configured"
    if setting != AUTO:
        return setting, "as configured" if setting else "transformers' default"
    target = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    if target.type != "cuda":
        return "sdpa", f"auto on {target.type}: sdpa"
    if importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2", "auto: the flash-attn package is installed"
    varlen_reason = varlen_unavailable(target)
    if varlen_reason is None:
        return register_varlen_attention(), f"auto: PyTorch {torch.__version__}'s variable-length flash kernel " \
                                            "(flash-attn is not installed)"
    if importlib.util.find_spec("kernels") is not None and not _hub_offline():
        return HUB_FLASH_KERNEL, f"auto: the hub's flash kernel through the kernels package (varlen: {varlen_reason})"
    flex_reason = _flex_unavailable()
    if flex_reason is None:
        return "flex_attention", f"auto: FlexAttention (flash-attn is not installed; varlen: {varlen_reason})"
    return "sdpa", f"auto: sdpa (flash-attn is not installed; varlen: {varlen_reason}; FlexAttention: {flex_reason})"


def resolve_attention(setting: str | None, device: torch.device | str | None = None) -> str | None:
    """:func:`choose_attention`'s name, the choice logged when st-code made it."""
    name, why = choose_attention(setting, device)
    if setting in (AUTO, VARLEN):
        logger.info("attention: %s (%s)", name, why)
    return name


__all__ = ["AUTO", "HUB_FLASH_KERNEL", "VARLEN", "choose_attention", "resolve_attention"]
