"""Stage-3 difficulty filters (CodeR section 4): drop easy samples before the cooling-down stage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sentence_transformers import SentenceTransformer

from st_code.data.records import Sample
from st_code.training.stage_rows import keep_rows

logger = logging.getLogger(__name__)


@dataclass
class FilterReport:
    name: str
    kept: int
    dropped: int
    detail: dict[str, int]

    def line(self) -> str:
        return f"{self.name}: kept {self.kept}, dropped {self.dropped} {self.detail}"


def embedder_topk_filter(samples: list[Sample], model: SentenceTransformer, k: int = 3, batch_size: int = 64,
                         query_prompt: str | None = None, document_prompt: str | None = None,
                         chunk: int = 65536) -> tuple[list[Sample], FilterReport]:
    """Drop a sample when ``model`` ranks its positive in the top ``k`` among its group's positives
    (CodeR: each query searched with a reference embedder, the sample dropped as too easy when its
    positive comes back in the top 3).

    Each query is searched in the positives of its group, (task, code language, language): the units
    training batches come from. The positives go into an exact faiss inner-product index and the
    queries are searched ``chunk`` at a time for their top ``k``, so memory grows with the group (its
    vectors), never with its square. E5-style reference models need their ``query_prompt`` /
    ``document_prompt`` ("query: ", "passage: ").
    """

    groups: dict[tuple, list[int]] = {}
    queries, positives = [], []
    for index, sample in enumerate(samples):  # one pass: a table's rows are read once, their negatives never kept
        groups.setdefault(sample.group, []).append(index)
        queries.append(sample.query)
        positives.append(sample.positive)
    keep = [True] * len(queries)
    for indices in groups.values():
        docs = model.encode([positives[i] for i in indices], batch_size=batch_size, convert_to_tensor=True,
                            normalize_embeddings=True, prompt=document_prompt or "")
        if len(indices) <= k:  # every positive is in its own top k
            for global_index in indices:
                keep[global_index] = False
            continue
        search = _searcher(docs)
        for start in range(0, len(indices), chunk):
            part = indices[start:start + chunk]
            encoded = model.encode([queries[i] for i in part], batch_size=batch_size, convert_to_tensor=True,
                                   normalize_embeddings=True, prompt=query_prompt or "")
            top_scores, top_rows = search(encoded, k)
            own = (encoded.float() * docs[start:start + len(part)].float()).sum(dim=1).cpu().numpy()
            for local, global_index in enumerate(part):
                # fewer than k positives score above its own: it is in the top k (a tie counts for it)
                if start + local in top_rows[local] or top_scores[local, k - 1] <= own[local]:
                    keep[global_index] = False
    kept = keep_rows(samples, keep)
    dropped = len(keep) - sum(keep)
    return kept, FilterReport(f"embedder_topk(k={k})", len(kept), dropped, {"too_easy": dropped})


def _searcher(docs):
    """``search(queries, k) -> (scores, rows)`` over ``docs`` (normalized embeddings, a tensor): an
    exact faiss index on the CPU; on a GPU, chunked matrix products there (the same exact top-k,
    without a faiss-gpu build). Memory grows with the docs, never with queries x docs at once."""
    import numpy as np

    if docs.device.type == "cpu":
        import faiss

        matrix = np.ascontiguousarray(docs.float().numpy())
        index = faiss.IndexFlatIP(matrix.shape[1])
        index.add(matrix)
        return lambda queries, k: index.search(np.ascontiguousarray(queries.float().cpu().numpy()), k)

    return lambda queries, k: blockwise_topk(queries, docs, k)


def blockwise_topk(queries, docs, k: int, block_scores: int = 2**28):
    """Exact top-``k`` inner products of ``queries`` against ``docs`` (tensors on any device), a block
    of queries at a time so at most ``block_scores`` scores exist at once: ``(scores, rows)`` arrays."""
    import torch

    step = max(1, block_scores // max(1, len(docs)))
    scores, rows = [], []
    for start in range(0, len(queries), step):
        top = torch.topk(queries[start:start + step].float() @ docs.float().T, k, dim=1)
        scores.append(top.values.cpu())
        rows.append(top.indices.cpu())
    return torch.cat(scores).numpy(), torch.cat(rows).numpy()


def difficulty_filter(samples: list[Sample], keep: tuple[str, ...] = ("medium", "hard"),
                      unlabeled: str = "keep") -> tuple[list[Sample], FilterReport]:
    """Keep the rows whose CodeR Table 17 label (``Sample.difficulty``, written by data_gen) is in
    ``keep``; rows without a label are kept or dropped as ``unlabeled`` says."""
    counts: dict[str, int] = {}
    flags = []
    for label in (sample.difficulty for sample in samples):
        counts[label or "unlabeled"] = counts.get(label or "unlabeled", 0) + 1
        flags.append(label in keep or (label is None and unlabeled == "keep"))
    kept = keep_rows(samples, flags)
    return kept, FilterReport(f"difficulty(keep={list(keep)}, unlabeled={unlabeled})", len(kept),
                              len(flags) - len(kept), counts)


def llm_judge_filter(samples: list[Sample], instructions: dict[str, str] | Callable[[Sample], str | None],
                     llm: str, api_base: str | None = None, keep: tuple[str, ...] = ("medium", "hard"),
                     concurrency: int = 16, timeout: float = 60.0, retries: int = 3,
                     journal: str | Path | None = None, rejudge: bool = False) -> tuple[list[Sample], FilterReport]:
    """CodeR's Table 17 labels; keep the ``keep`` labels.

    A row that already carries a label (data_gen's ``difficulty`` column) keeps it, unless ``rejudge``
    asks ``llm`` again for every label another (or an unknown) model gave (a failed call leaves the old
    label). Unlabeled rows are sent to ``llm`` through st-code's LLM client (bounded concurrency, retries; any litellm
    model, or an OpenAI-compatible ``api_base``). With ``journal`` (a JSONL path) every answer is
    journaled, so a rerun asks nothing twice. ``instructions`` gives the task instruction for the
    prompt: a function of the sample, or ``{task: instruction}``. If no call at all gets through,
    :class:`~st_code.errors.ServiceUnreachable` is raised instead of dropping every row.
    """
    def instruction_of(sample: Sample) -> str:
        if callable(instructions):
            return instructions(sample) or sample.task
        return sample.instruction or instructions.get(sample.task, sample.task)

    labels: list[str | None] = []
    asked: dict[int, Sample] = {}  # only the rows the LLM is asked about are held
    for index, sample in enumerate(samples):
        labels.append(sample.difficulty)
        if sample.difficulty is None or (rejudge and sample.difficulty_model != llm):
            asked[index] = sample
    answers = asyncio.run(_judge(list(asked.values()), instruction_of, llm, api_base, concurrency, timeout, retries,
                                 journal))
    rejudged = sum(1 for sample in asked.values() if sample.difficulty is not None)
    for index, answer in zip(asked, answers):
        labels[index] = answer or labels[index]
    counts: dict[str, int] = {}
    for label in labels:
        counts[label or "error"] = counts.get(label or "error", 0) + 1
    kept = keep_rows(samples, [label in keep for label in labels])
    detail = {**counts, "asked_llm": len(asked), "rejudged": rejudged}
    return kept, FilterReport(f"llm_judge({llm})", len(kept), len(labels) - len(kept), detail)


async def _judge(samples: list[Sample], instruction_of: Callable[[Sample], str], llm: str, api_base: str | None,
                 concurrency: int, timeout: float, retries: int, journal_path: str | Path | None) -> list[str | None]:
    import tempfile

    from st_code.fingerprint import stable_hash
    from st_code.llm import Journal, LLMClient
    from st_code.llm.ask import ask
    from st_code.llm.difficulty import judge_prompt, parse_difficulty

    if not samples:
        return []
    client = LLMClient(llm, [api_base] if api_base else [], concurrency, timeout, retries)
    with tempfile.TemporaryDirectory() as scratch:
        journal = Journal(journal_path or Path(scratch) / "journal.jsonl")

        async def one(sample: Sample):
            prompt = judge_prompt(instruction_of(sample), sample.query, sample.positive)
            key = stable_hash([llm, sample.task, sample.query, sample.positive])  # an answer is its model's
            return await ask(client, journal, "difficulty", (key,), prompt, parse_difficulty, task=sample.task,
                             temperature=0.0, max_tokens=32)

        try:
            answers = await asyncio.gather(*(one(s) for s in samples))
        finally:
            await client.aclose()
            journal.close()
    failed = [a for a in answers if a.status == "failed"]
    if len(failed) == len(answers):
        from st_code.errors import ServiceUnreachable

        where = f" at {api_base}" if api_base else ""
        raise ServiceUnreachable(
            f"llm_judge: none of {len(answers)} calls to {llm}{where} got an answer ({failed[0].reason}); start the "
            "server or fix the filter's llm / api_base, or judge by data_gen's labels alone with {type: difficulty}")
    for answer in failed:
        logger.warning("llm_judge call failed: %s", answer.reason)
    return [a.value if a.status == "ok" else None for a in answers]


__all__ = ["FilterReport", "embedder_topk_filter", "difficulty_filter", "llm_judge_filter"]
