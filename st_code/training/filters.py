"""Stage-3 difficulty filters (CodeR section 4): drop easy samples before the cooling-down stage."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from sentence_transformers import SentenceTransformer

from st_code.data.records import Sample

logger = logging.getLogger(__name__)

#: CodeR Table 17: the GPT filtering prompt.
JUDGE_PROMPT = """You are provided with a task, a query, and a document. Based on the task, determine whether the document can respond to the query.
Your response should be one of the following, along with an explanation:
- "Yes, simple" - If the document contains sufficient information to fully and directly respond to the query in a straightforward manner.
- "Yes, medium" - If the document contains sufficient information to fully and directly respond to the query, but the explanation or reasoning requires moderate effort.
- "Yes, hard" - If the document contains sufficient information to fully and directly respond to the query, but the explanation or reasoning requires significant effort or complexity.
- "No" - If the document does not contain any relevant information to respond to the query.
Task:
{instruction}
Query:
{query}
Document:
{document}
Your output:"""

_LABEL = re.compile(r"^\W*(yes\W+(simple|medium|hard)|no)\b", re.IGNORECASE)


@dataclass
class FilterReport:
    name: str
    kept: int
    dropped: int
    detail: dict[str, int]

    def line(self) -> str:
        return f"{self.name}: kept {self.kept}, dropped {self.dropped} {self.detail}"


def embedder_topk_filter(samples: list[Sample], model: SentenceTransformer, k: int = 3, batch_size: int = 64,
                         query_prompt: str | None = None,
                         document_prompt: str | None = None) -> tuple[list[Sample], FilterReport]:
    """Drop a sample when ``model`` ranks its positive in the top ``k`` among its group's positives.

    Groups are (task, code language, language), the units training batches come from. E5-style
    reference models need their ``query_prompt`` / ``document_prompt`` ("query: ", "passage: ").
    """
    groups: dict[tuple, list[int]] = {}
    for index, sample in enumerate(samples):
        groups.setdefault(sample.group, []).append(index)
    keep = [True] * len(samples)
    for indices in groups.values():
        queries = model.encode([samples[i].query for i in indices], batch_size=batch_size, convert_to_tensor=True,
                               normalize_embeddings=True, prompt=query_prompt or "")
        docs = model.encode([samples[i].positive for i in indices], batch_size=batch_size, convert_to_tensor=True,
                            normalize_embeddings=True, prompt=document_prompt or "")
        scores = queries @ docs.T
        own = scores.diagonal().unsqueeze(1)
        rank = (scores > own).sum(dim=1)  # 0 = the positive is the best match
        for local, global_index in enumerate(indices):
            if rank[local].item() < k:
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


def parse_judgement(text: str) -> str | None:
    """'Yes, medium ...' -> 'medium'; 'No ...' -> 'no'; anything else -> None (counted as error)."""
    text = re.sub(r"<think>.*?</think>", "", text or "", flags=re.DOTALL).strip().strip('"')
    match = _LABEL.match(text)
    if not match:
        return None
    return (match.group(2) or "no").lower()


async def _judge_all(prompts: list[str], llm: str, api_base: str | None, concurrency: int, timeout: float) -> list[str | None]:
    import litellm

    semaphore = asyncio.Semaphore(concurrency)

    async def judge(prompt: str) -> str | None:
        async with semaphore:
            try:
                response = await litellm.acompletion(
                    model=llm, api_base=api_base, messages=[{"role": "user", "content": prompt}],
                    # local OpenAI-compatible servers take any key; the openai client insists on one
                    api_key=os.environ.get("OPENAI_API_KEY", "sk-local") if api_base else None,
                    timeout=timeout, num_retries=3, temperature=0.0, max_tokens=64,
                )
                return parse_judgement(response.choices[0].message.content)
            except Exception as exc:  # one failed call must not sink the stage; counted as "error"
                logger.warning("llm_judge call failed: %s", exc)
                return None

    return await asyncio.gather(*(judge(p) for p in prompts))


def llm_judge_filter(samples: list[Sample], instructions: dict[str, str] | Callable[[Sample], str | None],
                     llm: str, api_base: str | None = None, keep: tuple[str, ...] = ("medium", "hard"),
                     concurrency: int = 16, timeout: float = 60.0) -> tuple[list[Sample], FilterReport]:
    """CodeR's Table 17 labels; keep the ``keep`` labels.

    A row that already carries a label (data_gen's ``difficulty`` column) keeps it; only unlabeled
    rows are sent to ``llm`` through litellm. ``instructions`` gives the task instruction for the
    prompt: a function of the sample, or ``{task: instruction}``.
    """
    def instruction_of(sample: Sample) -> str:
        if callable(instructions):
            return instructions(sample) or sample.task
        return sample.instruction or instructions.get(sample.task, sample.task)

    unlabeled = [s for s in samples if s.difficulty is None]
    prompts = [JUDGE_PROMPT.format(instruction=instruction_of(s), query=s.query, document=s.positive) for s in unlabeled]
    judged = dict(zip(map(id, unlabeled), asyncio.run(_judge_all(prompts, llm, api_base, concurrency, timeout))))
    counts: dict[str, int] = {}
    kept = []
    for sample in samples:
        label = sample.difficulty if sample.difficulty is not None else judged[id(sample)]
        counts[label or "error"] = counts.get(label or "error", 0) + 1
        if label in keep:
            kept.append(sample)
    detail = {**counts, "asked_llm": len(unlabeled)}
    return kept, FilterReport(f"llm_judge({llm})", len(kept), len(samples) - len(kept), detail)


__all__ = ["JUDGE_PROMPT", "FilterReport", "embedder_topk_filter", "difficulty_filter", "llm_judge_filter",
           "parse_judgement"]
