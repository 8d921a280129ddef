"""The task registry: one entry per task, every field in one place.

Two kinds of task live here, each loaded from a YAML file shipped with the package:

* :class:`Task` - the 47 CodeR-Pile training/synthesis tasks (CodeR paper Tables 8, 13-16), which
  ``data_gen`` reads to build prompts and the training stages read for their instructions.
* :class:`EvalTask` - evaluation tasks (MTEB-Code, CoIR, CodeRAG) keyed by the harness' own task
  name, whose instructions the model builder writes into a model's ``prompts``.

Adding a task means adding one YAML entry; nothing else in the code needs to change.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml

MajorType = Literal["Text2Code", "Code2Text", "Code2Code", "Hybrid"]
MAJOR_TYPES: tuple[str, ...] = ("Text2Code", "Code2Text", "Code2Code", "Hybrid")
INPUT_ROLES: tuple[str, ...] = ("positive", "query", "query_part")
#: How data_gen turns a piece of real code into a (query, positive) pair (``Task.flow``):
#:   single            one call; the code is the positive or the query, as ``input_role`` says
#:   split             no LLM: the code cut at 40-70% (Code Context Retrieval, ``llm_free``)
#:   chain             two calls, the second on the first's output -> (first, second)
#:   chain_to_code     two calls -> (second, the code): e.g. a description of bugs injected by the first
#:   request           Hybrid: a request about the code, then the answer -> (code + request, answer)
#:   request_then_fix  Hybrid: buggy code with its description, then the fix -> (that, fix)
#:   edit_instruction  Hybrid: an edited version of the code first, then the request and instruction
#:                     that lead there -> (code + instruction, edited code)
#:   edit_question     Hybrid: an edited version first, then a question about the two and its answer
#: A task whose generation instruction names ``{tgt_code_language}`` gets a second language.
GENERATION_FLOWS: tuple[str, ...] = ("single", "split", "chain", "chain_to_code", "request", "request_then_fix",
                                     "edit_instruction", "edit_question")

#: The 20 programming languages of CodeR-Pile (paper appendix D.2).
CODE_LANGUAGES: tuple[str, ...] = (
    "Java", "Python", "JavaScript", "PHP", "Ruby", "Go", "C#", "C++", "TypeScript", "Rust",
    "C", "Perl", "Shell", "SQL", "Visual Basic", "Powershell", "Batchfile", "Fortran", "Haskell", "Lua",
)
#: Natural languages CodeR-Pile generates in.
NATURAL_LANGUAGES: tuple[str, ...] = ("English", "Chinese")

_HERE = Path(__file__).parent
CODER_PILE_FILE = _HERE / "coder_pile.yaml"
EVALUATION_FILE = _HERE / "evaluation.yaml"


class RegistryError(ValueError):
    """A registry file or entry is malformed; the message names the file, entry and field."""


@dataclass(frozen=True)
class Task:
    """One CodeR-Pile task: its instruction and every field data synthesis needs."""

    name: str
    major_type: MajorType
    instruction: str
    generation_instruction: tuple[str, ...]
    output_content: tuple[str, ...]
    annotation_instruction: str
    query_type: str
    doc_type: str
    input_role: str
    llm_free: bool = False
    generation_flow: str | None = None  # one of GENERATION_FLOWS; None: derived, see ``flow``
    #: the programming languages whose code this task is generated from (Text to SQL: SQL only); empty: any
    code_languages: tuple[str, ...] = ()

    @property
    def is_two_step(self) -> bool:
        """Tasks whose generation is two chained LLM calls (Table 13 lists two instructions)."""
        return len(self.generation_instruction) == 2

    @property
    def flow(self) -> str:
        """How data_gen makes a pair for this task: ``generation_flow``, else ``split`` for LLM-free
        tasks, ``single`` for one instruction, ``request`` for two-step Hybrid tasks, ``chain`` otherwise."""
        if self.generation_flow:
            return self.generation_flow
        if self.llm_free:
            return "split"
        if not self.is_two_step:
            return "single"
        return "request" if self.major_type == "Hybrid" else "chain"

    @property
    def needs_target_language(self) -> bool:
        """Whether a pair needs a second programming language (Code Translation's ``{tgt_code_language}``)."""
        return any("{tgt_code_language}" in text for text in self.generation_instruction)

    def takes_code_in(self, code_language: str) -> bool:
        """Whether this task is generated from code in ``code_language`` (any, unless ``code_languages`` says)."""
        return not self.code_languages or code_language.lower() in {name.lower() for name in self.code_languages}

    def format_instruction(self, **placeholders: str) -> str:
        """The task instruction with ``{src_code_language}``-style placeholders filled in."""
        return _fill(self.instruction, placeholders)


@dataclass(frozen=True)
class EvalTask:
    """One evaluation task, named as its harness names it (mteb task name for MTEB-Code/CoIR)."""

    name: str
    major_type: MajorType
    instruction: str
    benchmarks: tuple[str, ...] = ()
    c2llm_instruction: str | None = None
    c2llm_document_instruction: str | None = None
    document_instruction: str | None = None


def _fill(template: str, placeholders: dict[str, str]) -> str:
    try:
        return template.format(**placeholders) if placeholders else template
    except KeyError as exc:
        raise KeyError(f"instruction {template!r} needs placeholder {exc.args[0]!r}") from None


def _as_tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)  # type: ignore[arg-type]


def _build(cls: type, entry: dict, source: str, index: int):
    if not isinstance(entry, dict):
        raise RegistryError(f"{source}: entry #{index} is not a mapping")
    known = {f.name for f in fields(cls)}
    unknown = set(entry) - known
    if unknown:
        raise RegistryError(f"{source}: entry {entry.get('name', index)!r} has unknown field(s) {sorted(unknown)}")
    required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
    missing = required - set(entry)
    if missing:
        raise RegistryError(f"{source}: entry {entry.get('name', index)!r} misses field(s) {sorted(missing)}")
    if entry["major_type"] not in MAJOR_TYPES:
        raise RegistryError(
            f"{source}: entry {entry['name']!r} has major_type {entry['major_type']!r}; use one of {MAJOR_TYPES}"
        )
    values = dict(entry)
    for key in ("generation_instruction", "output_content", "benchmarks", "code_languages"):
        if key in values:
            values[key] = _as_tuple(values[key])
    if cls is Task:
        if values["input_role"] not in INPUT_ROLES:
            raise RegistryError(f"{source}: entry {entry['name']!r} has input_role {values['input_role']!r}")
        if values.get("generation_flow") not in (None, *GENERATION_FLOWS):
            raise RegistryError(f"{source}: entry {entry['name']!r} has generation_flow {values['generation_flow']!r}; "
                                f"use one of {GENERATION_FLOWS}")
        if len(values["generation_instruction"]) != len(values["output_content"]):
            raise RegistryError(
                f"{source}: entry {entry['name']!r} has {len(values['generation_instruction'])} generation "
                f"instruction(s) but {len(values['output_content'])} output content(s)"
            )
    return cls(**values)


def _load(path: Path, cls: type) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"task registry file {path} does not exist")
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(entries, list):
        raise RegistryError(f"{path}: expected a YAML list of task entries")
    tasks: dict = {}
    for index, entry in enumerate(entries):
        task = _build(cls, entry, str(path), index)
        if task.name in tasks:
            raise RegistryError(f"{path}: task {task.name!r} is defined twice")
        tasks[task.name] = task
    return tasks


def load_registry(path: str | Path) -> dict[str, Task]:
    """Load a CodeR-Pile-shaped task file (e.g. brainstormed tasks) into ``{name: Task}``."""
    return _load(Path(path), Task)


@lru_cache(maxsize=1)
def coder_pile_tasks() -> dict[str, Task]:
    """The 47 CodeR-Pile tasks, ``{name: Task}`` in the paper's order."""
    return _load(CODER_PILE_FILE, Task)


@lru_cache(maxsize=1)
def evaluation_tasks() -> dict[str, EvalTask]:
    """Evaluation tasks (MTEB-Code, CoIR, CodeRAG), ``{harness name: EvalTask}``."""
    return _load(EVALUATION_FILE, EvalTask)


def get_task(name: str) -> Task:
    """A CodeR-Pile task by name, with a helpful error listing close names."""
    tasks = coder_pile_tasks()
    if name not in tasks:
        import difflib

        close = difflib.get_close_matches(name, tasks, n=3)
        if close:
            raise KeyError(f"unknown CodeR-Pile task {name!r}; did you mean {close}? (st_code.tasks.coder_pile_tasks())")
        raise KeyError(f"unknown CodeR-Pile task {name!r}; the {len(tasks)} tasks are: {', '.join(sorted(tasks))}")
    return tasks[name]


def benchmark_tasks(benchmark: str) -> list[EvalTask]:
    """Evaluation tasks of one benchmark, e.g. ``"MTEB(Code, v1)"``, ``"CoIR"`` or ``"CodeRAG"``."""
    tasks = [task for task in evaluation_tasks().values() if benchmark in task.benchmarks]
    if not tasks:
        known = sorted({b for task in evaluation_tasks().values() for b in task.benchmarks})
        raise KeyError(f"unknown benchmark {benchmark!r}; known: {known}")
    return tasks


MTEB_CODE_TASK_NAMES: tuple[str, ...] = (
    "AppsRetrieval", "CodeEditSearchRetrieval", "CodeFeedbackMT", "CodeFeedbackST", "CodeSearchNetCCRetrieval",
    "CodeSearchNetRetrieval", "CodeTransOceanContest", "CodeTransOceanDL", "CosQA", "COIRCodeSearchNetRetrieval",
    "StackOverflowQA", "SyntheticText2SQL",
)

__all__ = [
    "CODE_LANGUAGES", "NATURAL_LANGUAGES", "MAJOR_TYPES", "MTEB_CODE_TASK_NAMES", "GENERATION_FLOWS",
    "Task", "EvalTask", "RegistryError",
    "coder_pile_tasks", "evaluation_tasks", "get_task", "benchmark_tasks", "load_registry",
]
