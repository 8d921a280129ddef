"""Retrieval evaluation for curriculum stages: NDCG@10 and friends via sentence-transformers' evaluator."""

from __future__ import annotations

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from st_code.data.offline_pairs import RetrievalSet
from st_code.prompts import format_instruction


def evaluate_sets(model: SentenceTransformer, sets: dict[str, RetrievalSet], use_instructions: bool,
                  instruction_format: str = "bge", batch_size: int = 64,
                  max_queries: int | None = None) -> dict[str, dict[str, float]]:
    """``{set name: {"ndcg@10": ..., "mrr@10": ..., "recall@10": ...}}`` for each retrieval set."""
    results = {}
    for name, rs in sets.items():
        query_ids = [q for q in rs.queries if q in rs.relevant]
        if max_queries is not None:
            query_ids = query_ids[:max_queries]
        prompt = format_instruction(rs.instruction, instruction_format) if use_instructions and rs.instruction else None
        evaluator = InformationRetrievalEvaluator(
            queries={q: rs.queries[q] for q in query_ids}, corpus=rs.corpus,
            relevant_docs={q: rs.relevant[q] for q in query_ids}, name=name, batch_size=batch_size,
            query_prompt=prompt or "",  # "" also stops encode_query's fallback to prompts["query"]
            write_csv=False, show_progress_bar=False,
            main_score_function="cosine", score_functions=None,
        )
        scores = evaluator(model)
        def get(metric: str) -> float:
            return float(next(v for k, v in scores.items() if k.endswith(metric)))
        results[name] = {"ndcg@10": get("ndcg@10"), "mrr@10": get("mrr@10"), "recall@10": get("recall@10")}
    return results
