"""Stage 5: hard negatives with sentence-transformers' ``mine_hard_negatives`` over faiss.

TopK-PercPos with a 95% margin (``relative_margin=0.05``, CodeR appendix E), 15 negatives, searched
over the task's positives plus the real corpus, with any embedder (an st-code model or a packaged one).
With ``cache_folder`` the embeddings are kept on disk (sentence-transformers' own cache), so a rerun
after a crash does not embed again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from data_gen.records import Pair


@dataclass
class MiningReport:
    pairs_in: int = 0
    pairs_out: int = 0
    seconds: float = 0.0  # embedding + faiss search: mine_hard_negatives does both in one call


def mine(pairs: list[Pair], embedder, corpus_texts: list[str], num_negatives: int = 15,
         relative_margin: float = 0.05, batch_size: int = 64, range_max: int = 100,
         cache_folder: str | None = None) -> tuple[list[Pair], MiningReport]:
    """Add ``num_negatives`` negatives to each pair, per task; pairs without enough candidates are dropped."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    report = MiningReport(pairs_in=len(pairs))
    by_task: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_task.setdefault(pair.task, []).append(pair)
    kept: list[Pair] = []
    for task, group in sorted(by_task.items()):
        start = time.perf_counter()
        dataset = Dataset.from_dict({"anchor": [p.query for p in group], "positive": [p.positive for p in group]})
        extra = [text for text in corpus_texts if text]
        result = mine_hard_negatives(
            dataset, embedder, corpus=extra or None, num_negatives=num_negatives, relative_margin=relative_margin,
            range_max=max(num_negatives + 1, min(range_max, len(group) + len(extra) - 1)), sampling_strategy="top",
            output_format="n-tuple", use_faiss=True, batch_size=batch_size, verbose=False, cache_folder=cache_folder,
        )
        report.seconds += time.perf_counter() - start
        by_text = {(p.query, p.positive): p for p in group}
        for row in result:
            pair = by_text.get((row["anchor"], row["positive"]))
            if pair is not None:
                pair.negatives = [row[f"negative_{j + 1}"] for j in range(num_negatives)]
                kept.append(pair)
    report.pairs_out = len(kept)
    return kept, report
