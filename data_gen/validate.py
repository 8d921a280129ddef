"""Checks on every LLM output: a rejected output is counted with its reason, never silently kept."""

from __future__ import annotations

import json
import re

from st_code.llm.answers import Rejected, clean
from st_code.llm.difficulty import parse_difficulty  # noqa: F401 - data_gen's parsers are all importable here

# Table 11's rule: the output must stand alone, without pointing back at the input.
_REFERENCES_INPUT = re.compile(
    r"\b(the|this|that) (given|provided|above|following|input) (code|snippet|function|program|script)\b"
    r"|\bthe (given|provided) \w+|\bthis (code|snippet|function)\b|给定的|提供的|这段代码|该代码|上述代码",
    re.IGNORECASE,
)


def check_generation(text: str | None, is_code: bool, min_chars: int = 8) -> str:
    """A cleaned generation, or :class:`Rejected` (``empty``, ``too_short``, ``refers_to_input``)."""
    cleaned = clean(text)
    if not cleaned:
        raise Rejected("empty")
    if len(cleaned) < min_chars:
        raise Rejected("too_short", repr(cleaned))
    if not is_code and _REFERENCES_INPUT.search(cleaned):
        raise Rejected("refers_to_input", _REFERENCES_INPUT.search(cleaned).group(0))
    return cleaned


def parse_label(text: str | None) -> int:
    """Table 12 answer: exactly one of 0, 1, 2 (after cleaning), else :class:`Rejected` ``bad_label``."""
    cleaned = clean(text).rstrip(".")
    if cleaned not in ("0", "1", "2"):
        raise Rejected("bad_label", repr(cleaned[:40]))
    return int(cleaned)


#: The registry fields the Instructing step drafts, and where each must say what.
RECIPE_FIELDS = ("generation_instruction", "output_content", "annotation_instruction", "query_type", "doc_type",
                 "input_role")


def _embedded_json(text: str | None, opening: str, closing: str, kind: str):
    """The JSON value between the first ``opening`` and the last ``closing`` of an answer (models wrap
    it in prose or fences), else :class:`Rejected` ``not_a_json_<kind>`` / ``bad_json``."""
    cleaned = clean(text)
    start, end = cleaned.find(opening), cleaned.rfind(closing)
    if start < 0 or end <= start:
        raise Rejected(f"not_a_json_{kind}")
    try:
        return json.loads(cleaned[start : end + 1])
    except json.JSONDecodeError as exc:
        raise Rejected("bad_json", exc.msg) from None


def parse_recipe(text: str | None) -> dict[str, str]:
    """Instructing answer: a JSON object with :data:`RECIPE_FIELDS`, else :class:`Rejected`."""
    recipe = _embedded_json(text, "{", "}", "object")
    if not isinstance(recipe, dict):
        raise Rejected("not_a_json_object")
    missing = [k for k in RECIPE_FIELDS if not isinstance(recipe.get(k), str) or not recipe[k].strip()]
    if missing:
        raise Rejected("missing_fields", ", ".join(missing))
    if recipe["input_role"] not in ("positive", "query", "query_part"):
        raise Rejected("bad_input_role", recipe["input_role"])
    if "{code_language}" not in recipe["generation_instruction"]:
        raise Rejected("no_code_language_placeholder")
    return {k: recipe[k].strip() for k in RECIPE_FIELDS}


def parse_task_list(text: str | None) -> list[dict[str, str]]:
    """Table 10 answer: a JSON list of ``{"task_name", "task_instruction"}``, else :class:`Rejected`."""
    items = _embedded_json(text, "[", "]", "list")
    tasks = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("task_name"), str) and isinstance(item.get("task_instruction"), str):
            name, instruction = item["task_name"].strip(), item["task_instruction"].strip()
            if name and instruction:
                tasks.append({"task_name": name, "task_instruction": instruction})
    if not tasks:
        raise Rejected("no_valid_tasks")
    return tasks
