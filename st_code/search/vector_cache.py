"""Vectors an index no longer holds, kept for when their code comes back.

A ``git checkout`` to another branch and back, or a revert, brings back units the index dropped on the
way; they are the same content (same hash), so they need no embedding. An update keeps the vectors of
dropped units in ``cache/`` (``hashes.json`` and ``vectors.npy``), newest first, up to as many as the
index holds (at least :data:`MIN_KEPT`), and looks every unit up there as well as in the index. File
outlines (:mod:`st_code.search.file_outlines`) go the same way, keyed by the hash of their text.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FOLDER = "cache"
#: Dropped vectors kept at least this many, whatever the index's size.
MIN_KEPT = 10_000


class KnownVectors:
    """Every vector a previous index folder can give back, by content hash."""

    def __init__(self, previous: Path | None, index_hashes: list[str]) -> None:
        self.sources: list[np.ndarray] = []
        self.where: dict[str, tuple[int, int]] = {}
        self.order: list[str] = []  # the index's hashes, then the cached ones, newest first
        if previous is None:
            return
        self._add(np.load(previous / "vectors.npy", mmap_mode="r"), index_hashes)
        from st_code.search.file_outlines import FileOutlines

        outlines = FileOutlines.open(previous)
        if outlines is not None and outlines.vectors.shape[1:] == self.sources[0].shape[1:]:
            self._add(outlines.vectors, outlines.hashes)
        cache = previous / FOLDER
        if (cache / "hashes.json").is_file() and (cache / "vectors.npy").is_file():
            try:
                cached = json.loads((cache / "hashes.json").read_text())
                vectors = np.load(cache / "vectors.npy", mmap_mode="r")
            except (ValueError, OSError):  # a damaged cache only costs re-embedding
                return
            if len(cached) == len(vectors) and vectors.shape[1:] == self.sources[0].shape[1:]:
                self._add(vectors, cached)

    def _add(self, vectors: np.ndarray, hashes: list[str]) -> None:
        source = len(self.sources)
        self.sources.append(vectors)
        for row, digest in enumerate(hashes):
            if digest not in self.where:
                self.where[digest] = (source, row)
                self.order.append(digest)

    def __contains__(self, digest: str) -> bool:
        return digest in self.where

    def __getitem__(self, digest: str) -> np.ndarray:
        source, row = self.where[digest]
        return self.sources[source][row]

    def write_cache(self, folder: Path, kept: set[str]) -> int:
        """Save the vectors of hashes not in ``kept`` (the new index) into ``folder/cache``; how many."""
        dropped = [digest for digest in self.order if digest not in kept][:max(MIN_KEPT, len(kept))]
        if not dropped:
            return 0
        (folder / FOLDER).mkdir()
        out = np.lib.format.open_memmap(folder / FOLDER / "vectors.npy", mode="w+", dtype=np.float32,
                                        shape=(len(dropped), self.sources[0].shape[1]))
        for row, digest in enumerate(dropped):
            out[row] = self[digest]
        out.flush()
        (folder / FOLDER / "hashes.json").write_text(json.dumps(dropped))
        return len(dropped)


__all__ = ["KnownVectors", "MIN_KEPT"]
