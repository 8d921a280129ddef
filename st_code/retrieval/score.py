"""A model's scores on one retrieval task, with the prompts it is meant to be read with."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from st_code.reporting import METRICS


@contextmanager
def quiet_mteb() -> Iterator[None]:
    """mteb (2.x) still calls sentence-transformers' renamed ``get_sentence_embedding_dimension``, and the
    FutureWarning that raises, twice per task, filled every stage's log with lines that were mteb's to
    fix and no user's. Everything else mteb says still comes through."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The `get_sentence_embedding_dimension` method has been renamed",
                                category=FutureWarning)
        yield


def resolve_prompts(prompts: dict[str, str] | None, task_name: str) -> dict[str, str | None]:
    """The query and document prompt a model's ``prompts`` give ``task_name``, in mteb's own order
    ("{task}-query", "{task}", "Retrieval-query", "Retrieval", "query")."""
    from types import SimpleNamespace

    from mteb.models.abs_encoder import get_prompt_name
    from mteb.types import PromptType

    metadata = SimpleNamespace(name=task_name, type="Retrieval")
    resolved = {}
    for kind in (PromptType.query, PromptType.document):
        name = get_prompt_name(prompts or {}, metadata, kind)
        resolved[kind.value] = (prompts or {}).get(name) if name else None
    return resolved


def scores_of(task_result: Any) -> dict[str, float]:
    """:data:`~st_code.reporting.METRICS` from one mteb task result."""
    split = next(iter(task_result.scores.values()))
    entry = split[0] if isinstance(split, list) else split
    return {m: float(entry[m]) for m in METRICS if m in entry}


def score_set(model, task, query_prompt: str | None = None, document_prompt: str | None = None,
              batch_size: int = 64) -> dict[str, float]:
    """Evaluate ``model`` on ``task`` (an mteb task, e.g. from
    :func:`~st_code.retrieval.make_local_task`) with exactly these prompts (``None``: none), through
    ``mteb.evaluate``; the model's own ``prompts`` are put back afterwards."""
    import mteb

    own = dict(model.prompts or {})
    model.prompts = {kind: text for kind, text in (("query", query_prompt), ("document", document_prompt)) if text}
    try:
        with quiet_mteb():
            result = mteb.evaluate(model, task, cache=None, encode_kwargs={"batch_size": batch_size},
                                   show_progress_bar=False)
    finally:
        model.prompts = own
    return scores_of(result.task_results[0])


__all__ = ["resolve_prompts", "scores_of", "score_set", "quiet_mteb"]
