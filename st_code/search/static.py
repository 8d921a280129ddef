"""Static embeddings for fast CPU indexing: an embedder distilled into one vector per vocabulary token.

A static model embeds a text as the mean of its tokens' vectors: no attention, thousands of units a
second on one core, so a repository indexes in seconds (``st-code distill``, then ``st-code index
--model`` the folder). The recipe is model2vec's: every vocabulary token is embedded by the model on
its own (with the model's special tokens around it), the vectors are reduced by PCA, and frequent
tokens are down-weighted (SIF weights over a Zipf estimate of each token's frequency, from its rank
in the vocabulary). It is written here because model2vec's own distiller pins ``transformers<5.4``,
which cannot be installed beside st-code's; the result is sentence-transformers' ``StaticEmbedding``
module, so the saved folder loads anywhere with ``SentenceTransformer(path)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from st_code.errors import UsageError

#: Tokens the distillation leaves out: unused slots of BERT vocabularies.
SKIPPED = re.compile(r"^\[unused\d+\]$")


def _is_static_model(folder: Path) -> bool:
    """Whether ``folder`` holds a static model (what ``distill`` may replace)."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(modules, list) and any("StaticEmbedding" in str(m.get("type", "")) for m in modules
                                             if isinstance(m, dict))


def distill(model: str | None, out: str | Path, dims: int = 256, batch_size: int = 512, device: str | None = None,
            sif: float = 1e-4, log: Callable[[str], None] = print, progress: bool = True) -> Path:
    """Distill ``model`` (any embedder ``st-code index`` takes; the packaged MiniLM by default) into a
    static model saved at ``out``; returns ``out``."""
    from st_code.outputs import check_output_folder, staged_folder
    from st_code.search.index import load_search_model

    if dims < 2:
        raise UsageError(f"--dims must be at least 2, got {dims}")
    out = check_output_folder(out, flag="--out", what="static model", owned=_is_static_model)
    loaded, name, _ = load_search_model(model, device)
    tokenizer = loaded.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError(f"{name} has no fast tokenizer: a static model needs one (tokenizers' Tokenizer)")
    vocabulary = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    special = set(tokenizer.all_special_ids)
    ids = [i for token, i in vocabulary if i not in special and not SKIPPED.match(token)]
    log(f"distill: embedding {len(ids)} tokens of {name} one by one")
    vectors = _token_vectors(loaded, ids, batch_size, progress)
    table = np.zeros((max(i for _, i in vocabulary) + 1, min(dims, vectors.shape[1])), dtype=np.float32)
    table[ids] = _weighted(_pca(vectors, dims), np.arange(len(ids)), sif)
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    static = SentenceTransformer(modules=[StaticEmbedding(tokenizer.backend_tokenizer, embedding_weights=table)],
                                 device="cpu")
    with staged_folder(out) as staging:
        static.save(str(staging))
    log(f"distill: {out} ({table.shape[1]} dimensions, {len(ids)} tokens); index with st-code index REPO "
        f"--model {out}")
    return out


def _token_vectors(model: Any, ids: list[int], batch_size: int, progress: bool) -> np.ndarray:
    """Each token id embedded by ``model`` alone, inside the model's special tokens."""
    import torch
    from tqdm.auto import tqdm

    tokenizer = model.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    prefix, suffix = _special_around(tokenizer)
    rows = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(ids), batch_size), disable=not progress, desc="distill", unit="batch"):
            inputs = [prefix + [i] + suffix for i in ids[start:start + batch_size]]
            width = max(map(len, inputs))
            input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in inputs], device=model.device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in inputs], device=model.device)
            features = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in tokenizer.model_input_names:
                features["token_type_ids"] = torch.zeros_like(input_ids)
            rows.append(model(features)["sentence_embedding"].float().cpu().numpy())
    return np.concatenate(rows)


def _special_around(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text (``[CLS]`` / ``[SEP]``, an EOS...)."""
    whole = tokenizer("code", add_special_tokens=True)["input_ids"]
    bare = tokenizer("code", add_special_tokens=False)["input_ids"]
    for start in range(len(whole) - len(bare) + 1):
        if whole[start:start + len(bare)] == bare:
            return whole[:start], whole[start + len(bare):]
    return [], []


def _pca(vectors: np.ndarray, dims: int) -> np.ndarray:
    """The first ``dims`` principal components (all of them, rotated, when ``dims`` >= the width)."""
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return (centred @ components[:dims].T).astype(np.float32)


def _weighted(vectors: np.ndarray, ranks: np.ndarray, sif: float) -> np.ndarray:
    """SIF weights ``sif / (sif + p)`` with ``p`` a Zipf estimate of each token's frequency from its rank."""
    frequency = 1.0 / ((ranks + 1) * np.log(len(ranks) + 1))
    return vectors * (sif / (sif + frequency))[:, None].astype(np.float32)


__all__ = ["distill"]
