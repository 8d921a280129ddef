"""Stage 7: the final dataset as a ``datasets`` folder and JSONL that the Annealing trainer loads directly.

Columns: query, positive, negative_1..k, task, major_type, language, code_language, instruction
(and difficulty when labelled). One row per pair key: no duplicates, and files appear only whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from data_gen.records import Pair, write_jsonl


def rows_of(pairs: list[Pair], num_negatives: int | None = None) -> list[dict]:
    unique = {p.key: p for p in pairs}
    k = num_negatives if num_negatives is not None else min((len(p.negatives) for p in unique.values()), default=0)
    rows = []
    for key in sorted(unique):
        p = unique[key]
        if len(p.negatives) < k:
            continue
        row = {"query": p.query, "positive": p.positive}
        row.update({f"negative_{j + 1}": p.negatives[j] for j in range(k)})
        row.update({"task": p.task, "major_type": p.major_type, "language": p.language,
                    "code_language": p.code_language, "instruction": p.instruction})
        if p.difficulty is not None:
            row["difficulty"] = p.difficulty
        rows.append(row)
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
