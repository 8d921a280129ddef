"""Fingerprints: short hashes of what a result depends on, so a cached or resumed result is only
ever reused for the model, data, config and code it was computed with.

* :func:`path_fingerprint` - the content of a file or a folder (every file's bytes, by relative path).
* :func:`code_fingerprint` - st-code's own source: a changed library may train differently.
* :func:`model_fingerprint` - a model's weights (by its folder, or its tensors when in memory).
* :func:`stable_hash` - any JSON-able value.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def stable_hash(value: Any, length: int = 16) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


def _file_digest(path: Path, digest) -> None:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)


def path_fingerprint(path: str | Path, skip: tuple[str, ...] = ()) -> str:
    """The content of ``path``: a file's bytes, or every file under a folder with its relative path.
    Names in ``skip`` (a folder's lock or journal, say) are left out."""
    path = Path(path)
    digest = hashlib.sha1()
    if path.is_file():
        _file_digest(path, digest)
    elif path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            relative = item.relative_to(path)
            if set(relative.parts) & set(skip):
                continue
            digest.update(str(relative).encode() + b"\0")
            _file_digest(item, digest)
    else:
        return "missing"
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """st-code's version and a hash of its Python source."""
    import st_code

    root = Path(st_code.__file__).parent
    digest = hashlib.sha1(st_code.__version__.encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return f"{st_code.__version__}+{digest.hexdigest()[:12]}"


_MODEL_CACHE: dict[tuple, str] = {}


def model_fingerprint(model: Any = None, path: str | Path | None = None) -> str:
    """A model's identity: the content of its saved folder (``path``), a hub revision, or a hash of
    its tensors (a model in memory)."""
    if path is not None and Path(path).is_dir():
        folder = Path(path).resolve()
        key = (str(folder), tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                                  for p in sorted(folder.rglob("*")) if p.is_file()))
        if key not in _MODEL_CACHE:
            _MODEL_CACHE[key] = path_fingerprint(folder)
        return _MODEL_CACHE[key]
    if model is None:
        return stable_hash(str(path))
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


__all__ = ["stable_hash", "path_fingerprint", "code_fingerprint", "model_fingerprint"]
