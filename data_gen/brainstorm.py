"""Stage 1, brainstorm: ask a strong LLM (Table 10) for new tasks per major type, seeded with
registry tasks; validate and deduplicate against the registry; then CodeR's Instructing step: an LLM
drafts each new task's generation instruction, output content, annotation instruction and types.
The result is registry-shaped YAML for a human to review (CodeR's experts refined the drafts too)."""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from data_gen.templates import brainstorm_prompt, instruct_prompt
from data_gen.validate import parse_recipe, parse_task_list
from st_code.llm import Journal, LLMClient
from st_code.llm.ask import ask
from st_code.tasks import MAJOR_TYPES, coder_pile_tasks

#: CodeR appendix E's seed tasks per major type.
SEEDS = {
    "Text2Code": ["Web Query to Code Retrieval", "Code Contest Retrieval", "Text to SQL Retrieval"],
    "Code2Text": ["Code Summary Retrieval"],
    "Code2Code": ["Code Context Retrieval"],
    "Hybrid": ["Code Modification Retrieval"],
}


def _normalize(name: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def _is_duplicate(name: str, known: list[str]) -> bool:
    """Same name up to case and punctuation, or a near-identical spelling (ratio >= 0.95); closer
    relatives ("Log Message ..." vs "Error Message ...") are left to the human review."""
    target = _normalize(name)
    return any(difflib.SequenceMatcher(None, target, _normalize(k)).ratio() >= 0.95 for k in known)


async def brainstorm(client: LLMClient, journal: Journal, major_types: list[str] | None = None,
                     rounds: int = 1, count: int = 10) -> tuple[list[dict], dict[str, int]]:
    """New task proposals ``[{"name", "major_type", "instruction"}]`` and rejection counts."""
    registry = coder_pile_tasks()
    known = list(registry)
    proposals: list[dict] = []
    rejected: dict[str, int] = {}
    for major_type in major_types or list(MAJOR_TYPES):
        if major_type not in MAJOR_TYPES:
            raise ValueError(f"unknown major type {major_type!r}; use {MAJOR_TYPES}")
        seeds = [registry[name] for name in SEEDS[major_type]]
        for round_index in range(rounds):
            prompt = brainstorm_prompt(major_type, seeds, count)
            answer = await ask(client, journal, "brainstorm", (client.model, major_type, round_index), prompt,
                               parse_task_list, temperature=1.0, max_tokens=2048)
            if answer.status != "ok":
                rejected[answer.reason] = rejected.get(answer.reason, 0) + 1
                continue
            for item in answer.value:
                if _is_duplicate(item["task_name"], known):
                    rejected["duplicate"] = rejected.get("duplicate", 0) + 1
                    continue
                known.append(item["task_name"])
                proposals.append({"name": item["task_name"], "major_type": major_type,
                                  "instruction": item["task_instruction"]})
    return proposals, rejected


async def draft_recipes(client: LLMClient, journal: Journal, proposals: list[dict]) -> dict[str, int]:
    """CodeR's Instructing step: fill each proposal's generation fields with an LLM's draft (in place).
    A draft that fails validation leaves that proposal's fields as TODO; returns rejection counts."""
    rejected: dict[str, int] = {}
    for proposal in proposals:
        prompt = instruct_prompt(proposal["name"], proposal["major_type"], proposal["instruction"])
        answer = await ask(client, journal, "instruct", (client.model,), prompt, parse_recipe, temperature=0.2,
                           max_tokens=1024)
        if answer.status != "ok":
            rejected[answer.reason] = rejected.get(answer.reason, 0) + 1
            continue
        proposal["recipe"] = answer.value
    return rejected


def write_proposals(proposals: list[dict], path: Path, model: str | None = None) -> None:
    """Registry-shaped YAML for human review: check the drafted generation fields (replace any TODO),
    then pass the file to ``--task-file`` (or ``st_code.tasks.load_registry``) to generate data."""
    entries = []
    for p in proposals:
        recipe = p.get("recipe") or {
            "generation_instruction": "TODO: Given a piece of {code_language} code, generate ... in {language}.",
            "output_content": "TODO: the generated ... in {language}",
            "annotation_instruction": "TODO: judge whether ...",
            "query_type": "TODO", "doc_type": "TODO",
            "input_role": {"Text2Code": "positive", "Hybrid": "query_part"}.get(p["major_type"], "query"),
        }
        entries.append({"name": p["name"], "major_type": p["major_type"], "instruction": p["instruction"], **recipe})
    path.parent.mkdir(parents=True, exist_ok=True)
    drafted = f"generation fields drafted by {model}" if model else "generation fields drafted by an LLM"
    header = (f"# Brainstormed tasks (CodeR Table 10), {drafted} (CodeR's Instructing step).\n"
              "# Review every entry, as CodeR's experts did, and replace any TODO before use.\n")
    path.write_text(header + yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8")
