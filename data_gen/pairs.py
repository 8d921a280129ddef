"""The records stages pass to each other, and atomic JSONL reading/writing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Pair:
    """One synthetic training sample as it moves through annotate -> mine -> difficulty -> write."""

    key: str
    task: str
    major_type: str
    language: str  # natural language of the generated text: English or Chinese
    code_language: str
    instruction: str
    query: str
    positive: str
    source_id: str
    label: int | None = None
    negatives: list[str] = field(default_factory=list)
    difficulty: str | None = None
    difficulty_model: str | None = None  # the LLM that gave ``difficulty``

    def to_dict(self) -> dict[str, Any]:
        # a shallow copy: dataclasses.asdict deep-copies every string (30 us a pair, measured)
        row = dict(vars(self))
        row["negatives"] = list(self.negatives)
        return row


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """All rows or nothing: written to a temporary file, then renamed over ``path``."""
    from st_code.outputs import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the stage that writes it first (see --help)")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_pairs(path: Path) -> list[Pair]:
    return [Pair(**row) for row in read_jsonl(path)]
