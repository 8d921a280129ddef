"""Stages 4 and 6: LLM judgements of pairs. Annotation (Table 12) keeps a pair only when the answer
is exactly ``1``; difficulty (Table 17) labels pairs simple / medium / hard for the Annealing filter."""

from __future__ import annotations

from collections import Counter

from data_gen.journal import Journal, work_key
from data_gen.llm import LLMClient, LLMError
from data_gen.prompts import annotate_prompt
from data_gen.records import Pair
from data_gen.validate import Rejected, parse_difficulty, parse_label
from st_code.tasks import get_task
from st_code.training.filters import JUDGE_PROMPT


class Judge:
    def __init__(self, client: LLMClient, journal: Journal) -> None:
        self.client, self.journal = client, journal
        self.labels: dict[str, Counter] = {}
        self.rejected: dict[str, Counter] = {}

    async def _ask(self, stage: str, pair: Pair, prompt: str, parse) -> object | None:
        key = work_key(stage, pair.key, prompt)
        done = self.journal.get(key)
        if done is None:
            try:
                text = await self.client.complete(prompt, temperature=0.0, max_tokens=16)
            except LLMError as exc:  # transient: not journaled, the next run asks again
                self.rejected.setdefault(pair.task, Counter())[f"llm_{exc.reason}"] += 1
                return None
            try:
                value = parse(text)
                done = {"key": key, "stage": stage, "status": "ok", "value": value, "task": pair.task}
            except Rejected as exc:
                done = {"key": key, "stage": stage, "status": "rejected", "reason": exc.reason, "task": pair.task,
                        "output": (text or "")[:300]}  # what the model said, to see why
            self.journal.write(done)
        if done["status"] != "ok":
            self.rejected.setdefault(pair.task, Counter())[done["reason"]] += 1
            return None
        self.labels.setdefault(pair.task, Counter())[str(done["value"])] += 1
        return done["value"]

    async def annotate(self, pair: Pair) -> Pair | None:
        """The pair with ``label`` set, or ``None`` unless the LLM answered exactly 1."""
        task = get_task(pair.task)
        placeholders = {"src_code_language": pair.code_language, "tgt_code_language": pair.code_language}
        if "{tgt_code_language}" in task.instruction:
            placeholders["tgt_code_language"] = _target_language(pair.instruction, pair.code_language)
        prompt = annotate_prompt(task, pair.query, pair.positive, **placeholders)
        label = await self._ask("annotate", pair, prompt, parse_label)
        if label != 1:
            return None
        pair.label = 1
        return pair

    async def difficulty(self, pair: Pair) -> Pair:
        """The pair with ``difficulty`` set (``None`` if the answer could not be parsed)."""
        prompt = JUDGE_PROMPT.format(instruction=pair.instruction, query=pair.query, document=pair.positive)
        pair.difficulty = await self._ask("difficulty", pair, prompt, parse_difficulty)
        return pair


def _target_language(instruction: str, default: str) -> str:
    marker = "retrieve "
    if marker in instruction and " code that is semantically" in instruction:
        return instruction.split(marker, 1)[1].split(" code that is semantically", 1)[0]
    return default
