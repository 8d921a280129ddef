"""A repository -> retrieval pairs with no LLM: its documented code, split by file.

What a team's own code teaches an embedder without anyone writing a query: every documented
function, method, class or module (Python docstrings, JSDoc, Javadoc, KDoc and Scaladoc, ``///`` and
``/** */``, Go, Rust, Ruby and shell doc comments, Elixir's ``@doc``, the comment above a C function; found by
:mod:`st_code.data.code_units`) gives

* ``Code Explanation to Implementation Retrieval`` (Text2Code): the doc's summary -> the code without it
* ``Code Summary Retrieval`` (Code2Text): the code without its doc -> the summary
* ``Code Context Retrieval`` (Code2Code, CodeR's LLM-free task): a unit's first 40-70% -> the rest, for
  documented and undocumented units alike

Docs are cleaned per language (comment marks, Doxygen/Javadoc/reST tags and parameter lists dropped,
first paragraph kept); licence headers, commented-out code and one-word comments are not docs.
Everything is deduplicated by content over the whole repository (so a copy of a held-out function never
sits on the training side), and the split is **by file**, per language: a file's units are all training
or all held-out, and every language with two files or more has held-out files. Deterministic for a seed.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import random
import re
import textwrap
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from st_code.data.code_units import CodeUnit, split_units
from st_code.data.python_functions import content_hash
from st_code.data.records import RetrievalSet, Sample
from st_code.data.repository import WalkReport, walk_repository
from st_code.errors import MissingPathError, UsageError

TEXT2CODE = "Code Explanation to Implementation Retrieval"
CODE2TEXT = "Code Summary Retrieval"
CODE_CONTEXT = "Code Context Retrieval"
#: Held-out set suffix per task: ``{prefix}-{language}-{suffix}``.
SET_SUFFIX = {TEXT2CODE: "doc2code", CODE2TEXT: "code2doc", CODE_CONTEXT: "code-context"}
#: The kinds of unit that make a pair; module-level windows are glue, not units with a purpose.
PAIRED_KINDS = frozenset({"function", "method", "class"})

_TAG_LINE = re.compile(r"^\s*([@\\](param|return|returns|throws|exception|tparam|see|since|author|version|"
                       r"deprecated|note|example|code|retval|pre|post|warning|details|ingroup|file|type|"
                       r"typedef|property|template|private|public|protected|override|inheritdoc|internal)\b"
                       r"|:(param|type|return|returns|rtype|raises)\b|(Args|Arguments|Parameters|Returns|"
                       r"Raises|Yields|Examples?|Notes?|See Also|Attributes)\s*:?\s*$|>>>|#\s*(Examples|Panics|"
                       r"Errors|Safety|Arguments)\b)", re.IGNORECASE)
_BRIEF = re.compile(r"^\s*[@\\](brief|short|summary)\s+", re.IGNORECASE)
_NOT_DOC = re.compile(r"copyright|licen[cs]e|spdx|all rights reserved|NOLINT|clang-format|eslint-|pylint:|"
                      r"noqa|@ts-|#pragma|prettier-ignore|istanbul ignore|type: ignore|-\*-", re.IGNORECASE)
_CODE_LIKE = re.compile(r"[;{}]\s*$|^\s*(if|for|while|return|#include|#define|import|from)\b|\w+\(.*\)\s*;")


@dataclass(frozen=True)
class RepoPair:
    """One pair: its task, the programming language and the file it came from."""

    task: str
    query: str
    positive: str
    language: str
    path: str


@dataclass
class RepositoryPairs:
    """Training pairs and held-out retrieval sets of one repository, and what was found in it."""

    train: list[RepoPair] = field(default_factory=list)
    heldout_pairs: list[RepoPair] = field(default_factory=list)
    train_files: list[str] = field(default_factory=list)
    heldout_files: list[str] = field(default_factory=list)
    walk: WalkReport = field(default_factory=WalkReport)
    units: Counter = field(default_factory=Counter)  # per language
    documented: Counter = field(default_factory=Counter)  # per language
    #: training-side functions, methods and classes with no usable doc (what ``--llm`` writes queries for)
    undocumented_units: list[CodeUnit] = field(default_factory=list)
    #: held-out functions, methods and classes with no usable doc, per language: the other code a
    #: doc -> code query is searched among (the held-out files as a user would search them)
    heldout_distractors: dict[str, list[str]] = field(default_factory=dict)
    set_prefix: str = "repo"

    def samples(self) -> list[Sample]:
        """The training pairs as curriculum rows (grouped per task and language by the trainer)."""
        return [Sample(p.query, p.positive, [], p.task, "English", p.language) for p in self.train]

    def heldout_sets(self, min_queries: int = 5, max_queries: int | None = 500,
                     seed: int = 0, max_distractors: int = 2000) -> dict[str, RetrievalSet]:
        """``{prefix}-{language}-{doc2code|code2doc|code-context}`` sets of the held-out files; a set
        with fewer than ``min_queries`` is left out; over ``max_queries`` a seeded sample is kept.

        A doc -> code set searches among all the held-out code of its language, the undocumented units
        too (up to ``max_distractors``, a seeded sample): with its documented units alone, a small
        set is a lookup among a handful of functions and scores near 100 whatever the model."""
        from st_code.tasks import get_task

        grouped: dict[tuple[str, str], list[RepoPair]] = {}
        for pair in self.heldout_pairs:
            grouped.setdefault((pair.language, pair.task), []).append(pair)
        sets = {}
        for (language, task), pairs in sorted(grouped.items()):
            if len(pairs) < min_queries:
                continue
            if max_queries is not None and len(pairs) > max_queries:
                pairs = random.Random(f"{seed}:{language}:{task}").sample(pairs, max_queries)
            name = f"{self.set_prefix}-{language.lower().replace('+', 'p').replace('#', 'sharp')}-{SET_SUFFIX[task]}"
            corpus = {f"d{i}": p.positive for i, p in enumerate(pairs)}
            if task == TEXT2CODE:
                others = self.heldout_distractors.get(language, [])
                if len(others) > max_distractors:
                    others = random.Random(f"{seed}:{language}:distractors").sample(others, max_distractors)
                corpus.update((f"x{i}", code) for i, code in enumerate(others))
            sets[name] = RetrievalSet(name, get_task(task).instruction,
                                      {f"q{i}": p.query for i, p in enumerate(pairs)}, corpus,
                                      {f"q{i}": {f"d{i}"} for i in range(len(pairs))}, task)
        return sets

    def counts(self) -> dict[str, dict[str, int]]:
        """Per language: units, documented units, training and held-out pairs per task."""
        table: dict[str, dict[str, int]] = {}
        for language in sorted(set(self.units) | {p.language for p in self.train}):
            row = {"units": self.units[language], "documented": self.documented[language]}
            for side, pairs in (("train", self.train), ("heldout", self.heldout_pairs)):
                for task, suffix in SET_SUFFIX.items():
                    row[f"{side}_{suffix}"] = sum(1 for p in pairs if p.language == language and p.task == task)
            table[language] = row
        return table

    def summary(self) -> str:
        parts = [f"{lang}: {row['documented']}/{row['units']} units documented, "
                 f"{sum(v for k, v in row.items() if k.startswith('train_'))} training / "
                 f"{sum(v for k, v in row.items() if k.startswith('heldout_'))} held-out pairs"
                 for lang, row in self.counts().items()]
        return (f"{len(self.train_files)} training file(s), {len(self.heldout_files)} held-out file(s); "
                + "; ".join(parts))


def doc_summary(doc: str, min_words: int = 3, max_words: int = 80) -> str | None:
    """The part of a doc comment or docstring a person would search with: its first paragraph, with
    Doxygen/Javadoc/reST tags, parameter lists and examples dropped; ``None`` when it is no doc at all
    (a licence header, a lint pragma, commented-out code, fewer than ``min_words`` words)."""
    if not doc or _NOT_DOC.search(doc):
        return None
    kept: list[str] = []
    for line in doc.strip().splitlines():
        line = _BRIEF.sub("", line)
        if _TAG_LINE.match(line):
            break
        if not line.strip():
            if kept:
                break
            continue
        kept.append(line.strip())
    if not kept or sum(1 for line in kept if _CODE_LIKE.search(line)) * 2 > len(kept):
        return None
    words = " ".join(kept).split()
    words = [w for w in words if not re.fullmatch(r"[-=*#/_~]{3,}", w)]
    letters = sum(ch.isalpha() for ch in " ".join(words))
    if len(words) < min_words or letters < 0.6 * len("".join(words)):
        return None
    return " ".join(words[:max_words])


def code_without_doc(unit: CodeUnit) -> str:
    """A unit's code with its doc comment or docstring taken out (so doc -> code is not string matching)."""
    if not unit.doc:
        return unit.text
    if unit.language == "Python":
        return _strip_python_docstring(unit.text)
    if unit.language == "Elixir":  # @doc / @moduledoc strings, then any leading # comments
        return _strip_leading_comments(_ELIXIR_DOC.sub("", unit.text), "#") or unit.text
    return _strip_leading_comments(unit.text, _LINE_COMMENTS.get(unit.language, "//"))


#: Line-comment marks of the languages whose comments do not start with ``//``.
_LINE_COMMENTS = {"Ruby": "#", "Shell": "#", "Lua": "--"}
_ELIXIR_DOC = re.compile(r'[ \t]*@(?:module)?doc\s+(?:~[sS])?("""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*")[ \t]*\n?')


def _strip_python_docstring(text: str) -> str:
    source = textwrap.dedent(text)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return re.sub(r'("""|\'\'\')[\s\S]*?\1\s*\n?', "", source, count=1).strip("\n")
    node = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))), None)
    if node is None or not node.body:
        return source.strip("\n")
    first = node.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)):
        return source.strip("\n")
    lines = source.splitlines()
    kept = lines[: first.lineno - 1] + lines[first.end_lineno:]
    if len(node.body) == 1:  # a function that is only its docstring keeps a valid body
        kept.insert(first.lineno - 1, " " * first.col_offset + "...")
    return "\n".join(kept).strip("\n")


def _strip_leading_comments(text: str, mark: str = "//") -> str:
    lines = text.split("\n")
    index, in_block = 0, False
    while index < len(lines):
        stripped = lines[index].strip()
        if in_block:
            in_block = "*/" not in stripped
        elif stripped.startswith("/*"):
            in_block = "*/" not in stripped[2:]
        elif not (stripped.startswith(mark) or not stripped):
            break
        index += 1
    rest = "\n".join(lines[index:]).strip("\n")
    return rest or text


def split_code_context(code: str, rng: random.Random) -> tuple[str, str] | None:
    """CodeR's Code Context Retrieval: cut at a random 40-70% of the lines -> (head, tail)."""
    lines = code.splitlines()
    if len([ln for ln in lines if ln.strip()]) < 6:
        return None
    cut = max(2, min(len(lines) - 2, round(len(lines) * rng.uniform(0.4, 0.7))))
    head, tail = "\n".join(lines[:cut]).rstrip(), "\n".join(lines[cut:]).rstrip()
    return (head, tail) if head.strip() and tail.strip() else None


def _heldout_files(files_per_language: dict[str, list[str]], percent: float, seed: int) -> set[str]:
    """Per language, the ``percent`` of files whose seeded hash ranks lowest (at least one file when the
    language has two or more, never all of them)."""
    held: set[str] = set()
    for files in files_per_language.values():
        if len(files) < 2 or percent <= 0:
            continue
        ranked = sorted(files, key=lambda f: hashlib.sha1(f"{seed}:{f}".encode()).hexdigest())
        count = min(len(files) - 1, max(1, round(len(files) * percent / 100)))
        held.update(ranked[:count])
    return held


def _matches(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def build_repository_pairs(
    roots: str | Path | Iterable[str | Path],
    *,
    heldout_percent: float = 15,
    seed: int = 0,
    max_code_lines: int = 30,
    languages: set[str] | None = None,
    min_doc_words: int = 3,
    context: bool = True,
    set_prefix: str = "repo",
    heldout_files: set[str] | None = None,
    heldout_paths: list[str] | None = None,
) -> RepositoryPairs:
    """Pairs and the file-level split of one or more source trees.

    Args:
        roots: repository folders (or files); paths in the result are ``root-name/relative``
            when several roots are given, relative to the root otherwise.
        heldout_percent: share of each language's files held out for evaluation.
        seed: decides the split and the code-context cut points.
        max_code_lines: code is cut to this many lines (a retrieval-sized unit).
        languages: only these programming languages (``None``: all that the walk knows).
        min_doc_words: a doc summary shorter than this is no doc.
        context: also make Code Context pairs (first part -> rest).
        set_prefix: held-out set names start with it (``repo-python-doc2code``).
        heldout_files: hold out exactly these paths instead of a seeded share.
        heldout_paths: hold out the files under these folders or matching these globs (``json/``,
            ``src/net/*.c``) instead of a seeded share: a package or a component held out whole.
    """
    root_list = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    if not root_list:
        raise UsageError("no repository given")
    result = RepositoryPairs(set_prefix=set_prefix)
    units_per_file: dict[str, list[CodeUnit]] = {}
    files_per_language: dict[str, list[str]] = {}
    for root in root_list:
        if not root.exists():
            raise MissingPathError(f"repository {root} does not exist")
        for file in walk_repository(root, result.walk, languages=languages):
            if file.text is None:
                continue
            path = f"{root.name}/{file.path}" if len(root_list) > 1 else file.path
            units = [u for u in split_units(file.text, file.language, path)
                     if u.kind in PAIRED_KINDS or u.kind == "window"]
            if units:
                units_per_file[path] = units
                files_per_language.setdefault(file.language, []).append(path)
    if heldout_paths:
        held = {f for files in files_per_language.values() for f in files if _matches(f, heldout_paths)}
        if not held:
            raise UsageError(f"no code file matches the held-out paths {heldout_paths} (paths are relative to the "
                             "repository, e.g. 'src/net/' or 'lib/*.py')")
    elif heldout_files is not None:
        held = set(heldout_files)
    else:
        held = _heldout_files(files_per_language, heldout_percent, seed)
    rng = random.Random(seed)
    seen_code: set[str] = set()
    seen_query: set[tuple[str, str]] = set()
    for path, units in units_per_file.items():
        side = result.heldout_pairs if path in held else result.train
        (result.heldout_files if path in held else result.train_files).append(path)
        for unit in units:
            result.units[unit.language] += 1
            code = "\n".join(code_without_doc(unit).splitlines()[:max_code_lines]).strip("\n")
            key = content_hash(code)
            if len(code.split()) < 4 or key in seen_code:
                continue
            seen_code.add(key)
            summary = doc_summary(unit.doc, min_doc_words) if unit.kind in PAIRED_KINDS else None
            if summary and (unit.language, summary.lower()) not in seen_query:
                seen_query.add((unit.language, summary.lower()))
                result.documented[unit.language] += 1
                side.append(RepoPair(TEXT2CODE, summary, code, unit.language, path))
                side.append(RepoPair(CODE2TEXT, code, summary, unit.language, path))
            elif unit.kind in PAIRED_KINDS and path not in held:
                result.undocumented_units.append(unit)
            elif unit.kind in PAIRED_KINDS:
                result.heldout_distractors.setdefault(unit.language, []).append(code)
            if context:
                cut = split_code_context(code, rng)
                if cut:
                    side.append(RepoPair(CODE_CONTEXT, cut[0], cut[1], unit.language, path))
    return result


__all__ = ["CODE2TEXT", "CODE_CONTEXT", "TEXT2CODE", "RepoPair", "RepositoryPairs", "build_repository_pairs",
           "code_without_doc", "doc_summary", "split_code_context"]
