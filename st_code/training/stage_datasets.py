"""Stage datasets: samples grouped into homogeneous ``datasets.Dataset`` objects with their prompts.

Every batch is drawn from one dataset (sentence-transformers' multi-dataset samplers), so grouping
decides what a batch shares: one task, one programming language, one natural language and one
instruction (C2LLM's batches grouped by dataset and language). Metadata stays out of the dataset
columns: sentence-transformers feeds every column to the loss. (The readers: :mod:`st_code.data.readers`.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from datasets import Dataset

from st_code.data.readers import read_jsonl
from st_code.data.records import Sample
from st_code.training.sample_table import LocatedSample, training_dataset
from st_code.training.stage_rows import StageView


def dataset_key(task: str, language: str | None = None, code_language: str | None = None,
                variant: str | None = None) -> str:
    """The name of one homogeneous training dataset, e.g. ``"Code Summary Retrieval | Go | English"``."""
    return " | ".join(part for part in (task, code_language, language, variant) if part)


@dataclass
class StageDatasets:
    """What a stage trains on: ``datasets`` by name, the trainer's per-dataset ``prompts`` (``None``
    without instructions), and ``instructions``: ``{task: {instruction, ...}}`` actually used."""

    datasets: dict[str, Dataset] = field(default_factory=dict)
    prompts: dict[str, dict[str, str]] | None = None
    instructions: dict[str, set[str]] = field(default_factory=dict)
    groups: dict[str, tuple[str, str | None, str | None, str | None]] = field(default_factory=dict)
    #: rows read per epoch from each dataset: its rows, or more where ``mix`` repeats its source
    rows_per_epoch: dict[str, float] = field(default_factory=dict)

    def batches_per_epoch(self, batch_size: int) -> dict[str, int]:
        """Full batches each dataset gives per epoch (0 for a dataset smaller than one batch: a
        batch never holds a row twice, and a short last batch is dropped)."""
        return {key: int(self.rows_per_epoch.get(key, len(d)) // batch_size) if len(d) >= batch_size else 0
                for key, d in self.datasets.items()}


def build_stage_datasets(samples: list[Sample], num_negatives: int,
                         instruction_of: Callable[[Sample], str | None] | None = None,
                         query_prompt: Callable[[str | None], str | None] | None = None,
                         document_prompt: Callable[[str], str | None] | None = None,
                         repeat_of: Callable[[Sample], float] | None = None) -> StageDatasets:
    """Group ``samples`` by (task, code language, language, instruction); samples short of
    ``num_negatives`` negatives are dropped. Without ``instruction_of`` no prompts are made;
    ``repeat_of(sample)``: passes per epoch over the sample's source (``mix``), 1 without it."""
    grouped: dict[tuple, list] = {}
    weights: dict[tuple, float] = {}
    # rows on disk are grouped by their metadata alone: their text is cut from the file, never read
    for sample in (samples.rows(text=False) if isinstance(samples, StageView) else samples):
        if len(sample.negatives) < num_negatives:
            continue
        instruction = instruction_of(sample) if instruction_of else None
        key = (*sample.group, instruction)
        weights[key] = weights.get(key, 0.0) + (repeat_of(sample) if repeat_of else 1.0)
        # a row of an on-disk table is kept as its place in the file, not its text
        located = isinstance(sample, LocatedSample) and sample.table is not None
        grouped.setdefault(key, []).append((sample.table, sample.row) if located else sample)
    instructions_per_group: dict[tuple, set[str | None]] = {}
    for task, code_language, language, instruction in grouped:
        instructions_per_group.setdefault((task, code_language, language), set()).add(instruction)

    from st_code.training.instructions import variant_label

    result = StageDatasets(prompts={} if instruction_of else None)
    for (task, code_language, language, instruction), group in grouped.items():
        several = len(instructions_per_group[(task, code_language, language)]) > 1
        variant = variant_label(task, instruction) if several and instruction else None
        key = dataset_key(task, language, code_language, variant)
        result.datasets[key] = _group_dataset(group, num_negatives)
        result.groups[key] = (task, code_language, language, instruction)
        result.rows_per_epoch[key] = weights[(task, code_language, language, instruction)]
        columns = result.datasets[key].column_names
        if instruction_of is None:
            continue
        column_prompts: dict[str, str] = {}
        anchor = query_prompt(instruction) if (query_prompt and instruction) else None
        if anchor:
            column_prompts["anchor"] = anchor
            result.instructions.setdefault(task, set()).add(instruction)
        document = document_prompt(task) if document_prompt else None
        if document:
            column_prompts.update({name: document for name in columns if name != "anchor"})
        if column_prompts:
            result.prompts[key] = column_prompts
    return result


def _group_dataset(group: list, num_negatives: int) -> Dataset:
    """A group's training dataset: a zero-copy cut of its tables where its rows are on disk, else
    built from the samples' text."""
    if all(isinstance(item, tuple) for item in group):
        by_table: dict[int, tuple] = {}
        for table, row in group:
            by_table.setdefault(id(table), (table, []))[1].append(row)
        return training_dataset(list(by_table.values()), num_negatives)
    rows = [item[0][item[1]] if isinstance(item, tuple) else item for item in group]  # (table, row) read back
    columns: dict[str, list[str]] = {"anchor": [s.query for s in rows], "positive": [s.positive for s in rows]}
    for j in range(num_negatives):
        columns[f"negative_{j + 1}"] = [s.negatives[j] for s in rows]
    return Dataset.from_dict(columns)


def check_batch_fits(stage_name: str, batch_size: int, stage_sets: StageDatasets,
                     log: Callable[[str], None]) -> dict[str, int]:
    """Rows per dataset of a stage, or an error when no dataset holds one batch: batches never mix
    datasets and a short last batch is dropped. Datasets smaller than a batch are named (not trained on)."""
    from st_code.errors import UsageError

    sizes = {key: len(d) for key, d in stage_sets.datasets.items()}
    largest = max(sizes, key=sizes.get)
    if sizes[largest] < batch_size:
        raise UsageError(
            f"stage {stage_name!r}: batch_size {batch_size} is larger than every one of its datasets (the "
            f"largest, {largest!r}, has {sizes[largest]} rows), so no batch can be formed; lower batch_size or "
            "give the stage more data")
    too_small = [key for key, n in sizes.items() if n < batch_size]
    if too_small:
        log(f"  note: {len(too_small)} dataset(s) hold fewer rows than one batch ({batch_size}) and "
            f"are not trained on: {', '.join(too_small[:5])}{' ...' if len(too_small) > 5 else ''}")
    return sizes


def group_samples(samples: list[Sample], num_negatives: int) -> dict[str, Dataset]:
    """``{"task | code language | language": Dataset(anchor, positive, negative_1..k)}`` without prompts."""
    return build_stage_datasets(samples, num_negatives).datasets


def save_samples(samples: list[Sample], path: Path) -> None:
    """Write samples as JSONL atomically (a crash never leaves half a file)."""
    from st_code.outputs import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for s in samples:
            handle.write(json.dumps(s.__dict__, ensure_ascii=False) + "\n")


def read_samples(path: Path) -> list[Sample]:
    known = {f.name for f in fields(Sample)}
    return [Sample(**{k: v for k, v in record.items() if k in known}) for record in read_jsonl(path)]


__all__ = ["StageDatasets", "build_stage_datasets", "check_batch_fits", "group_samples", "dataset_key", "save_samples",
           "read_samples"]
