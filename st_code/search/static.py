"""Static embeddings for fast CPU indexing: an embedder distilled into one vector per vocabulary token.

A static model embeds a text as the mean of its tokens' vectors: no attention, thousands of units a
second on one core, so a repository indexes in seconds (``st-code distill``, then ``st-code index
--model`` the folder). The recipe is model2vec's: every vocabulary token is embedded by the model on
its own (with the model's special tokens around it), the vectors are reduced by PCA, and frequent
tokens are down-weighted (SIF weights over a Zipf estimate of each token's frequency, from its rank
in the vocabulary). Then the space is aligned with the model's own (``align_texts``): a sample of code
units and doc comments (Python's standard library by default, or ``align_corpus``) is embedded by the
model and by the static table, and one least-squares linear map takes the table's mean-pooled vectors to
the model's (PCA-reduced) ones; mean pooling is linear, so the map is folded into the table and the
saved model is an ordinary one. It is written here because model2vec's own distiller pins ``transformers<5.4``,
which cannot be installed beside st-code's; the result is sentence-transformers' ``StaticEmbedding``
module, so the saved folder loads anywhere with ``SentenceTransformer(path)``.
"""

from __future__ import annotations

import json
import re
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from st_code.errors import UsageError

#: Texts that align the static space with the model's (docs/benchmarks.md: fewer than ~3,000 lose).
ALIGN_TEXTS = 4000
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
            sif: float = 1e-4, align_texts: int = ALIGN_TEXTS, align_corpus: str | Path | None = None,
            log: Callable[[str], None] = print, progress: bool = True) -> Path:
    """Distill ``model`` (any embedder ``st-code index`` takes; the packaged MiniLM by default) into a
    static model saved at ``out``; returns ``out``. ``align_texts`` units and docs of ``align_corpus`` (a
    folder of code; Python's standard library by default) align its space with the model's (0: not)."""
    from st_code.outputs import check_output_folder, staged_folder
    from st_code.search.index import load_search_model

    if dims < 2:
        raise UsageError(f"--dims must be at least 2, got {dims}")
    if align_texts < 0:
        raise UsageError(f"--align-texts must be 0 (no alignment) or more, got {align_texts}")
    if align_texts and align_texts < 2 * dims:
        raise UsageError(f"--align-texts {align_texts} is too few to fit {dims} dimensions: use at least "
                         f"{2 * dims}, or 0 to skip the alignment")
    if align_corpus is not None and not Path(align_corpus).exists():
        raise UsageError(f"--align-corpus {align_corpus} does not exist: pass a folder of code")
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
    if align_texts:
        corpus = Path(align_corpus) if align_corpus is not None else Path(sysconfig.get_paths()["stdlib"])
        texts = sample_texts(corpus, align_texts)
        if len(texts) < 2 * table.shape[1]:
            raise UsageError(f"{corpus} gave {len(texts)} code units and docs, too few to align {table.shape[1]} "
                             f"dimensions: pass a bigger --align-corpus, or --align-texts 0")
        log(f"distill: aligning with {name} on {len(texts)} texts of {corpus}")
        table = _aligned(table, loaded, texts, progress)
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


def sample_texts(corpus: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` code units and doc comments of the code under ``corpus``, drawn evenly (reservoir sampling:
    one pass, ``count`` texts in memory however big the corpus)."""
    import random

    from st_code.data.code_units import split_units
    from st_code.data.repository import walk_repository
    from st_code.search.sibling_packs import pack_small_units

    rng = random.Random(seed)
    chosen: list[str] = []
    seen = 0
    for found in walk_repository(corpus):
        if found.text is None:
            continue
        for unit in pack_small_units(split_units(found.text, found.language, found.path), found.text):
            for text in (unit.text, unit.doc):
                if not text.strip():
                    continue
                seen += 1
                if len(chosen) < count:
                    chosen.append(text)
                elif (slot := rng.randrange(seen)) < count:
                    chosen[slot] = text
    return chosen


def _aligned(table: np.ndarray, model: Any, texts: list[str], progress: bool) -> np.ndarray:
    """``table`` times the least-squares map from its mean-pooled vectors of ``texts`` to ``model``'s
    vectors of them, reduced by PCA to the table's width."""
    dims = table.shape[1]
    teacher = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=progress).astype(np.float64)
    target = _pca(teacher, dims).astype(np.float64)
    target /= np.maximum(np.linalg.norm(target, axis=1, keepdims=True), 1e-12)
    window = int(getattr(model, "max_seq_length", None) or 512) - 2  # the tokens the model read, less its specials
    pooled = np.zeros((len(texts), dims))
    for row, encoding in enumerate(model.tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)):
        token_ids = encoding.ids[:window]
        if token_ids:
            pooled[row] = table[token_ids].mean(axis=0)
    mapping, *_ = np.linalg.lstsq(pooled, target, rcond=None)
    return (table @ mapping).astype(np.float32)


def _pca(vectors: np.ndarray, dims: int) -> np.ndarray:
    """The first ``dims`` principal components (all of them, rotated, when ``dims`` >= the width)."""
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return (centred @ components[:dims].T).astype(np.float32)


def _weighted(vectors: np.ndarray, ranks: np.ndarray, sif: float) -> np.ndarray:
    """SIF weights ``sif / (sif + p)`` with ``p`` a Zipf estimate of each token's frequency from its rank."""
    frequency = 1.0 / ((ranks + 1) * np.log(len(ranks) + 1))
    return vectors * (sif / (sif + frequency))[:, None].astype(np.float32)


__all__ = ["distill", "sample_texts", "ALIGN_TEXTS"]
