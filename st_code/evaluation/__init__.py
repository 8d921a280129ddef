"""Evaluation: MTEB-Code (and any mteb task) through ``mteb.evaluate``, local retrieval sets wrapped as
mteb tasks, built-in offline sets, and reports (markdown, JSON, PNG) with the papers' reference scores.

    from st_code.evaluation import evaluate
    results = evaluate(["runs/annealing/final"], benchmark="MTEB(Code, v1)", builtin=["HumanEval-doc2code"])
"""

from st_code.evaluation.runner import (
    EvaluationResult, apply_instructions, evaluate, load_local_set, resolve_tasks,
)
from st_code.evaluation.local_task import make_local_task
from st_code.evaluation.references import REFERENCE_SCORES

__all__ = ["evaluate", "EvaluationResult", "apply_instructions", "load_local_set", "resolve_tasks",
           "make_local_task", "REFERENCE_SCORES"]
