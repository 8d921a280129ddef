"""The ranking stage of hybrid code search: dense and lexical scores fused, then reordered by what a
code searcher knows about units.

Fusion is either a blend of the two scores, each scaled to [0, 1] over the query's candidates
(``blend``, the default: it keeps how far apart the candidates are), or reciprocal-rank fusion
(``rrf``, ranks only). On the fused score:

- **symbols**: a query that is one identifier (``Router``, ``HTTPException``, ``Mux.Route``) lifts the
  units it names: the exact name most, the same name in another case, the type whose methods it
  names, and the file named after it, less;
- **paths**: a question whose words name a file or its folder (``middleware`` -> ``middleware.go``,
  "connection pooling" -> ``connector.py``, plurals and prefixes of four letters or more) lifts that
  file's units in proportion to the share of its words matched: repositories name files after what
  they do, and a small dense model misses many of those names;
- **auxiliary code** (tests, examples, docs, benchmarks, fixtures, vendored code) and **tiny units** (a
  few lines: imports, aliases, re-exports) are down-weighted, not dropped: they can still be the answer;
- **files**: a file several candidates come from gains a little (evidence from several units), and
  each further unit of a file already ranked loses some, so the top 10 show more files.

Weights are few and round; docs/benchmarks.md measures each against the suite it was tuned on and
against repositories held out from tuning.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from st_code.search.lexical import STOPWORDS, code_tokens
from st_code.search.sibling_packs import unit_names

FUSIONS = ("blend", "rrf")
_AUXILIARY = re.compile(
    r"(^|/)(tests?|__tests__|testing|testdata|spec|specs|fixtures?|examples?|_examples|samples?|docs?|"
    r"benchmarks?|bench|vendor|third_party|node_modules)(/|$)"
    r"|(_test\.go|_test\.py|(^|/)test_[^/]*\.py|\.(test|spec)\.[cm]?[jt]sx?|Tests?\.(java|kt|cs)|_spec\.rb|"
    r"(^|/)conftest\.py)$")
_IDENTIFIER_QUERY = re.compile(r"^[A-Za-z_$][\w$]*([.:]{1,2}[A-Za-z_$][\w$]*)*$")
_ASKS_FOR_TESTS = re.compile(r"\b(tests?|testing|spec|specs|examples?|benchmarks?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class RankingWeights:
    """The ranking stage's knobs (defaults: docs/benchmarks.md, code search on a public suite)."""

    fusion: str = "blend"
    dense_weight: float = 0.7  # blend: dense share; lexical gets the rest
    rrf_k: int = 60
    auxiliary: float = 0.5  # factor on tests, examples, docs... unless the query asks for them
    tiny_lines: int = 6  # code outside functions and classes (imports, aliases, re-exports) shorter than this
    tiny_unit_lines: int = 4  # any unit shorter than this
    tiny: float = 0.8  # the factor on both
    symbol: float = 1.0  # added to a unit the one-identifier query names exactly
    file_repeat: float = 0.5  # factor per unit of the same file already ranked
    file_evidence: float = 0.1  # x log(candidates from the same file)
    window: int = 30  # candidates the file stage reorders
    path_words: float = 0.5  # x the best score x share of a question's words its file or folder name carries
    file_outline: float = 0.2  # share of a candidate's cosine taken from its file's outline (path + names)


def is_auxiliary(path: str) -> bool:
    """Tests, examples, docs, benchmarks, fixtures, vendored code."""
    return bool(_AUXILIARY.search(path.replace("\\", "/")))


def symbol_query(query: str) -> str | None:
    """The identifier a query consists of, if it is one (``Router``, ``Mux.Route``, ``fmt::format``)."""
    query = query.strip().rstrip("()")
    return query if _IDENTIFIER_QUERY.match(query) else None


def fuse(dense: np.ndarray, lexical: np.ndarray, weights: RankingWeights) -> np.ndarray:
    """One score per candidate from its dense and lexical scores (a non-finite score counts as absent; in
    ``rrf`` a lexical score of 0 too)."""
    if weights.fusion == "rrf":
        fused = np.zeros(len(dense))
        for scores in (dense, lexical):
            present = np.isfinite(scores) & (scores > (-np.inf if scores is dense else 0))
            order = np.argsort(-np.where(present, scores, -np.inf), kind="stable")
            ranks = np.empty(len(order), dtype=np.int64)
            ranks[order] = np.arange(len(order))
            fused += np.where(present, 1.0 / (weights.rrf_k + ranks + 1), 0.0)
        return fused
    return weights.dense_weight * _unit_scale(dense) + (1 - weights.dense_weight) * _unit_scale(lexical)


def _unit_scale(scores: np.ndarray) -> np.ndarray:
    finite = np.isfinite(scores)
    if not finite.any():
        return np.zeros(len(scores))
    low, high = scores[finite].min(), scores[finite].max()
    scaled = (scores - low) / (high - low) if high > low else np.where(scores > 0, 1.0, 0.0)
    return np.where(finite, scaled, 0.0)


def rank(query: str, units: list[dict], dense: np.ndarray, lexical: np.ndarray,
         weights: RankingWeights = RankingWeights(), file_dense: np.ndarray | None = None) -> list[tuple[int, float]]:
    """(candidate position, score) best first, for candidates ``units`` (each with path, symbol and
    lines) and their dense and lexical scores; ``file_dense``: the cosine of each candidate's file outline
    (:mod:`st_code.search.file_outlines`), blended into ``dense`` when given."""
    dense = np.asarray(dense, dtype=np.float64)
    if file_dense is not None and weights.file_outline:
        dense = (1 - weights.file_outline) * dense + weights.file_outline * np.asarray(file_dense, dtype=np.float64)
    scores = fuse(dense, np.asarray(lexical, dtype=np.float64), weights)
    if scores.size and scores.max() <= 0:
        scores = scores + 1e-9
    wants_auxiliary = bool(_ASKS_FOR_TESTS.search(query))
    name = symbol_query(query)
    named = np.array([_names(unit, name) if name else 0.0 for unit in units])
    if not name and weights.path_words and scores.size:
        words = query_words(query)
        matched = np.array([path_word_share(words, unit["path"]) for unit in units])
        scores = scores + weights.path_words * float(scores.max()) * matched
    for i, unit in enumerate(units):
        if not wants_auxiliary and is_auxiliary(unit["path"]):
            scores[i] *= weights.auxiliary
        if _is_tiny(unit, weights):
            scores[i] *= weights.tiny
    scores += weights.symbol * named
    order = [int(i) for i in np.argsort(-scores, kind="stable")]
    head, tail = order[:weights.window], order[weights.window:]
    per_file: dict[str, int] = {}
    for i in head:
        per_file[units[i]["path"]] = per_file.get(units[i]["path"], 0) + 1
    seen: dict[str, int] = {}
    final = {}
    top = max(float(scores[head[0]]), 1e-9) if head else 1.0
    for i in head:  # scores relative to the best: the same scale for every query
        path = units[i]["path"]
        repeat = seen.get(path, 0)
        seen[path] = repeat + 1
        final[i] = (float(scores[i]) / top * weights.file_repeat ** repeat
                    + weights.file_evidence * math.log(per_file[path]) + weights.symbol * named[i])
    head = sorted(head, key=lambda i: -final[i])
    below = float(scores.max()) + 1.0 if scores.size else 0.0  # the rest after the head, still in order
    return [(i, float(final[i])) for i in head] + [(i, float(scores[i]) - below) for i in tail]


def query_words(query: str) -> set[str]:
    """A question's content words (three letters or more, no English function words), singular."""
    return {_singular(word) for word in code_tokens(query) if len(word) > 2 and word not in STOPWORDS}


def path_word_share(words: set[str], path: str) -> float:
    """The share of ``words`` that the file's name or its folder's name carries: a word matches a name part
    equal to it or, both at least four letters, one starting with the other (``connect`` / ``connector``)."""
    if not words:
        return 0.0
    folders = path.replace("\\", "/").split("/")
    parts = {_singular(p) for p in code_tokens(folders[-1].split(".")[0])}
    if len(folders) > 1:
        parts |= {_singular(p) for p in code_tokens(folders[-2])}
    hits = sum(1 for word in words if any(
        word == part or (min(len(word), len(part)) >= 4 and (word.startswith(part) or part.startswith(word)))
        for part in parts))
    return hits / len(words)


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def head_then_tail(head: list[tuple[dict, float, float | None]], tail: list[tuple[dict, float, float | None]]
                   ) -> list[tuple[dict, float, float | None]]:
    """A reranked head, then the rest in their order with their scores shifted below the head's lowest."""
    if not tail:
        return head
    shift = max(score for _, score, _ in tail) - (head[-1][1] - 1.0)
    return head + [(unit, score - shift, cosine) for unit, score, cosine in tail]


def _is_tiny(unit: dict, weights: RankingWeights) -> bool:
    lines = unit["end_line"] - unit["start_line"] + 1
    return lines < weights.tiny_unit_lines or (lines < weights.tiny_lines and unit.get("kind") in ("module", "window"))


_MODIFIERS = r"(?:(?:[A-Z][A-Z0-9_]{2,}|export|default|declare|pub(?:\([^)]*\))?|public|private|protected|internal|static|abstract|final|async|unsafe|extern|inline|constexpr|template\s*<[^>\n]*>)\s+)*"
_DECLARES = (r"^[ \t]*" + _MODIFIERS + r"(?:class|struct|union|interface|type|typedef|trait|enum|fn|func|def|"
             r"function|const|let|var|val|module|namespace|object|record|macro_rules!|#define)\s+(?:[\w:<>,*& ]*?\s)?")
_REEXPORTS = r"^[ \t]*(?:pub(?:\([^)]*\))?\s+use\s|export\s*\{|export\s+\*|from\s+\S+\s+import\s|using\s)[^\n]*?\b"


def _names(unit: dict, name: str) -> float:
    """How squarely a unit is what the identifier ``name`` names: 1 when its symbol (or a packed member's)
    is the name, 0.6 when a line of it declares the name (a type alias or a Ruby module inside a window),
    0.3 for a re-export or the same name in another case, 0.2 for the methods of the type it names; +0.3
    for the file named so (+0.2 for ``Name.Part.cs``).
    A constructor (``Pool.Pool``: Java, C#, C++) names its type less squarely than the type: 0.6."""
    leaf = re.split(r"[.:]+", name)[-1]
    text = unit.get("text") or ""
    score = max((_symbol_names(symbol, name, leaf) for symbol in unit_names(unit) or [""]), default=0.0)
    if score < 0.6 and leaf in text and re.search(_DECLARES + re.escape(leaf) + r"\b", text, re.MULTILINE):
        score = 0.6
    elif score < 0.3 and leaf in text and re.search(_REEXPORTS + re.escape(leaf) + r"\b", text, re.MULTILINE):
        score = 0.3
    file_name = unit["path"].replace("\\", "/").rsplit("/", 1)[-1].lower()
    if file_name.rsplit(".", 1)[0] == leaf.lower():
        score += 0.3
    elif file_name.split(".")[0] == leaf.lower():  # Foo.Json.cs, foo.d.ts: a part of what Foo names
        score += 0.2
    return score


def _symbol_names(symbol: str, name: str, leaf: str) -> float:
    parts = symbol.split(".")
    if symbol == name or parts[-1] == leaf:
        return 0.6 if len(parts) > 1 and parts[-2] == parts[-1] and symbol != name else 1.0
    if parts[-1].lower() == leaf.lower():
        return 0.3
    return 0.2 if len(parts) > 1 and parts[0] == leaf else 0.0


__all__ = ["RankingWeights", "FUSIONS", "rank", "fuse", "is_auxiliary", "symbol_query", "query_words",
           "path_word_share", "head_then_tail"]
