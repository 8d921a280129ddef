"""An append-only journal of finished work, so a killed run continues where it stopped.

Each line is one JSON record ``{"key", "stage", "status", ...}``, written whole and flushed; a line
cut short by a crash is ignored when reading back. Keys hash (stage, task, languages, input, step),
so rerunning the same command repeats no finished call.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def work_key(*parts: Any) -> str:
    """A stable key for one unit of work."""
    return hashlib.sha1(json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str).encode()).hexdigest()


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._cut_torn_tail()
            with self.path.open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a damaged line: that work is simply redone
                    if isinstance(record, dict) and "key" in record:
                        self.records[record["key"]] = record
        self._handle = self.path.open("a", encoding="utf-8")

    def _cut_torn_tail(self) -> None:
        """A crash mid-write leaves a last line without its newline; cut it off, or the next record
        would be appended to it and both be lost. (That call is made again.)"""
        with self.path.open("rb+") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            if size == 0:
                return
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            position = size
            while position > 0:  # back to the last complete line
                step = min(65536, position)
                handle.seek(position - step)
                chunk = handle.read(step)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    handle.truncate(position - step + newline + 1)
                    return
                position -= step
            handle.truncate(0)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        self.records[record["key"]] = record

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if not self._handle.closed:
            self.sync()
            self._handle.close()

    def of_stage(self, stage: str) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if r.get("stage") == stage]
