"""Stage 7: the final dataset as a ``datasets`` folder and JSONL that the Annealing trainer loads directly.

Columns: query, positive, negative_1..k, task, major_type, language, code_language, instruction,
difficulty (``null`` where not labelled), difficulty_model (the LLM that labelled it): the row layout st-code's readers declare once
(``st_code.data.records``). One row per pair key: no duplicates, and files appear only whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from data_gen.pairs import Pair, write_jsonl


def rows_of(pairs: list[Pair], num_negatives: int | None = None) -> list[dict]:
    """Rows in st-code's one training-row layout (:data:`st_code.data.records.ROW_COLUMNS`), one per
    pair key, pairs short of ``num_negatives`` negatives left out."""
    from st_code.data.records import Sample, sample_to_row

    unique = {p.key: p for p in pairs}
    k = num_negatives if num_negatives is not None else min((len(p.negatives) for p in unique.values()), default=0)
    rows = []
    for key in sorted(unique):
        p = unique[key]
        if len(p.negatives) < k:
            continue
        sample = Sample(p.query, p.positive, p.negatives[:k], p.task, p.language, p.code_language, p.instruction,
                        p.difficulty, p.major_type, p.difficulty_model)
        rows.append(sample_to_row(sample, k))
    return rows


def write_dataset(pairs: list[Pair], out_dir: Path, num_negatives: int | None = None) -> int:
    """Write ``out_dir/triplets.jsonl`` and the ``out_dir/dataset`` folder; returns the row count."""
    from datasets import Dataset

    rows = rows_of(pairs, num_negatives)
    if not rows:
        raise ValueError("no pairs survived the pipeline: nothing to write (see the summary for the reasons)")
    write_jsonl(out_dir / "triplets.jsonl", rows)
    tmp = out_dir / "dataset.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    Dataset.from_list(rows).save_to_disk(str(tmp))
    final = out_dir / "dataset"
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return len(rows)
