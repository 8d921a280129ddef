"""Training rows on disk: one source's rows in an Arrow file (``datasets``' own format), memory-mapped.

A run's sources can hold millions of rows; as Python objects each row's text lives in memory twice
over (the strings and the training ``Dataset`` built from them). Here the rows are written once, in
chunks, with their negatives as ``negative_1..k`` columns beside the query and positive, so a stage's
training dataset is a zero-copy cut of the file: :meth:`SampleTable.training_columns` selects its
rows and columns without reading them. Python sees a row only when a step asks for one (filters,
planning): a :class:`LocatedSample`, which remembers where it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, Features, Value, concatenate_datasets
from datasets.arrow_writer import ArrowWriter

from st_code.data.records import Sample

METADATA = ("task", "language", "code_language", "instruction", "difficulty", "major_type", "difficulty_model")
CHUNK = 8192


@dataclass
class LocatedSample(Sample):
    """A :class:`Sample` read from a :class:`SampleTable`: ``table`` and ``row`` say where it lives."""

    table: SampleTable | None = field(default=None, repr=False, compare=False)
    row: int = field(default=-1, repr=False, compare=False)


def write_table(samples: Iterable[Sample], path: Path, num_negatives: int) -> int:
    """Write ``samples`` to an Arrow file at ``path`` with up to ``num_negatives`` negatives each (a
    row's ``num_negatives`` column says how many it has); returns the rows written."""
    columns = {"query": Value("string"), "positive": Value("string"), "num_negatives": Value("int32"),
               **{f"negative_{j + 1}": Value("string") for j in range(num_negatives)},
               **{name: Value("string") for name in METADATA}}
    written = 0
    with ArrowWriter(features=Features(columns), path=str(path)) as writer:
        batch: list[Sample] = []
        for sample in samples:
            batch.append(sample)
            if len(batch) == CHUNK:
                writer.write_batch(_columns(batch, num_negatives))
                written, batch = written + len(batch), []
        if batch or not written:
            writer.write_batch(_columns(batch, num_negatives))
            written += len(batch)
        writer.finalize()
    return written


def _columns(batch: list[Sample], num_negatives: int) -> dict[str, list]:
    result: dict[str, list] = {"query": [s.query for s in batch], "positive": [s.positive for s in batch],
                               "num_negatives": [min(len(s.negatives), num_negatives) for s in batch]}
    for j in range(num_negatives):
        result[f"negative_{j + 1}"] = [s.negatives[j] if j < len(s.negatives) else None for s in batch]
    for name in METADATA:
        result[name] = [getattr(s, name) for s in batch]
    return result


class SampleTable(Sequence[Sample]):
    """One source's rows, memory-mapped from the Arrow file :func:`write_table` wrote."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.dataset = Dataset.from_file(str(self.path))
        self.max_negatives = sum(1 for c in self.dataset.column_names if c.startswith("negative_"))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self.rows(range(*index.indices(len(self)))))
        if index < 0:
            index += len(self)
        return next(self.rows([index]))

    def __iter__(self) -> Iterator[LocatedSample]:
        return self.rows(range(len(self)))

    def rows(self, indices: Sequence[int], text: bool = True) -> Iterator[LocatedSample]:
        """The rows at ``indices`` as samples, read a chunk at a time. ``text=False`` reads only the
        metadata: query, positive and negatives come back empty (as many negatives as the row has),
        for grouping rows whose text is then cut from the file, never read."""
        names = ["num_negatives", *METADATA] + (["query", "positive"] + [f"negative_{j + 1}" for j in
                                                                         range(self.max_negatives)] if text else [])
        table = self.dataset.data.table.select(names)
        for start in range(0, len(indices), CHUNK):
            chunk = list(indices[start:start + CHUNK])
            batch = table.take(chunk).to_pydict()
            for k, row in enumerate(chunk):
                count = batch["num_negatives"][k]
                query, positive = (batch["query"][k], batch["positive"][k]) if text else ("", "")
                negatives = [batch[f"negative_{j + 1}"][k] for j in range(count)] if text else [""] * count
                yield LocatedSample(query, positive, negatives, **{name: batch[name][k] for name in METADATA},
                                    table=self, row=row)

    def column(self, name: str) -> list:
        """One column as a list (cheap for the short metadata and count columns), read straight from
        Arrow: ``dataset[name]`` formats it row by row."""
        return self.dataset.data.column(name).to_pylist()

    def training_columns(self, rows: Sequence[int], num_negatives: int) -> Dataset:
        """``anchor, positive, negative_1..num_negatives`` of ``rows``: a view of the file, nothing copied."""
        keep = ["query", "positive", *[f"negative_{j + 1}" for j in range(num_negatives)]]
        return self.dataset.select_columns(keep).rename_column("query", "anchor").select(rows)


def training_dataset(parts: list[tuple[SampleTable, list[int]]], num_negatives: int) -> Dataset:
    """One training dataset from rows of one or more tables."""
    views = [table.training_columns(rows, num_negatives) for table, rows in parts if rows]
    return views[0] if len(views) == 1 else concatenate_datasets(views)


__all__ = ["SampleTable", "LocatedSample", "write_table", "training_dataset", "METADATA"]
