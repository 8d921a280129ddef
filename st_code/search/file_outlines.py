"""One vector per file: its path and the names it defines, embedded beside its units.

Most questions asked of a code search name what a file is for ("HTTP router and middleware
composition" -> ``mux.go``), while a unit's vector sees only its own lines. A file's outline (its path,
then the names of its definitions in order) says what the file as a whole holds; hybrid search blends
each candidate's cosine with its file's outline cosine (``RankingWeights.file_outline``). Figures:
docs/benchmarks.md, "Code search".

In an index folder: ``file_outlines.json`` (the files' paths and a hash of each outline's text, in row
order) and ``file_outlines.npy`` (their normalized float32 vectors). An update embeds only outlines whose
text it has never seen (editing a function's body keeps its file's outline; a branch switch back finds
the old ones in the index's cache). An index built before outlines existed still opens and searches
without them; ``st-code update`` adds them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Container, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from st_code.search.sibling_packs import unit_names

PATHS_FILE = "file_outlines.json"
VECTORS_FILE = "file_outlines.npy"
#: An outline's names are cut here: enough for a large file's definitions, short of a model's window.
NAMES_CHARS = 600


def outline_text(path: str, symbols: Iterable[str]) -> str:
    """A file's outline: its path, then each name it defines once, in order."""
    names = ", ".join(dict.fromkeys(symbol for symbol in symbols if symbol))
    return f"{path}\n{names[:NAMES_CHARS]}"


def outlines(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(path, outline) for each file of an index's unit rows, which come file by file."""
    path, symbols, done = None, [], set()
    for row in rows:
        if row["path"] != path:
            if path is not None:
                yield path, outline_text(path, symbols)
                done.add(path)
            if row["path"] in done:
                raise ValueError(f"the units of {row['path']} are not together: an index lists a file's units in a row")
            path, symbols = row["path"], []
        symbols.extend(unit_names(row))
    if path is not None:
        yield path, outline_text(path, symbols)


def write_file_outlines(folder: Path, rows: Iterable[dict[str, Any]], encode: Callable[[list[str]], np.ndarray],
                        dim: int, known: Container[str] | None = None, progress: bool = True,
                        chunk: int = 2048) -> tuple[int, list[str]]:
    """Embed the outline of every file in ``rows`` into ``folder``, taking the vector of an outline seen
    before from ``known`` (a :class:`~st_code.search.vector_cache.KnownVectors`: the previous index's and
    its cache's); returns how many were embedded, and every outline's hash."""
    from tqdm.auto import tqdm

    known = known if known is not None else {}
    paths, digests, todo = [], [], []  # todo: (row, text) of outlines never embedded before
    for path, text in outlines(rows):
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        if digest not in known:
            todo.append((len(paths), text))
        paths.append(path)
        digests.append(digest)
    vectors = np.lib.format.open_memmap(folder / VECTORS_FILE, mode="w+", dtype=np.float32, shape=(len(paths), dim))
    for row, digest in enumerate(digests):
        if digest in known:
            vectors[row] = known[digest]
    bar = tqdm(total=len(todo), desc="Embedding file outlines", unit="file", disable=not progress or not todo)
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        vectors[[row for row, _ in part]] = encode([text for _, text in part])
        bar.update(len(part))
    bar.close()
    vectors.flush()
    del vectors
    (folder / PATHS_FILE).write_text(json.dumps({"paths": paths, "hashes": digests}))
    return len(todo), digests


class FileOutlines:
    """An index's outline vectors, looked up by a unit's path."""

    def __init__(self, folder: Path) -> None:
        listed = json.loads((folder / PATHS_FILE).read_text(encoding="utf-8"))
        self.paths: list[str] = listed["paths"]
        self.hashes: list[str] = listed["hashes"]
        self.vectors = np.load(folder / VECTORS_FILE, mmap_mode="r")
        if len(self.paths) != len(self.hashes) or len(self.vectors) != len(self.paths):
            raise ValueError(f"{len(self.paths)} paths, {len(self.hashes)} hashes and {len(self.vectors)} vectors")
        self.row = {path: row for row, path in enumerate(self.paths)}

    @classmethod
    def open(cls, folder: Path) -> "FileOutlines | None":
        """The outlines of the index at ``folder``, or None where it has none or they are damaged: what an
        update reads, which then embeds them anew (a search names a damaged index instead)."""
        if not ((folder / PATHS_FILE).is_file() and (folder / VECTORS_FILE).is_file()):
            return None
        try:
            return cls(folder)
        except (ValueError, KeyError, OSError, EOFError):
            return None

    def cosines(self, paths: list[str], embedding: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """Each path's outline cosine with the query ``embedding``; ``fallback`` where a path has none."""
        rows = np.array([self.row.get(path, -1) for path in paths], dtype=np.int64)
        found = rows >= 0
        result = np.asarray(fallback, dtype=np.float64).copy()
        if found.any():
            unique, inverse = np.unique(rows[found], return_inverse=True)  # read each file's vector once
            result[found] = (np.asarray(self.vectors[unique]) @ embedding)[inverse]
        return result


__all__ = ["FileOutlines", "outline_text", "outlines", "write_file_outlines", "PATHS_FILE", "VECTORS_FILE"]
