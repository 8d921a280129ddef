"""Any local retrieval set as an mteb ``AbsTaskRetrieval``, so its metrics are mteb's own."""

from __future__ import annotations

from typing import Any

from datasets import Dataset
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.task_metadata import TaskMetadata

from st_code.data.records import RetrievalSet
from st_code.errors import UsageError
from st_code.fingerprint import stable_hash


def make_local_task(rs: RetrievalSet, name: str | None = None, description: str | None = None,
                    languages: list[str] | None = None) -> AbsTaskRetrieval:
    """Wrap ``rs`` (queries, corpus, qrels) as an mteb retrieval task that needs no hub access.

    The task's name is what mteb uses to look up ``"{name}-query"`` in a model's prompts; the set's
    own instruction (if any) is handed to mteb as the task's query prompt for models without one.
    """
    task_name = name or rs.name
    if not rs.relevant:
        raise UsageError(f"retrieval set {task_name!r} has no relevance judgements (qrels)")
    if not rs.corpus:
        raise UsageError(f"retrieval set {task_name!r} has an empty corpus")
    metadata = TaskMetadata(
        name=task_name,
        description=description or f"st-code local retrieval set {task_name}",
        reference=None,
        dataset={"path": f"local/{task_name}", "revision": "local"},
        type="Retrieval",
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=languages or ["eng-Latn", "python-Code"],
        main_score="ndcg_at_10",
        date=None,
        domains=["Programming"],
        task_subtypes=["Code retrieval"],
        license="not specified",
        annotations_creators="derived",
        dialect=[],
        sample_creation="found",
        bibtex_citation="",
        prompt={"query": rs.instruction} if rs.instruction else None,
    )

    class LocalRetrievalTask(AbsTaskRetrieval):
        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            if self.data_loaded:
                return
            queries = Dataset.from_dict({"id": list(rs.queries), "text": list(rs.queries.values())})
            corpus = Dataset.from_dict({"id": list(rs.corpus), "text": list(rs.corpus.values()),
                                        "title": [""] * len(rs.corpus)})
            relevant = {qid: {cid: 1 for cid in cids} for qid, cids in rs.relevant.items()}
            self.dataset = {"default": {"test": {"queries": queries, "corpus": corpus, "relevant_docs": relevant,
                                                 "top_ranked": None}}}
            self.data_loaded = True

    LocalRetrievalTask.metadata = metadata
    LocalRetrievalTask.__name__ = f"Local_{''.join(c for c in task_name if c.isalnum())}"
    task = LocalRetrievalTask()
    task.st_code_prompt_task = rs.task or task_name  # the name a model's "{task}-query" prompt is looked up by
    task.st_code_data_fingerprint = stable_hash(rs.to_json())  # what its cached scores belong to
    return task
