"""Read a ``.gguf`` base once per model build.

transformers reads a GGUF file four times to build one model: for the config, the tokenizer's config,
the tokenizer and the weights. Each time ``gguf.GGUFReader`` parses every metadata field in Python and
transformers converts every one of them again, and a code LLM's vocabulary makes that slow: about 13 s
per read for Qwen2.5-Coder's 151k tokens and merges on a CPU core, close to a minute before any weight
is used. :func:`gguf_read_once` makes the four reads share one reader: building from a tiny Qwen2 .gguf
with the real vocabulary went from 65.7 s to 26.6 s (``benchmarks/gguf_load.py``, 2 CPU cores). The
reader maps the file read-only, so sharing it changes nothing in what transformers builds. (Sharing transformers' own
conversion of the fields as well saved under 2 s more once each caller got its own copy: not worth it.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def gguf_read_once() -> Iterator[None]:
    """Within the block, ``gguf.GGUFReader(path)`` returns one shared reader per file (read-only mode).

    transformers imports ``GGUFReader`` from ``gguf`` inside the function that reads the file, so the
    shared reader is what it gets. Without the ``gguf`` package this does nothing (transformers then
    says itself that loading a GGUF file needs it)."""
    try:
        import gguf
    except ImportError:
        yield
        return
    original = gguf.GGUFReader
    readers: dict[tuple, Any] = {}

    def shared_reader(path: os.PathLike[str] | str, mode: str = "r") -> Any:
        if mode != "r":
            return original(path, mode)
        key = _file_key(path)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared_reader
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _file_key(path: os.PathLike[str] | str) -> tuple:
    """The file as it is now (a file rewritten in between is read again)."""
    stat = os.stat(path)
    return os.path.realpath(path), stat.st_size, stat.st_mtime_ns


__all__ = ["gguf_read_once"]
