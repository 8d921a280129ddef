"""Programming-language names as training groups them, recovered from what a dataset says.

C2LLM batches by dataset and programming language, so a row's ``code_language`` decides its batch.
Public sets spell it many ways (``python``, ``py``, ``golang``, ``c++``) or only in a subset name
(CoIR's ``go-corpus``); :func:`canonical_code_language` maps those to one name. Where a set says
nothing (``sentence-transformers/codesearchnet``), :func:`detect_code_language` guesses from the code
itself: a last resort, asked for per source with ``code_language: detect``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from st_code.tasks import CODE_LANGUAGES

_ALIASES = {
    "py": "Python", "python3": "Python", "js": "JavaScript", "node": "JavaScript", "ts": "TypeScript",
    "golang": "Go", "cpp": "C++", "cxx": "C++", "c-sharp": "C#", "csharp": "C#", "cs": "C#", "rb": "Ruby",
    "rs": "Rust", "sh": "Shell", "bash": "Shell", "vb": "Visual Basic", "kt": "Kotlin", "kotlin": "Kotlin",
    "swift": "Swift", "scala": "Scala", "r": "R", "dart": "Dart", "objective-c": "Objective-C",
}
_CANONICAL = {name.lower(): name for name in CODE_LANGUAGES} | _ALIASES

#: the value of a source's ``code_language`` that asks for :func:`detect_code_language`
DETECT = "detect"


def canonical_code_language(name: str | None) -> str | None:
    """``"python"`` / ``"py"`` -> ``"Python"``; ``None`` when ``name`` is no programming language."""
    if not isinstance(name, str):
        return None
    return _CANONICAL.get(name.strip().lower())


# Each language's telltale lines; the language with the most distinct hits wins, ties give None.
_SIGNS: dict[str, tuple[str, ...]] = {
    "Python": (r"^\s*def \w+\(.*\)\s*(->.*)?:\s*$", r"^\s*(from [\w.]+ )?import \w", r"\bself\.\w", r"^\s*elif\b",
               r'^\s*("""|\'\'\')', r"\bNone\b"),
    "Go": (r"^\s*func (\(\w+ \*?\w+\) )?\w+\(", r"^\s*package \w+", r":= ", r"\berr != nil\b", r"\bfmt\.\w+"),
    "Java": (r"\b(public|private|protected) (static )?(final )?[\w<>\[\]]+ \w+\(", r"\bnew \w+(<.*>)?\(",
             r"\bSystem\.out\.", r"@Override", r"\bthrows \w+"),
    "JavaScript": (r"\bfunction\s*\w*\s*\(", r"\b(var|let|const) \w+ = ", r"=> ?\{", r"\bconsole\.log\(",
                   r"\brequire\(['\"]", r"===|!=="),
    "PHP": (r"<\?php", r"\$this->", r"\$\w+ = ", r"\bfunction \w+\(.*\$\w+", r"->\w+\(", r"\barray\("),
    "Ruby": (r"^\s*def \w+[?!]?(\(.*\))?\s*$", r"^\s*end\s*$", r"\bdo \|\w+", r"@\w+ = ", r"\.each\b", r"\bputs\b"),
}
_COMPILED = {name: [re.compile(p, re.MULTILINE) for p in patterns] for name, patterns in _SIGNS.items()}


def detect_code_language(code: str) -> str | None:
    """The language whose signs the code shows most (Python, Go, Java, JavaScript, PHP, Ruby: the
    CodeSearchNet six), or ``None`` when no sign or a tie."""
    head = code[:2000]  # the opening lines carry the signs; a long file costs no more
    scores = {name: sum(1 for pattern in patterns if pattern.search(head)) for name, patterns in _COMPILED.items()}
    best = max(scores.values())
    winners = [name for name, score in scores.items() if score == best]
    return winners[0] if best and len(winners) == 1 else None


def language_counts(code_languages: Iterable[str | None]) -> str:
    """``"Go 120, Python 80, unknown 3"``: the groups a source's rows fall into, largest first."""
    counts = Counter(name or "unknown" for name in code_languages)
    return ", ".join(f"{name} {n}" for name, n in counts.most_common())


__all__ = ["canonical_code_language", "detect_code_language", "language_counts", "DETECT"]
