"""CodeR Table 17: how hard a (query, document) pair is, as an LLM judges it. One prompt and one
parser, used by data_gen's ``difficulty`` stage and by the curriculum's ``llm_judge`` filter."""

from __future__ import annotations

import re

from st_code.llm.answers import Rejected, clean

#: CodeR Table 17: the GPT filtering prompt.
JUDGE_PROMPT = """You are provided with a task, a query, and a document. Based on the task, determine whether the document can respond to the query.
Your response should be one of the following, along with an explanation:
- "Yes, simple" - If the document contains sufficient information to fully and directly respond to the query in a straightforward manner.
- "Yes, medium" - If the document contains sufficient information to fully and directly respond to the query, but the explanation or reasoning requires moderate effort.
- "Yes, hard" - If the document contains sufficient information to fully and directly respond to the query, but the explanation or reasoning requires significant effort or complexity.
- "No" - If the document does not contain any relevant information to respond to the query.
Task:
{instruction}
Query:
{query}
Document:
{document}
Your output:"""

_LABEL = re.compile(r"^\W*(yes\W+(simple|medium|hard)|no)\b", re.IGNORECASE)


def judge_prompt(instruction: str, query: str, document: str) -> str:
    return JUDGE_PROMPT.format(instruction=instruction, query=query, document=document)


def parse_judgement(text: str | None) -> str | None:
    """'Yes, medium ...' -> 'medium'; 'No ...' -> 'no'; anything else -> None."""
    text = re.sub(r"<think>.*?</think>", "", text or "", flags=re.DOTALL).strip().strip('"')
    match = _LABEL.match(text)
    if not match:
        return None
    return (match.group(2) or "no").lower()


def parse_difficulty(text: str | None) -> str:
    """Table 17 answer -> ``simple``/``medium``/``hard``/``no``, else :class:`Rejected` ``bad_difficulty``."""
    label = parse_judgement(text or "")
    if label is None:
        raise Rejected("bad_difficulty", repr(clean(text)[:40]))
    return label


__all__ = ["JUDGE_PROMPT", "judge_prompt", "parse_judgement", "parse_difficulty"]
