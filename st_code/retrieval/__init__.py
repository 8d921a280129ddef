"""Scoring a model on a retrieval set, one way for the curriculum's per-stage scores and for
``st_code.evaluation``: every set becomes an mteb retrieval task, so the metrics (and their names,
``ndcg_at_10``...) are mteb's own."""

from st_code.retrieval.local_task import make_local_task
from st_code.retrieval.score import quiet_mteb, resolve_prompts, score_set, scores_of

__all__ = ["make_local_task", "score_set", "scores_of", "resolve_prompts", "quiet_mteb"]
