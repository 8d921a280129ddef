"""``build_model``: a code embedding model from any backbone in one call."""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

from st_code.assets import looks_local
from st_code.errors import MissingPathError, UsageError
from st_code.gguf_reading import gguf_read_once
from st_code.lora import LoraSettings, add_lora
from st_code.model import CodeSentenceTransformer
from st_code.modules import CodeTransformer, PMAPooling
from st_code.modules.attention_choice import resolve_attention
from st_code.modules.liger import apply_liger
from st_code.modules.varlen_attention import VARLEN_ATTENTION, varlen_unsuited
from st_code.pooling_names import DEFAULT_MAX_SEQ_LENGTH, POOLINGS, PoolingName
from st_code.prompts import DEFAULT_QUERY_INSTRUCTION, build_prompts

logger = logging.getLogger(__name__)


def _resolve_base(base: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """A hub id, a local folder, or a local ``.gguf`` file -> (name_or_path, loader kwargs)."""
    text = str(base)
    path = Path(text).expanduser()
    if text.endswith(".gguf"):
        if not path.is_file():
            raise MissingPathError(f"GGUF base {text!r} does not exist")
        return str(path.parent), {"gguf_file": path.name}
    if path.exists():
        return str(path), {}
    if looks_local(text):
        raise MissingPathError(
            f"base model folder {text!r} does not exist; pass an existing folder or a hub id like 'Qwen/Qwen2.5-Coder-0.5B'"
        )
    return text, {}


def _check_varlen_suits(backbone: CodeTransformer, setting: str | None, max_seq_length: int | None) -> None:
    """The varlen kernel on a model whose attention it cannot compute (soft-capping, narrow sliding
    windows): ``auto`` falls back to sdpa, saying so; ``varlen`` named is refused."""
    config = backbone.model.config
    reason = varlen_unsuited(config, max_seq_length) if config._attn_implementation == VARLEN_ATTENTION else None
    if reason is None:
        return
    if setting != "auto":
        raise UsageError(f"attn_implementation {setting!r}: {reason}; use sdpa or flex_attention")
    backbone.model.set_attn_implementation("sdpa")
    logger.info("attention: sdpa (auto: %s)", reason)


def build_model(
    base: str | os.PathLike,
    pooling: PoolingName = "lasttoken",
    embedding_dim: int | None = None,
    lora: LoraSettings | dict | bool | None = None,
    instruction_format: str | None = "bge",
    instruction_set: str = "coder",
    default_instruction: str | None = DEFAULT_QUERY_INSTRUCTION,
    max_seq_length: int | None = DEFAULT_MAX_SEQ_LENGTH,
    normalize: bool = True,
    pma_num_heads: int | None = None,
    bidirectional: bool = False,
    append_eos: bool | None = None,
    padding_side: Literal["left", "right"] | None = None,
    device: str | None = None,
    dtype: Any = None,
    attn_implementation: str | None = None,
    liger_kernel: bool | str = False,
    **model_kwargs: Any,
) -> CodeSentenceTransformer:
    """Build a code embedding model: backbone -> pooling -> (normalize), with instructions as prompts.

    Args:
        base: hub id (``"Qwen/Qwen2.5-Coder-1.5B"``), local model folder, or a ``.gguf`` file.
        pooling: ``"pma"`` (C2LLM), ``"lasttoken"`` (EOS, CodeR/BGE-Code), ``"mean"`` or ``"cls"``.
        embedding_dim: PMA output dimension (defaults to the backbone's hidden size). Only for ``"pma"``.
        lora: ``None`` for full fine-tuning, ``True`` for CodeR's r=32/alpha=64, or a dict
            ``{"r":..., "alpha":..., "dropout":..., "target_modules": [...]}``.
        instruction_format: ``"bge"`` (``<instruct>{instruction}\\n<query>``), ``"qwen"``
            (``Instruct: {instruction}\\nQuery: ``), ``"none"``, or a template with ``{instruction}``.
        instruction_set: ``"coder"`` (CodeR Table 18 wording) or ``"c2llm"`` (C2LLM Table 1).
        default_instruction: instruction for the default ``"query"`` prompt; ``None`` for none.
        max_seq_length: truncation length in tokens (EOS included).
        normalize: append ``Normalize`` so embeddings are unit length (cosine = dot product).
        pma_num_heads: PMA heads (default 32 where it divides ``embedding_dim``).
        bidirectional: bidirectional attention for decoder backbones (CodeXEmbed option).
        append_eos, padding_side: see :class:`~st_code.modules.CodeTransformer`; defaults suit the backbone.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default picks the best available.
        dtype: e.g. ``torch.bfloat16`` or ``"auto"``; passed to ``from_pretrained``.
        attn_implementation: ``"sdpa"``, ``"eager"``, ``"flex_attention"``, ``"flash_attention_2"``, ``"varlen"``
            (PyTorch's variable-length flash kernel) or ``"auto"`` (the best installed for ``device``;
            :mod:`st_code.modules.attention_choice`).
        liger_kernel: Liger Kernel's fused RMSNorm/RoPE/SwiGLU (``True``, ``False`` or ``"auto"``: where
            installed, on a CUDA GPU; :mod:`st_code.modules.liger`).
        **model_kwargs: more ``from_pretrained`` kwargs (``revision``, ``trust_remote_code``, ...).
    """
    if pooling not in POOLINGS:
        raise UsageError(f"unknown pooling {pooling!r}; use one of {POOLINGS}")
    if embedding_dim is not None and pooling != "pma":
        raise UsageError(f"embedding_dim={embedding_dim} needs pooling='pma' (other poolings keep the hidden size)")
    lora_settings = LoraSettings.from_value(lora)
    name_or_path, loader_kwargs = _resolve_base(base)

    model_kwargs = dict(model_kwargs)
    if dtype is not None:
        model_kwargs["dtype"] = dtype
    if attn_implementation is not None:
        try:
            model_kwargs["attn_implementation"] = resolve_attention(attn_implementation, device)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    model_kwargs.update(loader_kwargs)
    shared = dict(loader_kwargs)  # gguf_file must reach the config and tokenizer loaders too
    if "trust_remote_code" in model_kwargs:
        shared["trust_remote_code"] = model_kwargs["trust_remote_code"]

    reading = gguf_read_once() if "gguf_file" in loader_kwargs else nullcontext()
    try:
        with reading:  # transformers reads a .gguf four times (config, tokenizer config, tokenizer, weights)
            backbone = CodeTransformer(
                name_or_path,
                model_kwargs=model_kwargs,
                processor_kwargs=dict(shared),
                config_kwargs=dict(shared),
                max_seq_length=max_seq_length,
                append_eos=append_eos,
                padding_side=padding_side,
                bidirectional=bidirectional,
            )
    except OSError as exc:  # transformers' "not a valid model identifier / offline" family
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"could not load the base model {name_or_path!r} ({first_line}); pass a local model folder, "
                         "or check the hub id and that the hub can be reached (HF_HUB_OFFLINE unset)") from None
    _check_varlen_suits(backbone, attn_implementation, max_seq_length)
    try:
        logger.info(apply_liger(backbone.model, liger_kernel, device))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    hidden_size = backbone.get_embedding_dimension()
    if pooling == "pma":
        try:
            head = PMAPooling(hidden_size, embedding_dim=embedding_dim, num_heads=pma_num_heads)
        except ValueError as exc:  # the module is self-contained (it ships in saved folders): plain errors
            raise UsageError(str(exc)) from None
        head.to(next(backbone.auto_model.parameters()).dtype)
    else:
        head = Pooling(hidden_size, pooling_mode=pooling)
    modules = [backbone, head] + ([Normalize()] if normalize else [])

    model = CodeSentenceTransformer(
        modules=modules,
        device=device,
        prompts=build_prompts(instruction_format, instruction_set, default_instruction),
        similarity_fn_name="cosine",
    )
    if lora_settings is not None:
        add_lora(
            model,
            r=lora_settings.r,
            alpha=lora_settings.alpha,
            dropout=lora_settings.dropout,
            target_modules=lora_settings.target_modules,
            **lora_settings.extra,
        )
    return model
