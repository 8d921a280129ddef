"""Retrieval evaluation for curriculum stages: NDCG@10 and friends via sentence-transformers' evaluator."""

from __future__ import annotations

from collections.abc import Callable

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from st_code.data.records import RetrievalSet

#: ``(retrieval set) -> (query prompt, document prompt)``; ``None`` evaluates without prompts.
PromptsFor = Callable[[RetrievalSet], tuple[str | None, str | None]]


def evaluate_sets(model: SentenceTransformer, sets: dict[str, RetrievalSet], prompts_for: PromptsFor | None = None,
                  batch_size: int = 64, max_queries: int | None = None,
                  log: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """``{set name: {"ndcg@10": ..., "mrr@10": ..., "recall@10": ...}}`` for each retrieval set; a set
    without a single judged query is skipped, saying so (it has no score to give)."""
    results = {}
    for name, rs in sets.items():
        query_ids = [q for q in rs.queries if q in rs.relevant]
        if max_queries is not None:
            query_ids = query_ids[:max_queries]
        if not query_ids or not rs.corpus:
            log(f"  evaluation set {name!r} has no judged queries (a held-out split too small for its code?): skipped")
            continue
        query_prompt, document_prompt = prompts_for(rs) if prompts_for else (None, None)
        evaluator = InformationRetrievalEvaluator(
            queries={q: rs.queries[q] for q in query_ids}, corpus=rs.corpus,
            relevant_docs={q: rs.relevant[q] for q in query_ids}, name=name, batch_size=batch_size,
            # "" also stops encode_query / encode_document falling back to prompts["query"] / ["document"]
            query_prompt=query_prompt or "", corpus_prompt=document_prompt or "",
            write_csv=False, show_progress_bar=False,
            main_score_function="cosine", score_functions=None,
        )
        scores = evaluator(model)

        def get(metric: str) -> float:
            return float(next(v for k, v in scores.items() if k.endswith(metric)))
        results[name] = {"ndcg@10": get("ndcg@10"), "mrr@10": get("mrr@10"), "recall@10": get("recall@10")}
    return results
