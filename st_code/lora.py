"""LoRA on the backbone: attach, merge into the base weights, chain stages (CodeXEmbed).

Attaching goes through transformers' PEFT integration (``PreTrainedModel.add_adapter``), so a model
with an adapter still saves and loads as a normal sentence-transformers folder (adapter-only).
``merge_lora`` folds the adapter into the base weights and removes every trace of PEFT, giving a
plain checkpoint; a fresh adapter can then be attached for the next training stage.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sentence_transformers import SentenceTransformer
from torch import nn

from st_code.errors import UsageError

_DECODER_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: Default LoRA targets per ``config.model_type`` (CodeR: all attention and MLP projections).
DEFAULT_TARGET_MODULES: dict[str, tuple[str, ...]] = {
    **{name: _DECODER_TARGETS for name in ("qwen2", "qwen3", "llama", "mistral", "gemma", "gemma2", "gemma3_text")},
    **{name: ("query", "key", "value", "dense") for name in ("bert", "roberta", "xlm-roberta", "electra")},
    "mpnet": ("q", "k", "v", "o", "intermediate.dense", "output.dense"),
    "new": ("qkv_proj", "o_proj", "up_gate_proj", "down_proj"),  # gte-*-v1.5 (CodeXEmbed-400M)
}


@dataclass
class LoraSettings:
    """LoRA hyper-parameters; defaults follow CodeR (r=32, alpha=64)."""

    r: int = 32
    alpha: int = 64
    dropout: float = 0.05
    target_modules: Sequence[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_value(cls, value: "LoraSettings | dict | bool | None") -> "LoraSettings | None":
        """Accept ``None``/``False`` (no LoRA), ``True`` (defaults), a dict or a ``LoraSettings``."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            known = {"r", "alpha", "dropout", "target_modules", "lora_alpha", "lora_dropout"}
            values = dict(value)
            values.setdefault("alpha", values.pop("lora_alpha", 64))
            values.setdefault("dropout", values.pop("lora_dropout", 0.05))
            extra = {k: values.pop(k) for k in list(values) if k not in known}
            return cls(**values, extra=extra)
        raise TypeError(f"lora must be None, True, a dict or LoraSettings, got {type(value).__name__}")


def _backbone(model: SentenceTransformer) -> nn.Module:
    first = model[0]
    if not hasattr(first, "auto_model"):
        raise TypeError(f"the first module of this model is {type(first).__name__}, not a Transformer backbone")
    return first.auto_model


def _linear_names(backbone: nn.Module) -> set[str]:
    return {name for name, module in backbone.named_modules() if isinstance(module, nn.Linear)}


def default_target_modules(backbone: nn.Module) -> list[str]:
    """Targets for this backbone: the table above by model type, else every attention/MLP projection found."""
    model_type = getattr(backbone.config, "model_type", "")
    if model_type in DEFAULT_TARGET_MODULES:
        return list(DEFAULT_TARGET_MODULES[model_type])
    names = _linear_names(backbone)
    found = sorted({name.rsplit(".", 1)[-1] for name in names} & set(_DECODER_TARGETS + ("query", "key", "value", "dense")))
    if not found:
        raise UsageError(
            f"no default LoRA targets for model_type {model_type!r}; pass target_modules=[...] naming its Linear layers"
        )
    return found


def add_lora(
    model: SentenceTransformer,
    r: int = 32,
    alpha: int = 64,
    dropout: float = 0.05,
    target_modules: Sequence[str] | None = None,
    adapter_name: str = "default",
    **lora_kwargs: Any,
) -> SentenceTransformer:
    """Attach a fresh LoRA adapter to the backbone (in place) and freeze the backbone's base weights.

    Modules after the backbone (e.g. a PMA head) keep ``requires_grad=True``.
    Raises ``ValueError`` when a target name matches no Linear layer.
    """
    from peft import LoraConfig

    backbone = _backbone(model)
    if getattr(backbone, "_hf_peft_config_loaded", False):
        raise UsageError("this model already has a LoRA adapter; call st_code.merge_lora(model) before adding another")
    targets = list(target_modules) if target_modules else default_target_modules(backbone)
    names = _linear_names(backbone)
    unmatched = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if unmatched:
        examples = sorted({n.rsplit(".", 1)[-1] for n in names})[:12]
        raise UsageError(f"LoRA target(s) {unmatched} match no Linear layer of the backbone; its layers include {examples}")
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none", **lora_kwargs)
    backbone.add_adapter(config, adapter_name=adapter_name)
    for name, parameter in backbone.named_parameters():
        parameter.requires_grad = "lora_" in name
    return model


def has_lora(model: SentenceTransformer) -> bool:
    """Whether the backbone currently carries a PEFT adapter."""
    return bool(getattr(_backbone(model), "_hf_peft_config_loaded", False))


def merge_lora(model: SentenceTransformer) -> SentenceTransformer:
    """Fold the LoRA adapter into the base weights and remove it (in place); returns the model.

    The result is a plain checkpoint whose embeddings equal the adapted model's, with every
    backbone parameter trainable again (as a freshly loaded model would be). A no-op without LoRA.
    """
    from peft.tuners.lora import LoraLayer

    backbone = _backbone(model)
    if not has_lora(model):
        return model
    replacements = [(name, module) for name, module in backbone.named_modules() if isinstance(module, LoraLayer)]
    for name, module in replacements:
        module.merge()
        parent_name, _, child_name = name.rpartition(".")
        parent = backbone.get_submodule(parent_name) if parent_name else backbone
        setattr(parent, child_name, module.get_base_layer())
    if hasattr(backbone, "peft_config"):
        del backbone.peft_config
    backbone._hf_peft_config_loaded = False
    for parameter in backbone.parameters():
        parameter.requires_grad = True
    return model


def _cast_only_without_autocast(layer: nn.Module, args: Any) -> None:
    import torch

    x = args[0] if args else None
    device_type = x.device.type if isinstance(x, torch.Tensor) else "cpu"
    layer.cast_input_dtype_enabled = not torch.is_autocast_enabled(device_type)


def skip_lora_input_cast_under_autocast(model: nn.Module) -> None:
    """Under autocast, let LoRA inputs reach the adapter in the backbone's dtype.

    peft casts every LoRA input to the adapter's dtype (float32 while training: the optimizer's
    master weights), and autocast casts it straight back to bf16 for the product: two copies of each
    activation for nothing. On an H200 dtype copies were a quarter of a training step's GPU time. A
    pre-hook on each LoRA layer sets peft's own switch (``cast_input_dtype_enabled``, the one
    ``peft.helpers.disable_input_dtype_casting`` flips) from the autocast state at that call: off under
    autocast (the product is the same, bit for bit without dropout; tested), on otherwise, so a forward
    without autocast, e.g. an evaluator's, is untouched, and a checkpointed layer's recompute (which
    restores autocast) decides as its forward did. Idempotent; call it again after a fresh adapter."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for layer in model.modules():
        if isinstance(layer, BaseTunerLayer) and not getattr(layer, "_st_code_casts_by_autocast", False):
            layer.register_forward_pre_hook(_cast_only_without_autocast)
            layer._st_code_casts_by_autocast = True


def merged_copy(model: SentenceTransformer) -> SentenceTransformer:
    """A merged deep copy, leaving ``model`` (and its adapter) untouched: for saving, evaluating or
    mining mid-training.

    The copy shares ``model``'s tokenizers instead of copying them: deep-copying a Qwen tokenizer
    takes about a second (more than the weights of a small model), and a curriculum makes a copy at
    every evaluation and save. Nothing that uses the copy changes a tokenizer for good (saving flips
    the padding side and restores it)."""
    from transformers import PreTrainedTokenizerBase, ProcessorMixin

    shared = {id(value): value for module in model.modules() for value in vars(module).values()
              if isinstance(value, (PreTrainedTokenizerBase, ProcessorMixin))}
    return merge_lora(copy.deepcopy(model, shared))
