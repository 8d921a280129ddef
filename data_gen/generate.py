"""Stage 3, generate: query-positive pairs from real code with the Table 11 prompt.

Which side the real code becomes follows the task's ``input_role`` (CodeR appendix E): the code is
the positive for Text2Code (the LLM writes the query), the query for Code2Text and Code2Code (the
LLM writes the positive), and part of the query for Hybrid tasks (code + a generated request; the
LLM then writes the positive). Two-step tasks chain two calls; Code Context Retrieval splits the
code with no LLM; Code Translation runs over source/target language pairs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from data_gen.corpus import CodeFile, snippet
from data_gen.prompts import generate_prompt
from data_gen.records import Pair
from data_gen.validate import Rejected, check_generation
from st_code.data.offline_pairs import split_code_context
from st_code.llm import Journal, LLMClient, work_key
from st_code.llm.ask import ask
from st_code.tasks import Task

#: Tasks whose first call needs an (input code, output code) pair: CodeR draws these from edits; here
#: the output code is produced first with Code Refinement's generation instruction.
NEEDS_CODE_PAIR = {"Code Modification Retrieval", "Code Comparison Retrieval"}
REFINE_INSTRUCTION = "Given a piece of {code_language} code, generate a refined version of the code."


@dataclass(frozen=True)
class WorkItem:
    task: Task
    file: CodeFile
    language: str  # English / Chinese
    target_language: str | None = None  # Code Translation only

    @property
    def key(self) -> str:
        return work_key("pair", self.task.name, self.language, self.file.language, self.target_language, self.file.id)


def _is_code(output_content: str) -> bool:
    return "{language}" not in output_content


class Generator:
    """Runs work items through the LLM; every call's outcome is journaled, so reruns skip them."""

    def __init__(self, client: LLMClient, journal: Journal, max_lines: int = 60) -> None:
        self.client, self.journal, self.max_lines = client, journal, max_lines
        self.rejected: dict[str, dict[str, int]] = {}

    def _reject(self, task: str, reason: str) -> None:
        per_task = self.rejected.setdefault(task, {})
        per_task[reason] = per_task.get(reason, 0) + 1

    async def _call(self, item: WorkItem, step: int, prompt: str, is_code: bool) -> str:
        answer = await ask(self.client, self.journal, "generate", (item.key, step), prompt,
                           lambda text: check_generation(text, is_code=is_code), task=item.task.name)
        if answer.status != "ok":  # failed calls are not journaled: the next run asks again
            raise Rejected(answer.reason)
        return answer.value

    async def run(self, item: WorkItem) -> Pair | None:
        """One pair for ``item``, or ``None`` when an output was rejected (counted per task and reason)."""
        try:
            query, positive = await self._pair(item)
        except Rejected as exc:
            self._reject(item.task.name, exc.reason)
            return None
        placeholders = self._placeholders(item)
        return Pair(key=item.key, task=item.task.name, major_type=item.task.major_type, language=item.language,
                    code_language=item.file.language, instruction=item.task.format_instruction(**placeholders),
                    query=query, positive=positive, source_id=item.file.id)

    @staticmethod
    def _placeholders(item: WorkItem) -> dict[str, str]:
        values = {"code_language": item.file.language, "language": item.language,
                  "src_code_language": item.file.language}
        values["tgt_code_language"] = item.target_language or item.file.language
        return values

    async def _step(self, item: WorkItem, step: int, content: str, input_type: str) -> str:
        placeholders = self._placeholders(item)
        prompt = generate_prompt(item.task, step, content, input_type, **placeholders)
        return await self._call(item, step, prompt, _is_code(item.task.output_content[step]))

    async def _pair(self, item: WorkItem) -> tuple[str, str]:
        task, code = item.task, snippet(item.file.code, self.max_lines)
        if task.llm_free:  # Code Context Retrieval: split real code at 40-70%
            split = split_code_context(code, random.Random(item.key))
            if split is None:
                raise Rejected("code_too_short")
            return split
        if not task.is_two_step:
            output = await self._step(item, 0, code, "Code")
            return (output, code) if task.input_role == "positive" else (code, output)
        name = task.name
        if task.major_type == "Hybrid":
            if name in NEEDS_CODE_PAIR:
                refined = await self._call(item, -1, generate_prompt_refine(item, code), is_code=True)
                both = f"Input code:\n{code}\n\nOutput code:\n{refined}"
                request = await self._step(item, 0, both, "Input code and output code")
                if name == "Code Modification Retrieval":
                    instruction = await self._step(item, 1, request, "Differences")
                    return f"{code}\n\n{instruction}", refined
                response = await self._step(item, 1, f"{both}\n\nQuestion:\n{request}", "Code and question")
                return f"{both}\n\n{request}", response
            request = await self._step(item, 0, code, "Code")
            if name == "Code Bug Fix Example Retrieval":  # step 1 writes the buggy code and its description
                fixed = await self._step(item, 1, request, "Buggy code and description")
                return request, fixed
            output = await self._step(item, 1, f"{code}\n\n{request}", "Code and request")
            return f"{code}\n\n{request}", output
        first = await self._step(item, 0, code, "Code")
        second = await self._step(item, 1, first, "Code")
        if name == "Bug Description to Code Retrieval":  # describe the injected bugs; retrieve the real code
            return second, code
        return first, second  # Code Issue Discussion: buggy code -> discussion; Version Update: old -> new


def generate_prompt_refine(item: WorkItem, code: str) -> str:
    from data_gen.prompts import GENERATE

    return GENERATE.format(generation_instruction=REFINE_INSTRUCTION.format(code_language=item.file.language),
                           input_type="Code", input_content=code,
                           output_content=f"the generated piece of {item.file.language} code")


def plan_work(tasks: list[Task], files: list[CodeFile], languages: list[str], max_samples: int | None,
              seed: int = 0) -> list[WorkItem]:
    """Work items: for each task and natural language, up to ``max_samples`` files per code language.

    Code2Code tasks are generated in English only (CodeR Table 9); Code Translation pairs each file
    with a different target language drawn from the corpus' languages.
    """
    rng = random.Random(seed)
    by_language: dict[str, list[CodeFile]] = {}
    for f in files:
        by_language.setdefault(f.language, []).append(f)
    code_languages = sorted(by_language)
    items: list[WorkItem] = []
    for task in tasks:
        for language in languages:
            if task.major_type == "Code2Code" and language != "English":
                continue
            for code_language in code_languages:
                pool = list(by_language[code_language])
                rng.shuffle(pool)
                for f in pool[: max_samples or len(pool)]:
                    target = None
                    if task.name == "Code Translation Retrieval":
                        others = [lang for lang in code_languages if lang != code_language]
                        if not others:
                            continue
                        target = rng.choice(others)
                    items.append(WorkItem(task, f, language, target))
    return items
