"""Stage 5: hard negatives, through st-code's one mining wrapper (:mod:`st_code.mining`: TopK-PercPos
with a 95% margin, CodeR appendix E), 15 negatives per pair, searched over the task's positives plus
the real corpus, with any embedder (an st-code model or a packaged one).

Within a run, each document is embedded once for all tasks: the corpus is shared by every task, and
mining (per task, as its candidate pool is per task) would otherwise embed it again for each of up
to 47 tasks. The pipeline does not use sentence-transformers' on-disk embedding cache, which stores
the whole corpus again for every task.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from data_gen.pairs import Pair
from st_code.mining import DEFAULT_RANGE_MAX, DEFAULT_RELATIVE_MARGIN, mine_rows


@dataclass
class MiningReport:
    pairs_in: int = 0
    pairs_out: int = 0
    seconds: float = 0.0  # the whole stage
    embedding_seconds: float = 0.0  # inside the embedder (queries and documents)

    @property
    def search_seconds(self) -> float:
        """faiss search, margin filtering and selection: the rest of the stage."""
        return max(self.seconds - self.embedding_seconds, 0.0)


_MISSING = object()


@contextmanager
def _shadowed(embedder, name: str, wrap) -> Iterator[None]:
    """For the block, ``embedder.<name>`` is ``wrap(<what it was>)``; afterwards exactly what it was
    (so wrappers nest: the inner one's exit restores the outer one)."""
    previous = vars(embedder).get(name, _MISSING)
    setattr(embedder, name, wrap(getattr(embedder, name)))  # an instance attribute shadows the method
    try:
        yield
    finally:
        if previous is _MISSING:
            delattr(embedder, name)
        else:
            setattr(embedder, name, previous)


@contextmanager
def embed_documents_once(embedder) -> Iterator[dict]:
    """While active, ``embedder.encode_document`` embeds only texts it has not seen (same prompt and
    normalisation) and serves the rest from memory. Yields the memo (text -> vector)."""
    import numpy as np

    memo: dict = {}

    def wrap(original):
        def encode_document(inputs, **kwargs):  # sentence-transformers' own signature: inputs, then keywords
            settings = (kwargs.get("prompt_name"), kwargs.get("prompt"), bool(kwargs.get("normalize_embeddings")))
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            new = [t for t in dict.fromkeys(texts) if (settings, t) not in memo]
            if new:
                vectors = original(new, **{**kwargs, "convert_to_numpy": True, "convert_to_tensor": False})
                memo.update({(settings, t): v for t, v in zip(new, vectors)})
            stacked = np.stack([memo[(settings, t)] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)
            return stacked[0] if isinstance(inputs, str) else stacked
        return encode_document

    with _shadowed(embedder, "encode_document", wrap):
        yield memo


@contextmanager
def embedding_timer(embedder) -> Iterator[list[float]]:
    """Adds the seconds spent inside ``encode_query`` / ``encode_document`` to the yielded one-item list."""
    total = [0.0]

    def wrap(original):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                total[0] += time.perf_counter() - start
        return timed

    with _shadowed(embedder, "encode_query", wrap), _shadowed(embedder, "encode_document", wrap):
        yield total


def mine(pairs: list[Pair], embedder, corpus_texts: list[str], num_negatives: int = 15,
         relative_margin: float = DEFAULT_RELATIVE_MARGIN, batch_size: int | None = None,
         range_max: int = DEFAULT_RANGE_MAX) -> tuple[list[Pair], MiningReport]:
    """Add ``num_negatives`` negatives to each pair, per task (candidates: the task's positives plus
    the shared corpus); pairs without enough candidates are dropped. ``batch_size`` None:
    :func:`st_code.mining.default_batch_size` for the embedder's device. The report splits the time into embedding
    and the rest (search and selection)."""
    report = MiningReport(pairs_in=len(pairs))
    by_task: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_task.setdefault(pair.task, []).append(pair)
    kept: list[Pair] = []
    start = time.perf_counter()
    # the timer wraps the real encoders and the memo wraps the timer: texts served from memory cost nothing
    with embedding_timer(embedder) as embedding, embed_documents_once(embedder):
        for _, group in sorted(by_task.items()):
            negatives = mine_rows([p.query for p in group], [p.positive for p in group], embedder, num_negatives,
                                  relative_margin, range_max, batch_size, corpus=corpus_texts)
            for pair, found in zip(group, negatives):
                if found is not None:
                    pair.negatives = found
                    kept.append(pair)
    report.seconds = time.perf_counter() - start
    report.embedding_seconds = embedding[0]
    report.pairs_out = len(kept)
    return kept, report
