"""The records every part of st-code passes around, declared once.

* :class:`Sample` - one training row: a query, its positive, hard negatives, and the metadata that
  decides how it is batched and instructed. Its fields are the columns ``data_gen`` writes
  (CodeR-Pile's triplets), under the same names, so the training loader keeps every one of them.
* :class:`RetrievalSet` - an evaluation set: queries, corpus and relevance judgements.

The on-disk row layout is :data:`ROW_COLUMNS` plus ``negative_1`` .. ``negative_k``
(:func:`sample_to_row` / :func:`row_to_sample` convert).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The row layout of a training file (data_gen's ``triplets.jsonl`` / ``dataset/``), besides
#: ``negative_1`` .. ``negative_k``. ``language`` is the natural language of the text side
#: (English, Chinese), ``code_language`` the programming language of the code side.
ROW_COLUMNS: tuple[str, ...] = (
    "query", "positive", "task", "major_type", "language", "code_language", "instruction", "difficulty",
    "difficulty_model",
)
NEGATIVE_PREFIX = "negative_"

#: CodeR Table 17 difficulty labels, as data_gen writes them and stage-3 filters read them.
DIFFICULTY_LABELS: tuple[str, ...] = ("simple", "medium", "hard", "no")


@dataclass
class Sample:
    """One training row.

    Args:
        query, positive: the pair.
        negatives: hard negatives (mined or given), best first.
        task: the retrieval task (a CodeR-Pile or evaluation task name, or your own).
        language: natural language of the text side (``English``, ``Chinese``); ``None`` if unknown.
        code_language: programming language of the code side (``Python``...); ``None`` for text-only rows.
        instruction: this row's task instruction, placeholders filled (data_gen writes it); ``None``:
            the task's instruction from the registry.
        difficulty: CodeR Table 17 label (``simple``/``medium``/``hard``/``no``) if the row was judged.
        difficulty_model: the LLM that gave ``difficulty`` (``openai/gpt-4o-mini``...), if known.
        major_type: Text2Code / Code2Text / Code2Code / Hybrid, if known.
    """

    query: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    task: str = "default"
    language: str | None = None
    code_language: str | None = None
    instruction: str | None = None
    difficulty: str | None = None
    major_type: str | None = None
    difficulty_model: str | None = None

    @property
    def group(self) -> tuple[str, str | None, str | None]:
        """What a homogeneous training batch shares: task, programming language, natural language."""
        return self.task, self.code_language, self.language


def sample_to_row(sample: Sample, num_negatives: int | None = None) -> dict[str, Any]:
    """A :class:`Sample` as a row of :data:`ROW_COLUMNS` plus ``negative_1..k`` (all negatives by default)."""
    k = len(sample.negatives) if num_negatives is None else num_negatives
    row: dict[str, Any] = {"query": sample.query, "positive": sample.positive}
    row.update({f"{NEGATIVE_PREFIX}{j + 1}": sample.negatives[j] for j in range(k)})
    for name in ROW_COLUMNS[2:]:
        row[name] = getattr(sample, name)
    return row


def row_negatives(row: dict[str, Any]) -> list[str]:
    """Negatives of a row in any of the usual layouts: ``negatives``/``neg`` lists, ``negative``,
    ``negative_1..k``."""
    for key in ("negatives", "neg"):
        if isinstance(row.get(key), list):
            return [n for n in row[key] if n]
    numbered = sorted((k for k in row if k.startswith(NEGATIVE_PREFIX) and k[len(NEGATIVE_PREFIX):].isdigit()),
                      key=lambda k: int(k[len(NEGATIVE_PREFIX):]))
    single = [row["negative"]] if row.get("negative") else []
    return single + [row[k] for k in numbered if row[k]]


def row_to_sample(row: dict[str, Any]) -> Sample:
    """The inverse of :func:`sample_to_row` (missing metadata columns become ``None``)."""
    return Sample(query=row["query"], positive=row["positive"], negatives=row_negatives(row),
                  task=row.get("task") or "default",
                  **{name: row.get(name) or None for name in ROW_COLUMNS[4:]},
                  major_type=row.get("major_type") or None)


@dataclass
class RetrievalSet:
    """An evaluation set: queries, corpus, qrels, and the instruction for its queries.

    ``task`` names the retrieval task the set belongs to (e.g. the ``task`` column of data_gen rows),
    so a model's ``"{task}-query"`` prompt is found for it; ``None`` when unknown.
    """

    name: str
    instruction: str
    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]
    task: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "instruction": self.instruction, "queries": self.queries, "corpus": self.corpus,
                "relevant": {k: sorted(v) for k, v in self.relevant.items()}, "task": self.task}

    @classmethod
    def from_json(cls, data: dict) -> "RetrievalSet":
        return cls(data["name"], data["instruction"], data["queries"], data["corpus"],
                   {k: set(v) for k, v in data["relevant"].items()}, data.get("task"))


__all__ = ["Sample", "RetrievalSet", "ROW_COLUMNS", "DIFFICULTY_LABELS", "sample_to_row", "row_to_sample",
           "row_negatives"]
