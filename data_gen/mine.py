"""Stage 5: hard negatives with sentence-transformers' ``mine_hard_negatives`` over faiss.

TopK-PercPos with a 95% margin (``relative_margin=0.05``, CodeR appendix E), 15 negatives, searched
over the task's positives plus the real corpus, with any embedder (an st-code model or a packaged one).
``cache_folder`` passes through to sentence-transformers' on-disk cache (the benchmark uses it to
time search alone); the pipeline does not set it, since that cache stores the whole corpus again for
every task (47 x corpus x dim floats on disk). Within a run, each document is embedded once for all
tasks: the corpus is shared by every task, and ``mine_hard_negatives`` (called per task, as its
candidate pool is per task) would otherwise embed it again for each of up to 47 tasks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from data_gen.records import Pair


@dataclass
class MiningReport:
    pairs_in: int = 0
    pairs_out: int = 0
    seconds: float = 0.0  # embedding + faiss search: mine_hard_negatives does both in one call


@contextmanager
def embed_documents_once(embedder) -> Iterator[dict]:
    """While active, ``embedder.encode_document`` embeds only texts it has not seen (same prompt and
    normalisation) and serves the rest from memory. Yields the memo (text -> vector)."""
    import numpy as np

    original = embedder.encode_document
    memo: dict = {}

    def encode_document(inputs, **kwargs):  # sentence-transformers' own signature: inputs, then keywords
        settings = (kwargs.get("prompt_name"), kwargs.get("prompt"), bool(kwargs.get("normalize_embeddings")))
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        new = [t for t in dict.fromkeys(texts) if (settings, t) not in memo]
        if new:
            vectors = original(new, **{**kwargs, "convert_to_numpy": True, "convert_to_tensor": False})
            memo.update({(settings, t): v for t, v in zip(new, vectors)})
        stacked = np.stack([memo[(settings, t)] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)
        return stacked[0] if isinstance(inputs, str) else stacked

    embedder.encode_document = encode_document  # an instance attribute: shadows the method, removed below
    try:
        yield memo
    finally:
        del embedder.encode_document


def mine(pairs: list[Pair], embedder, corpus_texts: list[str], num_negatives: int = 15,
         relative_margin: float = 0.05, batch_size: int = 64, range_max: int = 100,
         cache_folder: str | None = None) -> tuple[list[Pair], MiningReport]:
    """Add ``num_negatives`` negatives to each pair, per task; pairs without enough candidates are dropped."""
    report = MiningReport(pairs_in=len(pairs))
    by_task: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_task.setdefault(pair.task, []).append(pair)
    corpus = [text for text in corpus_texts if text]
    kept: list[Pair] = []
    start = time.perf_counter()
    with embed_documents_once(embedder):
        for _, group in sorted(by_task.items()):
            kept += _mine_task(group, embedder, corpus, num_negatives, relative_margin, batch_size, range_max,
                               cache_folder)
    report.seconds = time.perf_counter() - start
    report.pairs_out = len(kept)
    return kept, report


def _mine_task(group: list[Pair], embedder, corpus: list[str], num_negatives: int, relative_margin: float,
               batch_size: int, range_max: int, cache_folder: str | None) -> list[Pair]:
    """One task: candidates are the task's positives plus the shared corpus."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    dataset = Dataset.from_dict({"anchor": [p.query for p in group], "positive": [p.positive for p in group]})
    result = mine_hard_negatives(
        dataset, embedder, corpus=corpus or None, num_negatives=num_negatives, relative_margin=relative_margin,
        range_max=max(num_negatives + 1, min(range_max, len(group) + len(corpus) - 1)), sampling_strategy="top",
        output_format="n-tuple", use_faiss=True, batch_size=batch_size, verbose=False, cache_folder=cache_folder,
    )
    by_text = {(p.query, p.positive): p for p in group}
    kept: list[Pair] = []
    for row in result:
        pair = by_text.get((row["anchor"], row["positive"]))
        if pair is not None:
            pair.negatives = [row[f"negative_{j + 1}"] for j in range(num_negatives)]
            kept.append(pair)
    return kept
