"""Stage-3 difficulty filters (CodeR section 4): drop easy samples before the cooling-down stage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sentence_transformers import SentenceTransformer

from st_code.data.records import Sample

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
    import faiss
    import numpy as np

    groups: dict[tuple, list[int]] = {}
    for index, sample in enumerate(samples):
        groups.setdefault(sample.group, []).append(index)
    keep = [True] * len(samples)
    for indices in groups.values():
        docs = np.asarray(model.encode([samples[i].positive for i in indices], batch_size=batch_size,
                                       convert_to_numpy=True, normalize_embeddings=True,
                                       prompt=document_prompt or ""), dtype=np.float32)
        if len(indices) <= k:  # every positive is in its own top k
            for global_index in indices:
                keep[global_index] = False
            continue
        index = faiss.IndexFlatIP(docs.shape[1])
        index.add(docs)
        for start in range(0, len(indices), chunk):
            part = indices[start:start + chunk]
            queries = np.asarray(model.encode([samples[i].query for i in part], batch_size=batch_size,
                                              convert_to_numpy=True, normalize_embeddings=True,
                                              prompt=query_prompt or ""), dtype=np.float32)
            top_scores, top_rows = index.search(queries, k)
            own = np.einsum("ij,ij->i", queries, docs[start:start + len(part)])
            for local, global_index in enumerate(part):
                # fewer than k positives score above its own: it is in the top k (a tie counts for it)
                if start + local in top_rows[local] or top_scores[local, k - 1] <= own[local]:
                    keep[global_index] = False
    kept = [s for s, flag in zip(samples, keep) if flag]
    return kept, FilterReport(f"embedder_topk(k={k})", len(kept), len(samples) - len(kept), {"too_easy": len(samples) - len(kept)})


def difficulty_filter(samples: list[Sample], keep: tuple[str, ...] = ("medium", "hard"),
                      unlabeled: str = "keep") -> tuple[list[Sample], FilterReport]:
    """Keep the rows whose CodeR Table 17 label (``Sample.difficulty``, written by data_gen) is in
    ``keep``; rows without a label are kept or dropped as ``unlabeled`` says."""
    counts: dict[str, int] = {}
    kept = []
    for sample in samples:
        label = sample.difficulty or "unlabeled"
        counts[label] = counts.get(label, 0) + 1
        if label in keep or (sample.difficulty is None and unlabeled == "keep"):
            kept.append(sample)
    return kept, FilterReport(f"difficulty(keep={list(keep)}, unlabeled={unlabeled})", len(kept),
                              len(samples) - len(kept), counts)


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

    asked = [s for s in samples if s.difficulty is None or (rejudge and s.difficulty_model != llm)]
    answers = asyncio.run(_judge(asked, instruction_of, llm, api_base, concurrency, timeout, retries, journal))
    judged = dict(zip(map(id, asked), answers))
    counts: dict[str, int] = {}
    kept = []
    for sample in samples:
        label = judged.get(id(sample)) or sample.difficulty
        counts[label or "error"] = counts.get(label or "error", 0) + 1
        if label in keep:
            kept.append(sample)
    detail = {**counts, "asked_llm": len(asked),
              "rejudged": sum(1 for s in asked if s.difficulty is not None)}
    return kept, FilterReport(f"llm_judge({llm})", len(kept), len(samples) - len(kept), detail)


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
