"""Instruction formats and the ``prompts`` dictionary a model carries.

sentence-transformers prepends ``model.prompts[name]`` to the text when ``prompt_name=name`` is
given, and mteb picks ``"{TaskName}-query"`` (then ``"{TaskName}"``, ..., then ``"query"``) from
``model.prompts`` by itself. So writing every task's instruction into ``prompts`` is all it takes for
``encode_query(..., prompt_name="CosQA-query")`` and ``mteb.evaluate`` to apply the right one.
"""

from __future__ import annotations

from st_code.errors import UsageError
from st_code.tasks import evaluation_tasks

#: Named instruction formats. ``{instruction}`` is replaced by the task instruction.
INSTRUCTION_FORMATS: dict[str, str] = {
    # BGE-Code / CodeR (FlagEmbedding's ICL-free query template).
    "bge": "<instruct>{instruction}\n<query>",
    # E5-Mistral / Qwen3-Embedding / SFR style.
    "qwen": "Instruct: {instruction}\nQuery: ",
}

#: Instruction used for ``prompts["query"]``: mteb's last fallback and ``encode_query``'s default.
DEFAULT_QUERY_INSTRUCTION = "Given a question or a piece of code, retrieve relevant code or text that answers it."

#: Whose instructions a model is trained with and carries (``instruction_set``):
#:   coder       CodeR's wording (Table 8 for CodeR-Pile tasks, Table 18 for evaluation tasks)
#:   c2llm       C2LLM Table 1 for the MTEB-Code tasks (queries, and "Retrieved Answer:" for documents)
#:   codexembed  CodeXEmbed's one generic instruction for every query (appendix A.3)
#:   none        no instructions at all
INSTRUCTION_SETS = ("coder", "c2llm", "codexembed", "none")

#: CodeXEmbed appendix A.3: "Instruct: Given Code or Text, retrieve relevant content. Query:".
CODEXEMBED_INSTRUCTION = "Given Code or Text, retrieve relevant content."

#: Benchmarks whose task names are mteb task names, so their prompts can live in ``model.prompts``.
PROMPT_BENCHMARKS = {"MTEB(Code, v1)", "CoIR"}


def resolve_template(instruction_format: str | None) -> str | None:
    """``"bge"``/``"qwen"`` -> their template; a string containing ``{instruction}`` -> itself;
    ``None``/``"none"`` -> ``None`` (no prompts at all)."""
    if instruction_format is None or instruction_format == "none":
        return None
    if instruction_format in INSTRUCTION_FORMATS:
        return INSTRUCTION_FORMATS[instruction_format]
    if "{instruction}" in instruction_format:
        return instruction_format
    raise UsageError(
        f"unknown instruction_format {instruction_format!r}: use one of {sorted(INSTRUCTION_FORMATS)}, 'none', "
        "or a template string containing '{instruction}', e.g. 'Represent this query: {instruction}\\n'"
    )


def format_instruction(instruction: str, instruction_format: str | None = "bge") -> str:
    """Render one instruction in a format; empty string when the format is ``"none"``."""
    template = resolve_template(instruction_format)
    if template is None:
        return ""
    return template.replace("{instruction}", instruction)


def document_prompt(instruction: str | None) -> str | None:
    """A document-side instruction (C2LLM's "Retrieved Answer:") is prepended as it is, followed by
    one space: it is not a query instruction, so no query template wraps it."""
    return f"{instruction} " if instruction else None


def check_instruction_set(instruction_set: str) -> None:
    if instruction_set not in INSTRUCTION_SETS:
        raise UsageError(f"unknown instruction_set {instruction_set!r}; use one of {INSTRUCTION_SETS}")


def build_prompts(
    instruction_format: str | None = "bge",
    instruction_set: str = "coder",
    default_instruction: str | None = DEFAULT_QUERY_INSTRUCTION,
    extra_instructions: dict[str, str] | None = None,
) -> dict[str, str]:
    """The ``prompts`` dict for a model: ``"{task}-query"`` for every registered MTEB-Code/CoIR task,
    ``"{task}-document"`` where the set has a document instruction, and a default ``"query"``.

    Args:
        instruction_format: ``"bge"``, ``"qwen"``, ``"none"`` or a template with ``{instruction}``.
        instruction_set: one of :data:`INSTRUCTION_SETS` (``"coder"``, the default, is CodeR's wording).
        default_instruction: instruction for ``prompts["query"]``; ``None`` leaves it out (with
            ``"codexembed"`` the generic instruction is the default).
        extra_instructions: more ``{prompt name: instruction}`` to add (e.g. your own tasks).
    """
    check_instruction_set(instruction_set)
    if resolve_template(instruction_format) is None or instruction_set == "none":
        return {}
    prompts: dict[str, str] = {}
    documents: set[str] = set()
    for task in evaluation_tasks().values():
        if not set(task.benchmarks) & PROMPT_BENCHMARKS:
            continue  # mteb rejects prompt names that are not mteb task names
        instruction, document = task.instruction, task.document_instruction
        if instruction_set == "c2llm" and task.c2llm_instruction:
            instruction, document = task.c2llm_instruction, task.c2llm_document_instruction
        elif instruction_set == "codexembed":
            instruction, document = CODEXEMBED_INSTRUCTION, None
        prompts[f"{task.name}-query"] = format_instruction(instruction, instruction_format)
        if document:
            prompts[f"{task.name}-document"] = document_prompt(document)
            documents.add(document)
    if instruction_set == "c2llm" and len(documents) == 1:  # C2LLM prefixes every document the same way
        prompts["document"] = document_prompt(documents.pop())
    for name, instruction in (extra_instructions or {}).items():
        prompts[name] = format_instruction(instruction, instruction_format)
    if instruction_set == "codexembed":
        default_instruction = CODEXEMBED_INSTRUCTION
    if default_instruction:
        prompts["query"] = format_instruction(default_instruction, instruction_format)
    return prompts
