"""The model a curriculum trains: built from the config, reloaded from a finished stage, and the
reference embedder that mines its hard negatives."""

from __future__ import annotations

from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

import st_code
from st_code.assets import MINILM
from st_code.lora import LoraSettings, has_lora, merged_copy
from st_code.mining import load_embedder
from st_code.modules.attention_choice import AUTO, VARLEN, choose_attention, resolve_attention
from st_code.modules.liger import apply_liger, liger_unavailable
from st_code.training.config import CurriculumConfig, ModelConfig
from st_code.training.sources import is_sentence_embedder, resolve_base


def train_on_cpu() -> bool:
    """True when asked (``ACCELERATE_USE_CPU``) or when torch sees no accelerator.

    accelerate sets up multi-process CPU training (gloo) only when told ``cpu=True``; without it,
    ``torchrun --nproc_per_node 2`` on a CPU-only machine starts two unrelated single-process runs
    that race on the same output files. Passing this to both our ``PartialState`` and the trainer's
    arguments keeps one view of the ranks from data building to saving.
    """
    from accelerate.utils import parse_flag_from_env

    return parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.accelerator.is_available()


def torch_dtype(name: str | None):
    return None if name is None else getattr(torch, name)


def float32_trainable(model: torch.nn.Module) -> int:
    """Keep every trainable parameter (LoRA, a PMA head, or all weights when fully fine-tuned) in
    float32: the optimizer's master weights. A bf16 backbone stays bf16 where it is frozen, and the
    trainer's ``bf16`` autocast runs the maths in bf16; updates of 1e-5 x weight are not lost to
    bf16's 8-bit mantissa. Returns how many parameters were cast."""
    cast = 0
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype in (torch.bfloat16, torch.float16):
            parameter.data = parameter.data.float()
            cast += 1
    return cast


def enable_activation_checkpointing(model: torch.nn.Module) -> None:
    """Turn on activation (gradient) checkpointing in every submodule that has it, as
    sentence-transformers' ``gradient_checkpointing_enable`` does, but through transformers 5's
    ``activation_checkpointing_enable``: the old name is a deprecated alias there that warns on every call."""
    for module in model.modules():
        if module is model or getattr(module, "supports_gradient_checkpointing", True) is False:
            continue
        enable = getattr(module, "activation_checkpointing_enable", None) or getattr(
            module, "gradient_checkpointing_enable", None)
        if callable(enable):
            enable()


def build_training_model(m: ModelConfig) -> SentenceTransformer:
    """The starting model of a curriculum, trainable weights in float32."""
    model = st_code.build_model(
        resolve_base(m.base), pooling=m.pooling, embedding_dim=m.embedding_dim, pma_num_heads=m.pma_num_heads,
        lora=LoraSettings.from_value(m.lora), instruction_format=m.instruction_format,
        instruction_set=m.instruction_set, max_seq_length=m.max_seq_length, dtype=torch_dtype(m.dtype),
        attn_implementation=m.attn_implementation, liger_kernel=m.liger_kernel, bidirectional=m.bidirectional,
    )
    float32_trainable(model)
    return model


def kernel_lines(m: ModelConfig, model: SentenceTransformer) -> list[str]:
    """What the log says of the backbone's kernels: the attention implementation (and why, where st-code
    chose it) and whether Liger's fused kernels are in."""
    backbone = getattr(model[0], "model", None)
    if backbone is None:
        return []
    device = next(model.parameters()).device
    lines = [f"attention: {backbone.config._attn_implementation}"]
    if m.attn_implementation in (AUTO, VARLEN):
        lines[0] += f" ({choose_attention(m.attn_implementation, device)[1]})"
    if m.liger_kernel:
        reason = liger_unavailable(backbone.config.model_type, device)
        lines.append(f"liger kernels: {'off (' + reason + ')' if reason else 'RMSNorm, RoPE and SwiGLU fused'}")
    return lines


def load_stage_model(path: Path, m: ModelConfig) -> SentenceTransformer:
    """A finished stage's saved model, ready to train on: a reloaded LoRA adapter comes back frozen,
    so it (and the head) is made trainable again, the frozen base in the configured precision."""
    model_kwargs = {"dtype": torch_dtype(m.dtype)} if m.dtype else {}
    if m.attn_implementation:  # the saved folder keeps no attention choice: the next stage trains on the configured one
        model_kwargs["attn_implementation"] = resolve_attention(m.attn_implementation)
    model = st_code.load_model(path, model_kwargs=model_kwargs)
    apply_liger(model[0].model, m.liger_kernel)
    model.max_seq_length = m.max_seq_length
    if has_lora(model):
        for name, parameter in model.named_parameters():
            parameter.requires_grad = "lora_" in name or not name.startswith("0.")
    float32_trainable(model)
    return model


def mining_embedder(config: CurriculumConfig, built: SentenceTransformer) -> tuple[SentenceTransformer, str]:
    """The embedder that mines hard negatives: ``data.hard_negatives.model``, or by default the model
    as built when its base already embeds sentences with the pooling kept, else the packaged MiniLM
    (a raw LLM or a fresh PMA head would mine random "hard" negatives). Returns it and a label."""
    m, name = config.model, config.data.hard_negatives.model
    if name is not None:
        return load_embedder(name), name
    if m.pooling != "pma" and not m.bidirectional and is_sentence_embedder(m.base):
        return (merged_copy(built) if has_lora(built) else built), f"the base model ({m.base})"
    return load_embedder(MINILM), f"{MINILM} (the base {m.base} is not a trained sentence embedder yet)"


__all__ = ["build_training_model", "enable_activation_checkpointing", "float32_trainable", "kernel_lines",
           "load_stage_model", "mining_embedder", "torch_dtype", "train_on_cpu"]
