"""What the loss saw: the first batches of a stage written out as text, prompts included.

``record_batches: N`` in a curriculum config writes the first ``N`` batches of every stage to
``stages/<n>-<name>/batches.jsonl``: which dataset(s) the rows came from, and every column's texts
exactly as the model tokenizes them (the prompt prepended as sentence-transformers prepends it).
Use it to check that batches are homogeneous and that instructions are the ones you meant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator


@dataclass
class RecordingCollator(SentenceTransformerDataCollator):
    """The stock collator, writing its first ``limit`` batches to ``path`` (JSON lines)."""

    path: Path | None = field(default=None, repr=False)
    limit: int = 0
    _written: int = field(default=0, init=False, repr=False)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if self.path is not None and self._written < self.limit and features:
            self._record(features)
        return super().__call__(features)

    def _record(self, features: list[dict[str, Any]]) -> None:
        names = sorted({str(f.get("dataset_name")) for f in features if "dataset_name" in f})
        prompts = self._resolve_prompts({"dataset_name": features[0]["dataset_name"]} if names else {})
        columns = {}
        for column in features[0]:
            if column == "dataset_name" or column in self.valid_label_columns:
                continue
            prompt = self._get_prompt_for_column(prompts, column) or ""
            columns[column] = [prompt + row[column] for row in features]
        record = {"batch": self._written, "datasets": names, "columns": columns}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._written += 1


def read_batches(path: str | Path) -> list[dict[str, Any]]:
    """The records :class:`RecordingCollator` wrote."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


__all__ = ["RecordingCollator", "read_batches"]
