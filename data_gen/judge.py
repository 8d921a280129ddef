"""Stages 4 and 6: LLM judgements of pairs. Annotation (Table 12) keeps a pair only when the answer
is exactly ``1``; difficulty (Table 17) labels pairs simple / medium / hard for the Annealing filter."""

from __future__ import annotations

from collections import Counter

from data_gen.templates import annotate_prompt
from data_gen.pairs import Pair
from data_gen.validate import parse_label
from st_code.llm import Journal, LLMClient
from st_code.llm.ask import ask
from st_code.llm.difficulty import judge_prompt, parse_difficulty
from st_code.tasks import get_task


class Judge:
    def __init__(self, client: LLMClient, journal: Journal) -> None:
        self.client, self.journal = client, journal
        self.labels: dict[str, Counter] = {}
        self.rejected: dict[str, Counter] = {}

    async def _ask(self, stage: str, pair: Pair, prompt: str, parse) -> object | None:
        answer = await ask(self.client, self.journal, stage, (pair.key,), prompt, parse, task=pair.task,
                           temperature=0.0, max_tokens=16)
        if answer.status != "ok":  # a failed call is asked again by the next run; a rejected answer is final
            self.rejected.setdefault(pair.task, Counter())[answer.reason] += 1
            return None
        self.labels.setdefault(pair.task, Counter())[str(answer.value)] += 1
        return answer.value

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
        prompt = judge_prompt(pair.instruction, pair.query, pair.positive)
        pair.difficulty = await self._ask("difficulty", pair, prompt, parse_difficulty)
        pair.difficulty_model = self.client.model if pair.difficulty is not None else None
        return pair


def _target_language(instruction: str, default: str) -> str:
    marker = "retrieve "
    if marker in instruction and " code that is semantically" in instruction:
        return instruction.split(marker, 1)[1].split(" code that is semantically", 1)[0]
    return default
