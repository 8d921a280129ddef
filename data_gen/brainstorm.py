"""Stage 1, brainstorm: ask a strong LLM (Table 10) for new tasks per major type, seeded with
registry tasks; validate, deduplicate against the registry, and write reviewable registry entries."""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from data_gen.journal import Journal, work_key
from data_gen.llm import LLMClient, LLMError
from data_gen.prompts import brainstorm_prompt
from data_gen.validate import Rejected, parse_task_list
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
            key = work_key("brainstorm", major_type, round_index, prompt)
            record = journal.get(key)
            if record is None:
                try:
                    text = await client.complete(prompt, temperature=1.0, max_tokens=2048)
                except LLMError as exc:
                    rejected[f"llm_{exc.reason}"] = rejected.get(f"llm_{exc.reason}", 0) + 1
                    continue
                try:
                    record = {"key": key, "stage": "brainstorm", "status": "ok", "tasks": parse_task_list(text)}
                except Rejected as exc:
                    record = {"key": key, "stage": "brainstorm", "status": "rejected", "reason": exc.reason}
                journal.write(record)
            if record["status"] != "ok":
                rejected[record["reason"]] = rejected.get(record["reason"], 0) + 1
                continue
            for item in record["tasks"]:
                if _is_duplicate(item["task_name"], known):
                    rejected["duplicate"] = rejected.get("duplicate", 0) + 1
                    continue
                known.append(item["task_name"])
                proposals.append({"name": item["task_name"], "major_type": major_type,
                                  "instruction": item["task_instruction"]})
    return proposals, rejected


def write_proposals(proposals: list[dict], path: Path) -> None:
    """Registry-shaped YAML for human review: fill in the generation fields, then pass the file to
    ``st_code.tasks.load_registry`` (or ``--task-file``) to generate data for the new tasks."""
    entries = []
    for p in proposals:
        entries.append({
            "name": p["name"], "major_type": p["major_type"], "instruction": p["instruction"],
            "generation_instruction": "TODO: Given a piece of {code_language} code, generate ... in {language}.",
            "output_content": "TODO: the generated ... in {language}",
            "annotation_instruction": "TODO: judge whether ...",
            "query_type": "TODO", "doc_type": "TODO",
            "input_role": {"Text2Code": "positive", "Hybrid": "query_part"}.get(p["major_type"], "query"),
        })
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Brainstormed tasks (CodeR Table 10). Review each entry and replace every TODO before use.\n"
    path.write_text(header + yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8")
