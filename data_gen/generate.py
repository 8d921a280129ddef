"""Stage 3, generate: query-positive pairs from real code with the Table 11 prompt.

Which side the real code becomes follows the task's ``input_role`` (CodeR appendix E): the code is
the positive for Text2Code (the LLM writes the query), the query for Code2Text and Code2Code (the
LLM writes the positive), and part of the query for Hybrid tasks (code + a generated request; the
LLM then writes the positive). How the calls chain is the task's ``flow`` in the registry
(``st_code.tasks.GENERATION_FLOWS``): one call, two chained calls, a request and its answer, an edit
first, or no LLM at all (the code cut in two); a task that names ``{tgt_code_language}`` runs over
source/target language pairs.
"""

from __future__ import annotations

from collections.abc import Callable

import random
from dataclasses import dataclass

from data_gen.corpus import CodeFile, snippet
from data_gen.templates import generate_prompt
from data_gen.pairs import Pair
from data_gen.validate import Rejected, check_generation
from st_code.data.offline_pairs import split_code_context
from st_code.llm import Journal, LLMClient, work_key
from st_code.llm.ask import ask
from st_code.tasks import Task

#: The edit flows need an (input code, output code) pair first: CodeR drew these from edits; here the
#: output code is produced with Code Refinement's generation instruction.
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
        """The (query, positive) pair of ``item``, made the way its task's ``flow`` says (registry)."""
        code = snippet(item.file.code, self.max_lines)
        return await getattr(self, f"_flow_{item.task.flow}")(item, code)

    async def _flow_split(self, item: WorkItem, code: str) -> tuple[str, str]:
        split = split_code_context(code, random.Random(item.key))  # no LLM: real code cut at 40-70%
        if split is None:
            raise Rejected("code_too_short")
        return split

    async def _flow_single(self, item: WorkItem, code: str) -> tuple[str, str]:
        output = await self._step(item, 0, code, "Code")
        return (output, code) if item.task.input_role == "positive" else (code, output)

    async def _flow_chain(self, item: WorkItem, code: str) -> tuple[str, str]:
        first = await self._step(item, 0, code, "Code")
        second = await self._step(item, 1, first, "Code")
        return first, second  # e.g. buggy code -> its issue discussion; old version -> new version

    async def _flow_chain_to_code(self, item: WorkItem, code: str) -> tuple[str, str]:
        _, second = await self._flow_chain(item, code)  # bugs injected, then described: retrieve the real code
        return second, code

    async def _flow_request(self, item: WorkItem, code: str) -> tuple[str, str]:
        request = await self._step(item, 0, code, "Code")
        output = await self._step(item, 1, f"{code}\n\n{request}", "Code and request")
        return f"{code}\n\n{request}", output

    async def _flow_request_then_fix(self, item: WorkItem, code: str) -> tuple[str, str]:
        request = await self._step(item, 0, code, "Code")  # buggy code and its description
        fixed = await self._step(item, 1, request, "Buggy code and description")
        return request, fixed

    async def _edited(self, item: WorkItem, code: str) -> tuple[str, str, str]:
        edited = await self._call(item, -1, generate_prompt_refine(item, code), is_code=True)
        both = f"Input code:\n{code}\n\nOutput code:\n{edited}"
        request = await self._step(item, 0, both, "Input code and output code")
        return edited, both, request

    async def _flow_edit_instruction(self, item: WorkItem, code: str) -> tuple[str, str]:
        edited, _, request = await self._edited(item, code)
        instruction = await self._step(item, 1, request, "Differences")
        return f"{code}\n\n{instruction}", edited

    async def _flow_edit_question(self, item: WorkItem, code: str) -> tuple[str, str]:
        _, both, question = await self._edited(item, code)
        response = await self._step(item, 1, f"{both}\n\nQuestion:\n{question}", "Code and question")
        return f"{both}\n\n{question}", response


def generate_prompt_refine(item: WorkItem, code: str) -> str:
    from data_gen.templates import GENERATE

    return GENERATE.format(generation_instruction=REFINE_INSTRUCTION.format(code_language=item.file.language),
                           input_type="Code", input_content=code,
                           output_content=f"the generated piece of {item.file.language} code")


def plan_work(tasks: list[Task], files: list[CodeFile], languages: list[str], max_samples: int | None,
              seed: int = 0, log: Callable[[str], None] | None = None) -> list[WorkItem]:
    """Work items: for each task and natural language, up to ``max_samples`` files per code language.

    Code2Code tasks are generated in English only (CodeR Table 9); a task that needs a target language
    (Code Translation) pairs each file with a different language drawn from the corpus' languages. A
    task bound to languages (Text to SQL: ``code_languages: [SQL]``) takes only files in them; ``log``
    hears of a task the corpus has no such file for.
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
            for code_language in [name for name in code_languages if task.takes_code_in(name)]:
                pool = list(by_language[code_language])
                rng.shuffle(pool)
                for f in pool[: max_samples or len(pool)]:
                    target = None
                    if task.needs_target_language:
                        others = [lang for lang in code_languages if lang != code_language]
                        if not others:
                            continue
                        target = rng.choice(others)
                    items.append(WorkItem(task, f, language, target))
    for task in tasks:
        if log and not any(task.takes_code_in(name) for name in code_languages):
            log(f"generate: {task.name} is generated from {' / '.join(task.code_languages)} code only and the "
                f"corpus has none (its languages: {', '.join(code_languages) or 'none'}); add such files or drop the task")
    return items
