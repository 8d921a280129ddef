"""Building and updating a code-search index: a repository's code units, embedded, in faiss.

An index is a folder:

- ``manifest.json``: the model (name and weights fingerprint), the document prompt the units were
  embedded with, dimension, precision, faiss index type, the root, per-file content hashes, and the
  walk's skip counts;
- ``units.jsonl`` and ``units.offsets.npy``: one unit a line (path, lines, language, kind, symbol,
  content hash, text; a pack of small siblings also its ``members``, :mod:`st_code.search.sibling_packs`) and
  the byte offset of each line, so a search reads only its hits;
- ``vectors.npy``: the float32 unit embeddings (normalized), kept for updates and for rescoring
  quantized search;
- ``index.faiss`` (float32: flat, HNSW or IVF), ``index.binary.faiss`` (binary) or ``vectors.int8.npy``
  (int8), the structure searched;
- ``lexical/``: the BM25 index over the units' code-aware tokens (bm25s' files), hybrid search's other
  half. An index from before it existed still opens: its BM25 is built from ``units.jsonl`` on open;
- ``file_outlines.json`` and ``file_outlines.npy``: one vector per file, its path and the names it
  defines (:mod:`st_code.search.file_outlines`), which hybrid search blends into its units' cosines;
- ``cache/``: vectors of units and file outlines the index dropped (:mod:`st_code.search.vector_cache`),
  so an update after switching branches and back embeds nothing it has embedded before.

Building streams: units go to disk as they are split, then are embedded a chunk at a time into a
memory-mapped ``vectors.npy``, so no more than one chunk of texts is in memory. A build or an update
writes a new folder beside the old one and swaps it in at the end (:mod:`st_code.outputs`): a crash or
a full disk leaves the old index whole. ``--out`` must be new, empty or an index: a folder of other
files, the repository itself or a folder containing it is refused before any work.
An update re-embeds only units whose content hash it has never seen; the rest keep their vectors.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from st_code.data.code_units import CodeUnit, split_units
from st_code.data.repository import WalkReport, walk_repository
from st_code.errors import MissingPathError, UsageError
from st_code.outputs import staged_folder
from st_code.search.manifest import (
    FORMAT, check_batch_size, check_index_files, check_index_folder, check_same_repository, read_manifest,
)
from st_code.search.sibling_packs import pack_small_units

INDEX_TYPES = ("auto", "flat", "hnsw", "ivf")
PRECISIONS = ("float32", "int8", "binary")
#: ``auto`` switches from an exact flat index to HNSW at this many vectors.
FLAT_LIMIT = 100_000
DEFAULT_TASK = "Web Query to Code Retrieval"


@dataclass
class IndexReport:
    """What a build or update did."""

    units: int = 0
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    files_added: int = 0
    files_changed: int = 0
    files_deleted: int = 0
    seconds: float = 0.0
    walk: dict[str, Any] = field(default_factory=dict)
    outlines_embedded: int = 0

    def line(self) -> str:
        return (f"{self.units} unit(s): embedded {self.embedded}, reused {self.reused}, removed {self.removed}; "
                f"files added {self.files_added}, changed {self.files_changed}, deleted {self.files_deleted}; "
                f"file outlines embedded {self.outlines_embedded} ({self.seconds:.1f}s)")


def _document_prompt(model: Any, task: str) -> str | None:
    from st_code.retrieval.score import resolve_prompts

    return resolve_prompts(dict(model.prompts or {}), task).get("document")


def load_search_model(name: str | None, device: str | None = None):
    """(model, name, fingerprint): an st-code or any sentence-transformers model, or the path of a graph
    ``st-code export`` wrote (``FOLDER/onnx/model_qint8.onnx``); the packaged MiniLM by default (offline)."""
    from st_code.assets import resolve_model_name
    from st_code.fingerprint import model_fingerprint
    from st_code.model import load_model

    from st_code.search.exported_model import ExportedSearchModel, is_exported_graph

    if is_exported_graph(name):  # st-code export's ONNX (int8) or OpenVINO graph: no PyTorch in the loop
        exported = ExportedSearchModel(name)
        return exported, str(exported.graph), exported.fingerprint()
    name = name or "minilm"
    path = resolve_model_name(name)
    if Path(path).expanduser().is_dir() and name == path:
        name = str(Path(path).expanduser().resolve())  # update and search may run from another folder
    model = load_model(path, **({"device": device} if device else {}))
    model.eval()
    return model, name, model_fingerprint(model, path=path)


def build_index(root: str | Path, out: str | Path, model: str | None = None, index_type: str = "auto",
                precision: str = "float32", batch_size: int = 32, device: str | None = None,
                log: Callable[[str], None] = print, progress: bool = True, _loaded: tuple | None = None,
                _previous: "Path | None" = None) -> IndexReport:
    """Index the code under ``root`` into the folder ``out`` (replacing an index there).

    Args:
        root: the repository (or one file).
        out: the index folder.
        model: a saved st-code model, a sentence-transformers model or hub id, or ``minilm`` (default).
        index_type: ``auto`` (flat below 100k vectors, HNSW above), ``flat``, ``hnsw`` or ``ivf``.
        precision: ``float32``, ``int8`` or ``binary`` (sentence-transformers' quantization; searches
            rescore their top candidates with the float vectors).
    """
    if index_type not in INDEX_TYPES:
        raise UsageError(f"index type {index_type!r}: use one of {', '.join(INDEX_TYPES)}")
    if precision not in PRECISIONS:
        raise UsageError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    check_batch_size(batch_size)
    root = Path(root)
    if not root.exists():
        raise MissingPathError(f"{root} does not exist: pass the repository to index")
    if not (root.is_dir() or root.is_file()):
        raise UsageError(f"{root} is neither a folder nor a regular file: pass the repository to index")
    out = check_index_folder(out, root)
    if _loaded is None:
        from st_code.devices import check_device

        check_device(device)
    from st_code.locking import FolderLock

    lock_folder = out.parent / f".{out.name}.lock-folder"
    try:
        with FolderLock(lock_folder, "index build", log=log):
            return _build(root, out, model, index_type, precision, batch_size, device, log, progress, _loaded,
                          _previous)
    finally:
        try:
            lock_folder.rmdir()  # only once empty: a concurrent build's lock stays
        except OSError:
            pass


def _build(root: Path, out: Path, model_name: str | None, index_type: str, precision: str, batch_size: int,
           device: str | None, log: Callable[[str], None], progress: bool, loaded: tuple | None,
           previous: Path | None) -> IndexReport:
    started = time.perf_counter()
    model, name, fingerprint = loaded or load_search_model(model_name, device)
    with staged_folder(out) as staging:  # removed on any failure; the old index stays whole
        report = _build_into(staging, root, model, name, fingerprint, index_type, precision, batch_size, log,
                             progress, previous)
    report.seconds = time.perf_counter() - started
    return report


def _build_into(staging: Path, root: Path, model: Any, name: str, fingerprint: str, index_type: str,
                precision: str, batch_size: int, log: Callable[[str], None], progress: bool,
                previous: Path | None) -> IndexReport:
    prompt = _document_prompt(model, DEFAULT_TASK)
    report = IndexReport()
    walk = WalkReport()
    file_hashes: dict[str, str] = {}
    hashes: list[str] = []
    with (staging / "units.jsonl").open("wb") as handle:
        offsets = []
        for unit, file_hash in _units(root, walk):
            file_hashes.setdefault(unit.path, file_hash)
            offsets.append(handle.tell())
            row = {**asdict(unit), "hash": unit.hash}
            if not unit.members:
                del row["members"]
            handle.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
            hashes.append(unit.hash)
    np.save(staging / "units.offsets.npy", np.asarray(offsets, dtype=np.int64))
    if not hashes:
        raise UsageError(f"no code found under {root} ({walk.line()}); pass a folder with source files")
    report.units = len(hashes)
    report.walk = {"files": walk.files, "skipped": dict(walk.skipped), "languages": dict(walk.per_language)}
    log(f"index: {walk.line()}")

    from st_code.search.vector_cache import KnownVectors

    old_hashes = [row["hash"] for row in _read_rows(previous / "units.jsonl")] if previous is not None else []
    known = KnownVectors(previous, old_hashes)  # the old index's vectors and those it kept of dropped code
    if previous is not None:
        old_manifest = read_manifest(previous)
        old_files = old_manifest["files"]
        check_same_repository(previous, old_manifest, root, file_hashes)
        report.files_added = len(set(file_hashes) - set(old_files))
        report.files_deleted = len(set(old_files) - set(file_hashes))
        report.files_changed = sum(1 for p, h in file_hashes.items() if p in old_files and old_files[p] != h)
        report.removed = len(set(old_hashes) - set(hashes))

    dim = model.get_embedding_dimension()
    vectors = np.lib.format.open_memmap(staging / "vectors.npy", mode="w+", dtype=np.float32,
                                        shape=(len(hashes), dim))
    todo = [i for i, h in enumerate(hashes) if h not in known]
    for i, h in enumerate(hashes):
        if h in known:
            vectors[i] = known[h]
    report.reused = len(hashes) - len(todo)
    report.embedded = len(todo)
    _embed(model, staging, todo, vectors, prompt, batch_size, progress)
    vectors.flush()
    manifest = {"format": FORMAT, "model": name, "model_fingerprint": fingerprint, "document_prompt": prompt,
                "dim": int(dim), "precision": precision, "requested_index_type": index_type,
                "root": str(root.resolve()), "units": len(hashes),
                "files": file_hashes, "walk": report.walk}
    manifest.update(_write_search_structure(staging, vectors, index_type, precision))
    from st_code.search.file_outlines import write_file_outlines
    from st_code.search.lexical import LexicalIndex

    LexicalIndex.build(_read_rows(staging / "units.jsonl")).save(staging)  # hybrid search's BM25 half
    manifest["lexical"] = "bm25s"
    report.outlines_embedded, outline_hashes = write_file_outlines(
        staging, _read_rows(staging / "units.jsonl"), lambda texts: _encode(model, texts, prompt, batch_size), dim,
        known, progress)
    manifest["file_outlines"] = len(outline_hashes)
    known.write_cache(staging, set(hashes) | set(outline_hashes))  # a branch switch back embeds none of these
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
    del vectors, known
    return report


def _units(root: Path, walk: WalkReport) -> Iterator[tuple[CodeUnit, str]]:
    import hashlib

    for found in walk_repository(root, walk):
        if found.text is None:
            continue
        file_hash = hashlib.sha1(found.text.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        for unit in pack_small_units(split_units(found.text, found.language, found.path), found.text):
            yield unit, file_hash


def _read_rows(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def _embed(model: Any, staging: Path, todo: list[int], vectors: np.ndarray, prompt: str | None, batch_size: int,
           progress: bool, chunk: int = 2048) -> None:
    """Embed the rows ``todo`` of ``units.jsonl`` a chunk at a time into ``vectors``."""
    from tqdm.auto import tqdm

    if not todo:
        return
    wanted = set(todo)
    bar = tqdm(total=len(todo), desc="Embedding code units", unit="unit", disable=not progress)
    rows, texts = [], []
    for number, row in enumerate(_read_rows(staging / "units.jsonl")):
        if number in wanted:
            rows.append(number)
            texts.append(row["text"])
        if len(rows) == chunk:
            vectors[rows] = _encode(model, texts, prompt, batch_size)
            bar.update(len(rows))
            rows, texts = [], []
    if rows:
        vectors[rows] = _encode(model, texts, prompt, batch_size)
        bar.update(len(rows))
    bar.close()


def _encode(model: Any, texts: list[str], prompt: str | None, batch_size: int) -> np.ndarray:
    return model.encode(texts, prompt=prompt, batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False).astype(np.float32)


def _write_search_structure(folder: Path, vectors: np.ndarray, index_type: str, precision: str) -> dict[str, Any]:
    """The structure searches read, chosen by size and precision; returns what the manifest records."""
    import faiss

    n, dim = vectors.shape
    chosen = ("flat" if n < FLAT_LIMIT else "hnsw") if index_type == "auto" else index_type
    if precision == "int8":
        from sentence_transformers.util import quantize_embeddings

        ranges = np.vstack([vectors.min(axis=0), vectors.max(axis=0)]).astype(np.float32)
        quantized = np.lib.format.open_memmap(folder / "vectors.int8.npy", mode="w+", dtype=np.int8, shape=(n, dim))
        for start in range(0, n, 65536):
            quantized[start:start + 65536] = quantize_embeddings(np.asarray(vectors[start:start + 65536]),
                                                                 precision="int8", ranges=ranges)
        quantized.flush()
        return {"index_type": "exact int8", "ranges": ranges.tolist()}
    if precision == "binary":
        from sentence_transformers.util import quantize_embeddings

        index = faiss.IndexBinaryFlat(dim) if chosen in ("flat", "ivf") else faiss.IndexBinaryHNSW(dim, 32)
        for start in range(0, n, 65536):
            index.add(quantize_embeddings(np.asarray(vectors[start:start + 65536]), precision="ubinary"))
        _write_faiss(index, folder / "index.binary.faiss", binary=True)
        return {"index_type": "flat" if chosen in ("flat", "ivf") else "hnsw"}
    if chosen == "flat":
        index = faiss.IndexFlatIP(dim)
    elif chosen == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    else:
        nlist = max(1, min(int(4 * np.sqrt(n)), n // 39 or 1))  # faiss wants ~39 training points a list
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(n, size=min(n, 256 * nlist), replace=False)
        index.train(np.asarray(vectors[np.sort(sample)]))
    for start in range(0, n, 65536):
        index.add(np.asarray(vectors[start:start + 65536]))
    _write_faiss(index, folder / "index.faiss")
    return {"index_type": chosen}


def _write_faiss(index: Any, path: Path, binary: bool = False) -> None:
    """faiss's writer, with its disk errors (a RuntimeError naming the C error) raised as the OSError they are."""
    import faiss

    try:
        (faiss.write_index_binary if binary else faiss.write_index)(index, str(path))
    except RuntimeError as exc:
        for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            if os.strerror(code) in str(exc):
                raise OSError(code, os.strerror(code), str(path)) from exc
        raise


def update_index(index: str | Path, root: str | Path | None = None, model: str | None = None,
                 batch_size: int = 32, device: str | None = None, log: Callable[[str], None] = print,
                 progress: bool = True) -> IndexReport:
    """Bring an index up to date with its repository: only units whose content changed are embedded,
    units of deleted files drop out. Refuses when the model (or its weights, or its document prompt)
    is not the one the index was built with."""
    index = Path(index)
    manifest = read_manifest(index)
    check_batch_size(batch_size)
    if root is not None and not Path(root).exists():
        raise MissingPathError(f"--path {root} does not exist: pass the repository the index was built from")
    from st_code.devices import check_device

    check_device(device)
    check_index_files(index, manifest)
    loaded = load_search_model(model or manifest["model"], device)
    _, name, fingerprint = loaded
    prompt = _document_prompt(loaded[0], DEFAULT_TASK)
    if fingerprint != manifest["model_fingerprint"] or prompt != manifest["document_prompt"]:
        what = "weights" if name == manifest["model"] else f"model {name!r}"
        raise UsageError(f"{index} was built with {manifest['model']!r} (weights {manifest['model_fingerprint']}, "
                         f"document prompt {manifest['document_prompt']!r}); the {what} differ now: rebuild it with "
                         f"st-code index {manifest['root']} --model {name} --out {index}")
    # the new index is written beside this one, which stays untouched (and searchable) until the swap
    return build_index(root or manifest["root"], index, index_type=manifest.get("requested_index_type", "auto"),
                       precision=manifest["precision"], batch_size=batch_size, log=log, progress=progress,
                       _loaded=loaded, _previous=index)


__all__ = ["build_index", "update_index", "read_manifest", "load_search_model", "IndexReport", "INDEX_TYPES",
           "PRECISIONS", "DEFAULT_TASK", "FLAT_LIMIT"]
