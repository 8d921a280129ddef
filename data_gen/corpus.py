"""Stage 2, corpus: real code from folders, git checkouts, JSONL and ``datasets`` folders.

Folders are walked by ``st_code.data.repository`` (``.gitignore`` honoured, vendored and build folders
skipped; language from the extension for CodeR-Pile's 20 languages and Verilog). Binary, non-UTF-8,
generated, minified and oversized files are dropped with a count of each; content is deduplicated by
hash. Each file is then cut into code units by ``st_code.data.code_units`` (functions, methods and
classes with their doc comments; line windows where no grammar exists), so a generation prompt gets a
whole function or class rather than a file's first lines; ``units=False`` keeps whole files. Sampling
per language is deterministic for a seed.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from st_code.data.code_units import split_units
from st_code.data.repository import EXTENSIONS, LANGUAGES, check_text, language_of, walk_repository
from st_code.errors import MissingPathError, UsageError

#: github-code-clean's language names -> ours.
DATASET_LANGUAGES = {"c#": "C#", "c++": "C++", "shell": "Shell", "visual basic": "Visual Basic",
                     "powershell": "Powershell", "batchfile": "Batchfile", "fortran": "Fortran"}


@dataclass(frozen=True)
class CodeFile:
    id: str
    language: str
    code: str
    path: str


@dataclass
class CorpusReport:
    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    per_language: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        drops = ", ".join(f"{k}: {v}" for k, v in sorted(self.dropped.items())) or "none"
        langs = ", ".join(f"{k}: {v}" for k, v in sorted(self.per_language.items()))
        return [f"corpus: read {self.read}, kept {self.kept}; dropped {drops}", f"corpus languages: {langs}"]


def _iter_folder(root: Path, max_bytes: int) -> Iterator[tuple[str, bytes | None, str | None]]:
    """``(path, bytes, None)`` per code file under ``root`` (the shared repository walk), or
    ``(path, None, reason)`` for one skipped (``oversized``, ``outside_corpus``, ``gitignored``...)."""
    for found in walk_repository(root, max_bytes=max_bytes):
        if found.skipped == "not_code":
            continue
        path = str(Path(root) / found.path)
        if found.skipped:
            yield path, None, "outside_corpus" if found.skipped == "outside_repository" else found.skipped
        else:
            yield path, found.text.encode("utf-8", "surrogatepass"), None


def _jsonl_records(source: Path) -> Iterator[dict]:
    with source.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    record = None
                yield record if isinstance(record, dict) else {"__bad__": True}


def _iter_records(records: Iterable[dict], source: str) -> Iterator[tuple[str, bytes | None, str | None, str | None]]:
    for i, record in enumerate(records):
        path = record.get("path") or f"{source}#{i}"
        code = record.get("code") or record.get("content") or record.get("text")
        if record.get("__bad__") or not isinstance(code, str):
            yield path, None, None, "bad_record"
            continue
        language = record.get("language")
        if isinstance(language, str):
            language = DATASET_LANGUAGES.get(language.lower(), language)
        yield path, code.encode("utf-8", errors="surrogatepass"), language, None


def read_corpus(sources: list[str | Path], languages: list[str] | None = None, max_per_language: int | None = None,
                seed: int = 0, max_bytes: int = 200_000, min_chars: int = 40,
                units: bool = True) -> tuple[list[CodeFile], CorpusReport]:
    """Read, filter, deduplicate and sample code from folders / git checkouts, JSONL files and ``datasets``
    folders; with ``units`` (default) each file becomes its functions, methods and classes."""
    wanted = set(languages) if languages else None
    unknown = sorted((wanted or set()) - set(LANGUAGES))
    if unknown:
        raise UsageError(f"unknown language(s) {unknown}; supported: {LANGUAGES}")
    report = CorpusReport()
    seen: set[str] = set()
    by_language: dict[str, list[CodeFile]] = {}
    for source in sources:
        source = Path(source)
        if not source.exists():
            raise MissingPathError(f"corpus source {source} does not exist")
        if source.is_file() and source.suffix in (".jsonl", ".json"):
            items = _iter_records(_jsonl_records(source), source.name)
        elif source.is_dir() and ((source / "dataset_info.json").exists() or (source / "dataset_dict.json").exists()):
            from datasets import load_from_disk

            dataset = load_from_disk(str(source))
            dataset = dataset["train"] if hasattr(dataset, "keys") else dataset
            items = _iter_records(dataset, source.name)
        elif source.is_dir():
            items = ((p, raw, None, reason) for p, raw, reason in _iter_folder(source, max_bytes))
        else:
            raise UsageError(f"corpus source {source}: use a folder, a .jsonl file or a datasets folder")
        for path, raw, language, skipped in items:
            report.read += 1
            if skipped:
                report.dropped[skipped] += 1
                continue
            language = language or language_of(path)
            if language not in LANGUAGES:
                report.dropped["unknown_language"] += 1
                continue
            if wanted is not None and language not in wanted:
                report.dropped["language_not_selected"] += 1
                continue
            text, reason = check_text(raw, max_bytes, min_chars)
            if reason:
                report.dropped["minified_or_tiny" if reason in ("minified", "tiny") else reason] += 1
                continue
            digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
            if digest in seen:
                report.dropped["duplicate"] += 1
                continue
            seen.add(digest)
            if not units:
                by_language.setdefault(language, []).append(CodeFile(digest[:16], language, text, path))
                continue
            for unit in split_units(text, language, path):
                if len(unit.text.strip()) < min_chars:
                    report.dropped["tiny_unit"] += 1
                elif unit.hash in seen:
                    report.dropped["duplicate_unit"] += 1
                else:
                    seen.add(unit.hash)
                    by_language.setdefault(language, []).append(
                        CodeFile(unit.hash[:16], language, unit.text, f"{path}:{unit.start_line}-{unit.end_line}"))
    files: list[CodeFile] = []
    rng = random.Random(seed)
    for language in sorted(by_language):
        chosen = by_language[language]
        if max_per_language is not None and len(chosen) > max_per_language:
            chosen = rng.sample(chosen, max_per_language)
            report.dropped["sampled_out"] += len(by_language[language]) - max_per_language
        files.extend(chosen)
        report.per_language[language] = len(chosen)
    report.kept = len(files)
    if not files:
        raise UsageError(f"the corpus is empty after filtering ({dict(report.dropped)}); check --corpus and --languages")
    return files, report


def snippet(code: str, max_lines: int = 60, max_chars: int = 4000) -> str:
    """The first ``max_lines`` lines (and at most ``max_chars``) of a file: what one prompt carries."""
    return "\n".join(code.splitlines()[:max_lines])[:max_chars].rstrip()


__all__ = ["EXTENSIONS", "LANGUAGES", "CodeFile", "CorpusReport", "language_of", "read_corpus", "snippet"]
