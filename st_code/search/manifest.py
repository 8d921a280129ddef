"""An index folder as the commands meet it: which folders an index may be written to, its manifest
read and checked, its files checked before a search or an update, and one error for a damaged index
that names the rebuild command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from st_code.errors import MissingPathError, UsageError
from st_code.outputs import check_output_folder

#: The on-disk format this st-code writes and reads.
FORMAT = 1


def check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise UsageError(f"--batch-size must be a whole number >= 1, got {batch_size!r}")


def is_index(folder: Path) -> bool:
    """Whether ``folder`` holds an index (whole or damaged): what a build may replace."""
    return (folder / "manifest.json").is_file() and any(
        (folder / name).exists() for name in ("units.jsonl", "units.offsets.npy", "vectors.npy"))


def check_index_folder(out: str | Path, root: str | Path) -> Path:
    """``out`` if an index may be written there: a new or empty folder, or an index (never the repository,
    a folder containing it, or a folder of other files)."""
    return check_output_folder(out, flag="--out", what="code-search index", owned=is_index, inputs=[root])


def check_same_repository(index: Path, manifest: dict, root: Path, file_hashes: dict[str, str]) -> None:
    """An update from another folder is refused when it shares less than half of the indexed files: that is
    another repository, which would replace this index whole without a word."""
    if str(root.resolve()) == manifest.get("root"):
        return
    old_files = manifest.get("files", {})
    shared = len(set(old_files) & set(file_hashes))
    if old_files and shared * 2 < len(old_files):
        raise UsageError(f"--path {root} shares {shared} of the {len(old_files)} files indexed in {index} (from "
                         f"{manifest.get('root')}): that is another repository; index it into its own folder with "
                         f"st-code index {root} --out NEW_FOLDER, or replace this index with st-code index {root} "
                         f"--out {index}")


def damaged(index: str | Path, what: str, root: str | None = None) -> UsageError:
    """The error for an index whose files are missing or unreadable: it names the fix, a rebuild."""
    return UsageError(f"the index at {index} is damaged ({what}); rebuild it with st-code index {root or 'REPO'} "
                      f"--out {index}")


def read_manifest(index: str | Path) -> dict[str, Any]:
    """An index's manifest, or a clear error when the folder holds none or a damaged one."""
    path = Path(index) / "manifest.json"
    if not path.is_file():
        folder = Path(index)
        if folder.is_dir() and any(folder.iterdir()):  # a repository, say: never advise building over it
            raise MissingPathError(f"{index} is not a code-search index (no manifest.json); to search the code in it, "
                                   f"build one first: st-code index {index} --out {folder / '.st-code-index'}")
        raise MissingPathError(f"no index at {index} (no manifest.json): build one with st-code index REPO --out {index}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise damaged(index, "manifest.json is not valid JSON") from None
    required = ("model", "model_fingerprint", "dim", "precision", "root", "files")
    if not isinstance(manifest, dict) or (manifest.get("format") == FORMAT and
                                          any(key not in manifest for key in required)):
        raise damaged(index, "manifest.json lacks its fields")
    if manifest.get("format") != FORMAT:
        raise UsageError(f"{index} was written by another st-code (index format {manifest.get('format')}); "
                         "rebuild it with st-code index")
    return manifest


def check_index_files(index: Path, manifest: dict[str, Any]) -> None:
    """Every file a search or an update reads is there and the right size, or one line says to rebuild."""
    files = ["units.jsonl", "units.offsets.npy", "vectors.npy"]
    files.append({"int8": "vectors.int8.npy", "binary": "index.binary.faiss"}.get(manifest["precision"], "index.faiss"))
    for name in files:
        if not (index / name).is_file():
            raise damaged(index, f"{name} is missing", manifest.get("root"))
    try:
        offsets = np.load(index / "units.offsets.npy", mmap_mode="r")
        vectors = np.load(index / "vectors.npy", mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise damaged(index, f"its arrays cannot be read: {exc}", manifest.get("root")) from None
    units = manifest.get("units", len(offsets))
    if len(offsets) != units or vectors.shape != (units, manifest["dim"]):
        raise damaged(index, f"{units} units in the manifest, {len(offsets)} offsets, vectors {vectors.shape}",
                      manifest.get("root"))
    if units and (index / "units.jsonl").stat().st_size <= int(offsets[-1]):
        raise damaged(index, "units.jsonl is shorter than its offsets (truncated)", manifest.get("root"))


__all__ = ["FORMAT", "check_batch_size", "is_index", "check_index_folder", "check_same_repository", "damaged",
           "read_manifest", "check_index_files"]
