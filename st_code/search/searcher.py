"""Searching a code index: queries get the task's instruction, hits come back as path:line + symbol.

``hybrid`` (the default) searches the vectors and the BM25 index beside them
(:mod:`st_code.search.lexical`), blends each candidate's cosine with its file outline's
(:mod:`st_code.search.file_outlines`), fuses the two and reorders the candidates
(:mod:`st_code.search.ranking`); ``dense`` is the vectors alone, ``lexical`` BM25 with the ranking stage.

Queries are embedded with the model's own query prompt for ``task`` (an st-code model carries one per
task, e.g. ``"Web Query to Code Retrieval-query"``; a plain model gets none). Quantized indexes
(int8, binary) are searched in their precision for ``k x rescore_multiplier`` candidates, which are
then rescored with the float vectors kept in ``vectors.npy``, read from disk for those rows only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from st_code.errors import UsageError
from st_code.search.index import DEFAULT_TASK, load_search_model
from st_code.search.manifest import check_index_files, damaged, read_manifest
from st_code.search.ranking import FUSIONS, RankingWeights, rank, symbol_query
from st_code.search.sibling_packs import display_symbol, narrow_to_member

if TYPE_CHECKING:
    from st_code.search.file_outlines import FileOutlines

MODES = ("hybrid", "dense", "lexical")
#: Candidates each half of a hybrid search brings to the ranking stage.
CANDIDATES = 100


@dataclass(frozen=True)
class Hit:
    """One search result. ``score`` orders the hits of one query (in hybrid search a fused, ranked score,
    comparable within a query only); ``similarity`` is the query's cosine with the unit, the number to
    threshold across queries (``None`` in lexical search). A pack of small siblings
    (:mod:`st_code.search.sibling_packs`) is of kind ``group`` and shows its members' names joined as its symbol."""

    path: str
    start_line: int
    end_line: int
    symbol: str
    language: str
    kind: str
    score: float
    text: str
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        found = {"path": self.path, "start_line": self.start_line, "end_line": self.end_line, "symbol": self.symbol,
                 "language": self.language, "kind": self.kind, "score": round(self.score, 6), "text": self.text}
        if self.similarity is not None:
            found["similarity"] = round(self.similarity, 6)
        return found

    @classmethod
    def from_unit(cls, unit: dict[str, Any], score: float, similarity: float | None = None) -> "Hit":
        return cls(unit["path"], unit["start_line"], unit["end_line"], display_symbol(unit), unit["language"],
                   unit["kind"], float(score), unit["text"], None if similarity is None else float(similarity))

    def snippet(self, lines: int = 6) -> str:
        return "\n".join(self.text.split("\n")[:lines])


class CodeSearcher:
    """An open index and its model, for many queries in one process.

    Args:
        index: the index folder ``st-code index`` wrote.
        model: an already loaded model (default: load the one the manifest names and check its weights).
        task: the registered task whose query instruction the queries get.
        rescore_multiplier: quantized indexes fetch ``k x`` this many candidates to rescore.
        mode: ``hybrid`` (vectors + BM25 + the ranking stage), ``dense`` or ``lexical``.
        fusion: how hybrid joins its two scores: ``blend`` or ``rrf`` (reciprocal ranks).
        reranker: a :class:`~st_code.search.rerank.CrossEncoderReranker` or
            :class:`~st_code.search.llm_rerank.LLMReranker` that reorders each query's best candidates (optional).
    """

    def __init__(self, index: str | Path, model: Any = None, task: str = DEFAULT_TASK,
                 rescore_multiplier: int = 4, device: str | None = None, mode: str = "hybrid",
                 fusion: str = "blend", reranker: Any = None) -> None:
        from st_code.fingerprint import model_fingerprint
        from st_code.retrieval.score import resolve_prompts

        _check_task(task)
        if mode not in MODES:
            raise UsageError(f"--mode {mode!r}: use one of {', '.join(MODES)}")
        if fusion not in FUSIONS:
            raise UsageError(f"--fusion {fusion!r}: use one of {', '.join(FUSIONS)}")
        self.mode, self.reranker = mode, reranker
        self.weights = RankingWeights(fusion=fusion, dense_weight=0.0 if mode == "lexical" else 0.7)
        if not isinstance(rescore_multiplier, int) or rescore_multiplier < 1:
            raise UsageError(f"--rescore-multiplier must be a whole number >= 1 (candidates fetched per hit), got "
                             f"{rescore_multiplier!r}")
        self.folder = Path(index)
        self.manifest = read_manifest(self.folder)
        check_index_files(self.folder, self.manifest)
        if model is None:
            from st_code.devices import check_device

            check_device(device)
            model, _, fingerprint = load_search_model(self.manifest["model"], device)
            if fingerprint != self.manifest["model_fingerprint"]:
                raise UsageError(f"the weights of {self.manifest['model']!r} changed since {index} was built: its "
                                 f"vectors belong to the old ones; rebuild it with st-code index "
                                 f"{self.manifest['root']} --model {self.manifest['model']} --out {index}")
        else:
            fingerprint = model.fingerprint() if hasattr(model, "fingerprint") else model_fingerprint(model)
        dim = model.get_embedding_dimension()
        if dim != self.manifest["dim"]:
            raise UsageError(f"the model gives {dim}-dimensional vectors, the index at {index} holds "
                             f"{self.manifest['dim']}: search with the model it was built with "
                             f"({self.manifest['model']}), or rebuild it")
        self.model, self.fingerprint = model, fingerprint
        self.query_prompt = resolve_prompts(dict(model.prompts or {}), task).get("query")
        self.rescore_multiplier = rescore_multiplier
        self.offsets = np.load(self.folder / "units.offsets.npy", mmap_mode="r")
        self.vectors = np.load(self.folder / "vectors.npy", mmap_mode="r")
        self.precision = self.manifest["precision"]
        self._load_structure()
        self._lexical = None
        self.outlines = self._open_outlines()

    def _load_structure(self) -> None:
        try:
            self._read_structure()
        except (RuntimeError, ValueError, KeyError) as exc:  # faiss reports a garbage file as a RuntimeError
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise damaged(self.folder, f"its search structure cannot be read: {first[:200]}",
                          self.manifest.get("root")) from None

    def _open_outlines(self) -> "FileOutlines | None":
        """The index's file outlines (None for an index built before them: it searches without)."""
        from st_code.search.file_outlines import FileOutlines

        if "file_outlines" not in self.manifest:
            return None
        try:
            return FileOutlines(self.folder)
        except (ValueError, KeyError, OSError, EOFError) as exc:
            raise damaged(self.folder, f"its file outlines cannot be read: {str(exc)[:200]}",
                          self.manifest.get("root")) from None

    def _read_structure(self) -> None:
        import faiss

        if self.precision == "int8":
            self.int8 = np.load(self.folder / "vectors.int8.npy", mmap_mode="r")
            self.ranges = np.asarray(self.manifest["ranges"], dtype=np.float32)
        elif self.precision == "binary":
            self.index = faiss.read_index_binary(str(self.folder / "index.binary.faiss"))
        else:
            self.index = faiss.read_index(str(self.folder / "index.faiss"))
            if hasattr(self.index, "hnsw"):
                self.index.hnsw.efSearch = 128
            if hasattr(self.index, "nprobe"):
                self.index.nprobe = 16

    def embed_queries(self, queries: list[str], batch_size: int = 32) -> np.ndarray:
        return self.model.encode(queries, prompt=self.query_prompt, batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False).astype(np.float32)

    @property
    def lexical(self):
        """The BM25 index: the one saved beside the vectors, or for an index built before it had one,
        built now from ``units.jsonl`` (``st-code update`` saves it)."""
        if self._lexical is None:
            from st_code.search.lexical import LexicalIndex, has_lexical

            if has_lexical(self.folder):
                self._lexical = LexicalIndex.load(self.folder)
            else:
                self._lexical = LexicalIndex.build(self.units(range(len(self.offsets))))
        return self._lexical

    def search(self, queries: list[str], k: int = 10, per_file: bool = False) -> list[list[Hit]]:
        """The top ``k`` units for each query, best first (``per_file``: the best unit of each of the top
        ``k`` files)."""
        if k < 1:
            raise UsageError(f"k must be at least 1, got {k}")
        if not queries:
            return []
        embeddings = None if self.mode == "lexical" else self.embed_queries(queries)
        if self.mode == "dense" and not per_file and self.reranker is None:
            return self.search_embeddings(embeddings, k)
        results = []
        for i, query in enumerate(queries):
            ranked = self._ranked(query, None if embeddings is None else embeddings[i], k, per_file)
            if self.reranker is not None:
                ranked = self.reranker.rerank(query, ranked)
            name = symbol_query(query)
            if name:  # a pack's member that the query names is shown alone
                ranked = [(narrow_to_member(unit, name), score, cosine) for unit, score, cosine in ranked]
            if per_file:
                ranked = _best_per_file(ranked)
            results.append([Hit.from_unit(unit, score, similarity) for unit, score, similarity in ranked[:k]])
        return results

    def _ranked(self, query: str, embedding: np.ndarray | None, k: int,
                per_file: bool) -> list[tuple[dict, float, float | None]]:
        """Every candidate of one query as (unit, score, cosine), best first."""
        wanted = max(CANDIDATES, k * (5 if per_file else 1))
        if self.mode == "dense":
            rows, scores = self.nearest(embedding[None, :], wanted)
            return [(unit, float(s), float(s)) for unit, s in zip(self.units(int(r) for r in rows[0] if r >= 0),
                                                                  scores[0])]
        lexical = self.lexical.scores(query)
        rows = np.flatnonzero(lexical > 0)
        if len(rows) > wanted:
            rows = rows[np.argpartition(-lexical[rows], wanted - 1)[:wanted]]
        if embedding is not None:
            dense_rows, _ = self.nearest(embedding[None, :], wanted)
            rows = np.union1d(rows, dense_rows[0][dense_rows[0] >= 0])
        name = symbol_query(query)
        if name:  # the definitions a one-identifier query names are candidates wherever they rank
            rows = np.union1d(rows, np.asarray(self.lexical.named(name)[:wanted], dtype=np.int64))
        rows = np.sort(rows.astype(np.int64))
        if not len(rows):
            return []
        dense = (np.asarray(self.vectors[rows]) @ embedding if embedding is not None  # exact, for every candidate
                 else np.zeros(len(rows), dtype=np.float32))
        units = self.units(int(r) for r in rows)
        files = (self.outlines.cosines([unit["path"] for unit in units], embedding, dense)
                 if embedding is not None and self.outlines is not None else None)
        return [(units[i], score, None if embedding is None else float(dense[i]))
                for i, score in rank(query, units, dense, lexical[rows], self.weights, files)]

    def search_embeddings(self, embeddings: np.ndarray, k: int = 10) -> list[list[Hit]]:
        """The top ``k`` units for already embedded (normalized float32) queries."""
        rows, scores = self.nearest(embeddings, k)
        return [[self._hit(int(r), float(s)) for r, s in zip(row, score) if r >= 0] for row, score in zip(rows, scores)]

    def nearest(self, embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers, scores) of the top ``k`` per query; -1 pads when the index holds fewer."""
        k = min(k, len(self.offsets))
        if self.precision == "float32":
            scores, rows = self.index.search(embeddings, k)
            return rows, scores
        candidates = min(len(self.offsets), k * self.rescore_multiplier)
        if self.precision == "binary":
            from sentence_transformers.util import quantize_embeddings

            _, rows = self.index.search(quantize_embeddings(embeddings, precision="ubinary"), candidates)
        else:
            rows = self._int8_candidates(embeddings, candidates)
        return self._rescore(embeddings, rows, k)

    def _int8_candidates(self, embeddings: np.ndarray, candidates: int) -> np.ndarray:
        """Search over the int8 vectors, a block of rows at a time, summed in float32 BLAS: exact up to
        1024 dimensions (no sum of products of int8 values reaches 2**24); beyond, rounding can only
        change which candidates are rescored."""
        from sentence_transformers.util import quantize_embeddings

        queries = quantize_embeddings(embeddings, precision="int8", ranges=self.ranges).astype(np.float32)
        best_rows = np.zeros((len(queries), 0), dtype=np.int64)
        best_scores = np.zeros((len(queries), 0), dtype=np.float32)
        for start in range(0, len(self.int8), 65536):
            block = np.asarray(self.int8[start:start + 65536], dtype=np.float32)
            scores = np.concatenate([best_scores, queries @ block.T], axis=1)
            rows = np.concatenate([best_rows, np.broadcast_to(np.arange(start, start + len(block)),
                                                              (len(queries), len(block)))], axis=1)
            keep = np.argpartition(-scores, min(candidates, scores.shape[1]) - 1, axis=1)[:, :candidates]
            best_scores = np.take_along_axis(scores, keep, axis=1)
            best_rows = np.take_along_axis(rows, keep, axis=1)
        return best_rows

    def _rescore(self, embeddings: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        out_rows = np.full((len(rows), k), -1, dtype=np.int64)
        out_scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
        for i, candidates in enumerate(rows):
            candidates = candidates[candidates >= 0]
            if not len(candidates):
                continue
            order = np.argsort(candidates)  # memory-mapped rows read in file order
            floats = np.asarray(self.vectors[candidates[order]])
            scores = floats @ embeddings[i]
            best = np.argsort(-scores, kind="stable")[:k]
            out_rows[i, :len(best)] = candidates[order][best]
            out_scores[i, :len(best)] = scores[best]
        return out_rows, out_scores

    def unit(self, row: int) -> dict[str, Any]:
        """The stored unit of one row (read from disk by its offset)."""
        return self.units([row])[0]

    def units(self, rows) -> list[dict[str, Any]]:
        """The stored units of several rows, read in one pass over ``units.jsonl``."""
        found = []
        with (self.folder / "units.jsonl").open("rb") as handle:
            for row in rows:
                handle.seek(int(self.offsets[row]))
                line = handle.readline()
                try:
                    found.append(json.loads(line))
                except ValueError:
                    raise damaged(self.folder, f"units.jsonl has no whole unit at row {row}",
                                  self.manifest.get("root")) from None
        return found

    def _hit(self, row: int, score: float) -> Hit:
        return Hit.from_unit(self.unit(row), score, score)


def _best_per_file(ranked: list[tuple]) -> list[tuple]:
    """The first (best) unit of each file, in order."""
    seen: set[str] = set()
    best = []
    for found in ranked:
        if found[0]["path"] not in seen:
            seen.add(found[0]["path"])
            best.append(found)
    return best


def _check_task(task: str) -> None:
    from st_code.tasks import coder_pile_tasks, evaluation_tasks

    known = {**coder_pile_tasks(), **evaluation_tasks()}
    if task not in known:
        text2code = sorted(name for name, t in coder_pile_tasks().items() if t.major_type == "Text2Code")
        raise UsageError(f"unknown task {task!r}; Text2Code tasks: {', '.join(text2code)} (or an MTEB-Code task "
                         "such as CosQA)")


def search_index(index: str | Path, queries: list[str], k: int = 10, task: str = DEFAULT_TASK,
                 mode: str = "hybrid", per_file: bool = False) -> list[list[Hit]]:
    """One-shot search: open ``index`` with its model and answer ``queries``."""
    return CodeSearcher(index, task=task, mode=mode).search(queries, k, per_file=per_file)


__all__ = ["CodeSearcher", "Hit", "search_index", "MODES"]
