"""Evaluation: MTEB-Code (and any mteb task) through ``mteb.evaluate``, local retrieval sets wrapped as
mteb tasks, built-in offline sets, and reports (markdown, JSON, PNG) with the papers' reference scores.

    from st_code.evaluation import evaluate
    results = evaluate(["runs/annealing/final"], benchmark="MTEB(Code, v1)", builtin=["HumanEval-doc2code"])

Names resolve on first use, so ``python -m st_code.evaluation --help`` (and a bad argument) does not
wait for mteb and sentence-transformers.
"""

from st_code.lazy import lazy_exports

_RUNNER = "st_code.evaluation.runner"
_EXPORTS = {"EvaluationResult": _RUNNER, "apply_instructions": _RUNNER, "evaluate": _RUNNER,
            "load_local_set": _RUNNER, "resolve_tasks": _RUNNER, "make_local_task": "st_code.retrieval.local_task",
            "REFERENCE_SCORES": "st_code.evaluation.references"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = ["evaluate", "EvaluationResult", "apply_instructions", "load_local_set", "resolve_tasks",
           "make_local_task", "REFERENCE_SCORES"]
