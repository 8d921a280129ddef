"""Per-stage scores on the held-out sets, through the same evaluator as ``st_code.evaluation``
(:mod:`st_code.retrieval`: mteb's retrieval metrics, ``ndcg_at_10``...) and with the prompts the
saved model carries, looked up by each set's task as ``st_code.evaluation`` looks them up: the
number a stage reports is the number the evaluation CLI gives its saved model."""

from __future__ import annotations

from collections.abc import Callable

from sentence_transformers import SentenceTransformer

from st_code.data.records import RetrievalSet
from st_code.retrieval import make_local_task, resolve_prompts, score_set


def evaluate_sets(model: SentenceTransformer, sets: dict[str, RetrievalSet], batch_size: int = 64,
                  max_queries: int | None = None, log: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """``{set name: {"ndcg_at_10": ..., "mrr_at_10": ..., ...}}`` for each retrieval set (the first
    ``max_queries`` judged queries against the whole corpus); a set without a single judged query is
    skipped, saying so (it has no score to give)."""
    results = {}
    for name, rs in sets.items():
        query_ids = [q for q in rs.queries if q in rs.relevant]
        if max_queries is not None:
            query_ids = query_ids[:max_queries]
        if not query_ids or not rs.corpus:
            log(f"  evaluation set {name!r} has no judged queries (a held-out split too small for its code?): skipped")
            continue
        subset = RetrievalSet(name, rs.instruction, {q: rs.queries[q] for q in query_ids}, rs.corpus,
                              {q: rs.relevant[q] for q in query_ids}, rs.task)
        prompts = resolve_prompts(model.prompts, rs.task or name)
        results[name] = score_set(model, make_local_task(subset, name=name), prompts["query"], prompts["document"],
                                  batch_size)
    return results


def evaluate_stage(model: SentenceTransformer, heldout: dict[str, RetrievalSet], evaluation,
                   log: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """A stage's scores on the configured sets (``evaluation``: the config's EvaluationConfig), with the
    prompts ``model`` carries as saved, so a stage's number is its saved model's. An unmerged LoRA
    adapter is merged into a copy first (it would double every forward)."""
    from st_code.lora import has_lora, merged_copy

    sets = {name: heldout[name] for name in evaluation.sets if name in heldout}
    missing = [name for name in evaluation.sets if name not in heldout]
    if missing:
        log(f"  (evaluation sets not available and skipped: {missing})")
    if has_lora(model):
        model = merged_copy(model)
    return evaluate_sets(model, sets, evaluation.batch_size, evaluation.max_queries, log)


def evaluate_dims(model: SentenceTransformer, heldout: dict[str, RetrievalSet], evaluation, dims: list[int] | None,
                  log: Callable[[str], None] = print) -> dict[str, dict]:
    """A Matryoshka stage's scores with the embeddings truncated to each of its smaller dimensions."""
    full = model.get_embedding_dimension()
    scores = {}
    for dim in sorted(d for d in dims or [] if d < full):
        model.truncate_dim = dim
        try:
            scores[str(dim)] = evaluate_stage(model, heldout, evaluation, log)
        finally:
            model.truncate_dim = None
    return scores


__all__ = ["evaluate_sets", "evaluate_stage", "evaluate_dims"]
