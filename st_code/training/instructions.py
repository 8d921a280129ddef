"""Which instruction each training query gets, and the prompts a trained model saves for them.

One :class:`InstructionPlan` decides both, so the text the loss sees and the text the saved model
prepends at encode time are the same string. The ``instruction_set`` picks whose wording:

* ``coder``: the row's own instruction (data_gen writes it with placeholders filled; a source's
  ``instruction:`` sets it), else the registry's (CodeR Table 8, or Table 18 for evaluation tasks).
* ``c2llm``: C2LLM Table 1 for the MTEB-Code tasks, queries and documents ("Retrieved Answer:");
  other tasks as ``coder``.
* ``codexembed``: CodeXEmbed's one generic instruction for every query.
* ``none``: no instruction anywhere.

Placeholders (``{src_code_language}``...) are filled from the row's languages; one that cannot be
filled is an error, never a literal brace in the training text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from st_code.data.records import Sample
from st_code.errors import StCodeError
from st_code.prompts import CODEXEMBED_INSTRUCTION, check_instruction_set, document_prompt, format_instruction
from st_code.tasks import coder_pile_tasks, evaluation_tasks

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class InstructionError(StCodeError, ValueError):
    """An instruction that cannot be completed for a row (a placeholder with no value)."""


def _registry_instruction(task: str) -> str | None:
    from st_code.data.offline_pairs import TEXT_ONLY, TEXT_ONLY_INSTRUCTION

    if task in coder_pile_tasks():
        return coder_pile_tasks()[task].instruction
    if task in evaluation_tasks():
        return evaluation_tasks()[task].instruction
    return TEXT_ONLY_INSTRUCTION if task == TEXT_ONLY else None


def _fill(template: str, sample: Sample) -> str:
    values = {"code_language": sample.code_language, "src_code_language": sample.code_language,
              "language": sample.language}

    def replace(match: re.Match) -> str:
        value = values.get(match.group(1))
        if not value:
            raise InstructionError(
                f"task {sample.task!r}: its instruction {template!r} needs {{{match.group(1)}}}, which this row does "
                "not give; rows must carry their own filled `instruction` (data_gen writes it), or set `instruction:` "
                "on the data source")
        return value

    return PLACEHOLDER.sub(replace, template)


def variant_label(task: str, instruction: str) -> str:
    """What tells one filled instruction of ``task`` from another: the placeholder values when the
    registry template is known (``"Python, Go"`` for Code Translation), else a short hash."""
    template = coder_pile_tasks()[task].instruction if task in coder_pile_tasks() else None
    if template and PLACEHOLDER.search(template):
        pattern = "".join("(.+?)" if i % 2 else re.escape(part)
                          for i, part in enumerate(PLACEHOLDER.split(template)))
        match = re.fullmatch(pattern, instruction)
        if match:
            return ", ".join(match.groups())
    return hashlib.sha1(instruction.encode()).hexdigest()[:6]


@dataclass(frozen=True)
class InstructionPlan:
    """``instruction_set`` (see module docstring) rendered in ``instruction_format`` (``bge``, ``qwen``,
    a template with ``{instruction}``, or ``none``)."""

    instruction_set: str = "coder"
    instruction_format: str | None = "bge"

    def __post_init__(self) -> None:
        check_instruction_set(self.instruction_set)

    @property
    def enabled(self) -> bool:
        return self.instruction_set != "none" and format_instruction("x", self.instruction_format) != ""

    def instruction(self, sample: Sample) -> str | None:
        """The plain instruction for ``sample``'s query (placeholders filled), or ``None``."""
        if not self.enabled:
            return None
        if self.instruction_set == "codexembed":
            return CODEXEMBED_INSTRUCTION
        if self.instruction_set == "c2llm":
            task = evaluation_tasks().get(sample.task)
            if task is not None and task.c2llm_instruction:
                return task.c2llm_instruction
        text = sample.instruction or _registry_instruction(sample.task)
        return _fill(text, sample) if text else None

    def query_prompt(self, instruction: str | None) -> str | None:
        return format_instruction(instruction, self.instruction_format) if instruction else None

    def document_prompt(self, task: str) -> str | None:
        """C2LLM prefixes documents too; the other sets leave them as they are."""
        if not self.enabled or self.instruction_set != "c2llm":
            return None
        registered = evaluation_tasks().get(task)
        if registered is not None and registered.c2llm_document_instruction:
            return document_prompt(registered.c2llm_document_instruction)
        documents = {t.c2llm_document_instruction for t in evaluation_tasks().values() if t.c2llm_document_instruction}
        return document_prompt(documents.pop()) if len(documents) == 1 else None


def saved_prompt_names(trained: dict[str, set[str]]) -> dict[str, str]:
    """``{prompt name: instruction}`` for the tasks a model was trained on with instructions:
    ``"{task}-query"``, or ``"{task} ({variant})-query"`` when one task had several instructions."""
    names: dict[str, str] = {}
    for task, instructions in sorted(trained.items()):
        for instruction in sorted(instructions):
            label = task if len(instructions) == 1 else f"{task} ({variant_label(task, instruction)})"
            names[f"{label}-query"] = instruction
    return names


def match_prompts_to_training(model, model_config, used_instructions: bool,
                              trained: dict[str, set[str]] | None = None) -> None:
    """Set ``model.prompts`` to what it was trained with: instruction prompts only if the run used them
    (mteb and ``encode_query`` apply ``model.prompts`` by themselves, and an instruction the model never saw
    costs retrieval quality), the trained tasks' prompts being the very strings the loss saw."""
    from st_code.prompts import build_prompts

    if used_instructions:
        model.prompts = build_prompts(model_config.instruction_format, model_config.instruction_set,
                                      extra_instructions=saved_prompt_names(trained or {}))
    else:
        model.prompts = {}
    model.default_prompt_name = None


def check_no_placeholders(text: str, where: str) -> None:
    """A training text must never carry an unfilled ``{placeholder}`` from an instruction template."""
    match = PLACEHOLDER.search(text)
    if match:
        raise InstructionError(f"{where}: unfilled placeholder {match.group(0)} in {text[:120]!r}")


__all__ = ["InstructionPlan", "InstructionError", "saved_prompt_names", "match_prompts_to_training", "variant_label", "check_no_placeholders"]
