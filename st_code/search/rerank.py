"""An optional cross-encoder stage after the ranking: the head of each query's ranked candidates is put
in the order a cross-encoder (sentence-transformers' ``CrossEncoder``: a reranker from the hub such as
``BAAI/bge-reranker-base``, or a local folder) gives the (query, unit) pairs.

It reads each candidate whole next to the query, which an embedder never does, at the price of one
transformer pass per candidate and query (figures: docs/benchmarks.md, "Code search"). The units below
the head keep their order after it; each hit's ``similarity`` stays its cosine.
"""

from __future__ import annotations

from typing import Any

from st_code.search.ranking import head_then_tail

#: Characters of a unit shown to the cross-encoder (its own tokenizer truncates further).
UNIT_CHARACTERS = 4000


def pair_text(unit: dict[str, Any]) -> str:
    """What the cross-encoder reads of a unit: its path and symbol, then its code."""
    header = f"{unit['path']} {unit.get('symbol') or ''}".strip()
    return f"{header}\n{unit.get('text', '')[:UNIT_CHARACTERS]}"


class CrossEncoderReranker:
    """Reorder the first ``candidates`` of a ranked list by a cross-encoder's scores.

    Args:
        model: a ``CrossEncoder``, or its folder or hub id.
        candidates: how many of the ranking's best are reread (more: better recall, linearly slower).
        device: where a model loaded here runs (default: the best available).
        batch_size: pairs per forward pass.
    """

    def __init__(self, model: Any, candidates: int = 30, device: str | None = None, batch_size: int = 32) -> None:
        from st_code.errors import UsageError

        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise UsageError(f"--rerank-candidates must be a whole number >= 1, got {candidates!r}")
        if isinstance(model, str):
            model = _load_cross_encoder(model, device)
        self.model, self.candidates, self.batch_size = model, candidates, batch_size

    def rerank(self, query: str, ranked: list[tuple[dict, float, float | None]]
               ) -> list[tuple[dict, float, float | None]]:
        """``ranked`` (unit, score, cosine) best first -> the head reordered, scored by the cross-encoder;
        the rest after it, their scores shifted below the head's lowest."""
        head, tail = ranked[:self.candidates], ranked[self.candidates:]
        if not head:
            return ranked
        ranked_head = self.model.rank(query, [pair_text(unit) for unit, _, _ in head], batch_size=self.batch_size,
                                      show_progress_bar=False)  # best first, as {"corpus_id", "score"}
        return head_then_tail([(head[r["corpus_id"]][0], float(r["score"]), head[r["corpus_id"]][2])
                               for r in ranked_head], tail)


def make_reranker(spec: str, candidates: int | None = None, device: str | None = None,
                  api_base: str | None = None) -> Any:
    """``--rerank``'s value -> a reranker: ``llm:MODEL`` a chat model
    (:class:`~st_code.search.llm_rerank.LLMReranker`), anything else a cross-encoder folder or hub id."""
    from st_code.errors import UsageError

    if spec.startswith("llm:"):
        from st_code.search.llm_rerank import LLMReranker

        return LLMReranker(spec[4:], candidates=candidates or 10, api_base=api_base)
    if api_base:
        raise UsageError("--rerank-api-base is for an LLM reranker (--rerank llm:MODEL), not a cross-encoder")
    return CrossEncoderReranker(spec, candidates=candidates or 30, device=device)


def _load_cross_encoder(name: str, device: str | None) -> Any:
    from sentence_transformers import CrossEncoder

    from st_code.errors import UsageError

    try:
        return CrossEncoder(name, device=device)
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--rerank {name!r}: no cross-encoder could be loaded ({first}); pass a local "
                         "sentence-transformers CrossEncoder folder or a hub id such as BAAI/bge-reranker-base "
                         "(with the hub reachable)") from None


__all__ = ["CrossEncoderReranker", "UNIT_CHARACTERS", "make_reranker", "pair_text"]
