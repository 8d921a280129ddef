"""A stage's rows before training: which rows of which source datasets it reads (``datasets``,
``max_samples_per_dataset``), and how often a ``mix`` reads each per epoch. Rows on disk
(:class:`~st_code.training.sample_table.SampleTable`) stay there: a stage is positions in them."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from st_code.data.records import Sample
from st_code.training.config import StageConfig
from st_code.training.sample_table import LocatedSample, SampleTable


@dataclass
class StageRows:
    """A stage's rows before filtering, and how often each source dataset is read per epoch.

    ``parts``: per source dataset, its rows and the positions chosen from them (``None``: all);
    ``rows``: rows each source contributes; ``repeats``: passes over it per epoch (1 without ``mix``;
    more for a dataset too small for its share). Repeats are made by the batch sampler
    (:mod:`st_code.training.mix_sampler`), never by copying rows, so no batch holds a row twice.
    Rows in a :class:`~st_code.training.sample_table.SampleTable` stay on disk until a step reads them."""

    parts: list[tuple[str, Sequence[Sample], list[int] | None]]
    rows: dict[str, int]
    repeats: dict[str, float]
    _source_of: dict[int, str] = field(repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        for name, rows, chosen in self.parts:
            if isinstance(rows, SampleTable):
                self._source_of[id(rows)] = name
            else:
                self._source_of.update((id(sample), name) for sample in _chosen(rows, chosen))

    @property
    def samples(self) -> Sequence[Sample]:
        """The stage's rows, in source order (read from disk as they are iterated, for tables)."""
        return StageView([(rows, chosen) for _, rows, chosen in self.parts])

    def source_of(self, sample: Sample) -> str:
        """The source dataset ``sample`` came from."""
        if isinstance(sample, LocatedSample) and sample.table is not None:
            return self._source_of[id(sample.table)]
        return self._source_of[id(sample)]

    def repeat_of(self, sample: Sample) -> float:
        """Passes per epoch over ``sample``'s source dataset."""
        return self.repeats[self.source_of(sample)]

    def group_sizes(self, num_negatives: int) -> list[tuple[str, tuple, bool]]:
        """``(source, group, has num_negatives negatives)`` per row, from the metadata columns alone
        for tables (no row text is read)."""
        result = []
        for name, rows, chosen in self.parts:
            if isinstance(rows, SampleTable):
                positions = range(len(rows)) if chosen is None else chosen
                task, code, language, count = (rows.column(c) for c in ("task", "code_language", "language",
                                                                        "num_negatives"))
                result.extend((name, (task[i], code[i], language[i]), count[i] >= num_negatives) for i in positions)
            else:
                result.extend((name, s.group, len(s.negatives) >= num_negatives) for s in _chosen(rows, chosen))
        return result


def column_of(rows: Sequence[Sample], name: str) -> list:
    """One field of every row: a table's column (no text read), or the samples' attribute."""
    return rows.column(name) if isinstance(rows, SampleTable) else [getattr(sample, name) for sample in rows]


def _chosen(rows: Sequence[Sample], chosen: list[int] | None) -> Sequence[Sample]:
    return rows if chosen is None else [rows[i] for i in chosen]


class StageView(Sequence[Sample]):
    """The rows of several sources as one sequence; a table's rows are read a chunk at a time."""

    def __init__(self, parts: list[tuple[Sequence[Sample], list[int] | None]]) -> None:
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(rows) if chosen is None else len(chosen) for rows, chosen in self.parts)

    def __iter__(self) -> Iterator[Sample]:
        return self.rows()

    def rows(self, text: bool = True) -> Iterator[Sample]:
        """The rows in order; ``text=False``: a table's rows without their text (see
        :meth:`~st_code.training.sample_table.SampleTable.rows`), for grouping them."""
        for rows, chosen in self.parts:
            if isinstance(rows, SampleTable):
                yield from rows.rows(range(len(rows)) if chosen is None else chosen, text=text)
            else:
                yield from _chosen(rows, chosen)

    def subset(self, keep: Sequence[bool]) -> StageView:
        """The rows whose flag in ``keep`` (one per row, in order) is true: positions, no text."""
        parts, offset = [], 0
        for rows, chosen in self.parts:
            positions = range(len(rows)) if chosen is None else chosen
            parts.append((rows, [p for j, p in enumerate(positions) if keep[offset + j]]))
            offset += len(positions)
        return StageView(parts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self)[index]
        for rows, chosen in self.parts:
            size = len(rows) if chosen is None else len(chosen)
            if index < size:
                return rows[index if chosen is None else chosen[index]]
            index -= size
        raise IndexError(index)


def keep_rows(samples: Sequence[Sample], keep: Sequence[bool]) -> Sequence[Sample]:
    """A filter's result: the flagged rows, as positions when ``samples`` is a :class:`StageView`
    (its rows stay on disk), else as a list."""
    if isinstance(samples, StageView):
        return samples.subset(keep)
    return [sample for sample, flag in zip(samples, keep) if flag]


def mix_shares(mix: dict[str, float]) -> dict[str, tuple[str, float]]:
    """``{dataset: (its share's key, the share's weight)}``: a key names one dataset, or several joined
    by ``+`` (``msmarco+nq``) that share one weight in proportion to their rows."""
    return {name: (key, weight) for key, weight in mix.items() for name in key.split("+")}


def mix_repeats(mix: dict[str, float] | None, rows: dict[str, int]) -> dict[str, float]:
    """Passes per epoch over each dataset so that each share of ``mix`` gets its weight's part of the
    rows read: the share with the most rows for its weight is read once, the others as often as their
    weight needs (the datasets of one share equally often). Nothing is thrown away."""
    if not mix:
        return {name: 1.0 for name in rows}
    sizes: dict[str, int] = {}
    for name, (key, _) in mix_shares(mix).items():
        sizes[key] = sizes.get(key, 0) + rows.get(name, 0)
    unit = max((n / mix[key] for key, n in sizes.items() if n), default=0.0)
    return {name: (unit * mix[key] / sizes[key] if sizes[key] else 0.0) for name, (key, _) in mix_shares(mix).items()}


def stage_rows(stage: StageConfig, sources: dict[str, Sequence[Sample]], seed: int) -> StageRows:
    """A stage's rows: ``max_samples_per_dataset`` applied (seeded), then ``mix`` as repeats."""
    rng = random.Random(seed)
    parts: list[tuple[str, Sequence[Sample], list[int] | None]] = []
    for name in stage.datasets:
        rows = sources[name]
        chosen = None
        if stage.max_samples_per_dataset is not None and len(rows) > stage.max_samples_per_dataset:
            chosen = rng.sample(range(len(rows)), stage.max_samples_per_dataset)
        parts.append((name, rows, chosen))
    counts = {name: len(rows) if chosen is None else len(chosen) for name, rows, chosen in parts}
    return StageRows(parts, counts, mix_repeats(stage.mix, counts))


def stage_samples(stage: StageConfig, sources: dict[str, list[Sample]], seed: int) -> list[Sample]:
    """A stage's rows before filtering (``max_samples_per_dataset`` applied; ``mix`` repeats rows
    in the batch sampler, not here: :func:`stage_rows`)."""
    return list(stage_rows(stage, sources, seed).samples)


__all__ = ["StageRows", "StageView", "column_of", "keep_rows", "mix_repeats", "mix_shares", "stage_rows", "stage_samples"]
