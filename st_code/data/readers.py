"""Readers: any training or evaluation source on disk (or on the hub) as :class:`Sample` rows or a
:class:`RetrievalSet`.

Sources a user hands to st-code, all read here and nowhere else:

* a **data_gen output folder** (``python -m data_gen ... --out DIR``): its ``dataset/`` (or
  ``triplets.jsonl``), every column kept;
* a **JSONL** file or a **datasets** folder of rows (data_gen's layout, or CodeSearchNet-style
  columns named with ``columns={"anchor": ..., "positive": ...}``);
* a **BEIR/CoIR folder** (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``);
* ``hf://datasets/<owner>/<name>[:<subset>]``: a hub dataset of rows, or a BEIR-shaped one with
  ``corpus``/``queries`` subsets (the CoIR-Retrieval and mteb layouts). Needs hub access.

A row's own ``task``, ``language``, ``code_language``, ``instruction`` and ``difficulty`` are kept;
what the caller passes explicitly wins, and the source's name is the task of last resort.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from st_code.data.code_languages import canonical_code_language
from st_code.data.records import ROW_COLUMNS, RetrievalSet, Sample, row_negatives
from st_code.errors import StCodeError

QUERY_KEYS = ("query", "anchor", "question", "docstring", "text", "nl")
POSITIVE_KEYS = ("positive", "pos", "document", "code", "answer")
HUB_PREFIX = "hf://datasets/"
DATA_GEN_DATASET = "dataset"
DATA_GEN_TRIPLETS = "triplets.jsonl"


class DataError(StCodeError, ValueError):
    """A data source that cannot be used; the message names the file and what is wrong."""


def _languages(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(natural language, programming language) of a row. data_gen's layout names both; elsewhere
    (CodeSearchNet, github-code) ``language`` holds the programming language, told apart by name.
    Programming languages get one spelling (``python`` -> ``Python``) so they batch together."""
    code_language = record.get("code_language") or None
    language = record.get("language") or None
    if code_language is None and canonical_code_language(language):
        return None, canonical_code_language(language)
    return language, canonical_code_language(code_language) or code_language


def _pick(record: dict[str, Any], keys: tuple[str, ...], override: str | None, where: str, role: str) -> Any:
    if override:
        if override not in record:
            raise DataError(f"{where}: column {override!r} (for {role}) is missing; columns: {sorted(record)}")
        return record[override]
    for key in keys:
        if key in record and record[key]:
            value = record[key]
            return value[0] if isinstance(value, list) else value
    raise DataError(f"{where}: no {role} column; expected one of {keys} or set columns: {{{role}: <name>}}")


def records_to_samples(records: Iterable[dict[str, Any]], where: str, task: str | None = None,
                       language: str | None = None, code_language: str | None = None,
                       columns: dict[str, str] | None = None, max_samples: int | None = None,
                       default_task: str | None = None) -> list[Sample]:
    """Rows -> samples. Explicit ``task``/``language``/``code_language`` win over the row's columns;
    ``default_task`` (or the file's stem) names rows that carry no task."""
    return list(_samples_from(records, where, task, language, code_language, columns, max_samples, default_task))


def _samples_from(records: Iterable[dict[str, Any]], where: str, task: str | None, language: str | None,
                  code_language: str | None, columns: dict[str, str] | None, max_samples: int | None,
                  default_task: str | None) -> Iterator[Sample]:
    columns = columns or {}
    made = 0
    for i, record in enumerate(records):
        if max_samples is not None and made >= max_samples:
            break
        at = f"{where} row {i}"
        query = _pick(record, QUERY_KEYS, columns.get("anchor"), at, "anchor")
        positive = _pick(record, POSITIVE_KEYS, columns.get("positive"), at, "positive")
        if not isinstance(query, str) or not isinstance(positive, str) or not query.strip() or not positive.strip():
            continue
        row_language, row_code_language = _languages(record)
        made += 1
        yield (Sample(
            query=query, positive=positive, negatives=row_negatives(record),
            task=task or record.get("task") or default_task or Path(where).stem,
            language=language or row_language,
            code_language=(canonical_code_language(code_language) or code_language) or row_code_language,
            instruction=record.get("instruction") or None, difficulty=record.get("difficulty") or None,
            major_type=record.get("major_type") or None, difficulty_model=record.get("difficulty_model") or None,
        ))


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file; a bad line raises :class:`DataError` naming the file and line."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    with handle:
        try:
            for line_number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}:{line_number}: not valid JSON ({exc.msg})") from None
                    if not isinstance(record, dict):
                        raise DataError(f"{path}:{line_number}: expected a JSON object per line, got "
                                        f"{type(record).__name__}")
                    yield record
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def is_beir_folder(path: Path) -> bool:
    return path.is_dir() and (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file()


def is_data_gen_output(path: Path) -> bool:
    """A folder ``python -m data_gen ... --out`` wrote: it holds ``dataset/`` or ``triplets.jsonl``."""
    return path.is_dir() and ((path / DATA_GEN_DATASET / "dataset_info.json").is_file()
                              or (path / DATA_GEN_TRIPLETS).is_file())


def _is_datasets_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file())


def read_beir(path: str | Path, split: str = "test") -> RetrievalSet:
    """A BEIR/CoIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/{split}.tsv``) as a retrieval set."""
    path = Path(path)
    qrels_file = path / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        raise DataError(f"{path}: missing qrels/{split}.tsv (BEIR layout: corpus.jsonl, queries.jsonl, qrels/)")
    corpus = _beir_table(path / "corpus.jsonl", "document", lambda r: ((r.get("title") or "") + "\n" +
                                                                      (r.get("text") or "")).strip())
    queries = _beir_table(path / "queries.jsonl", "query", lambda r: r.get("text") or "")
    relevant = _read_qrels_rows(_tsv_rows(qrels_file), queries, corpus, str(qrels_file))
    return RetrievalSet(path.name, "", queries, corpus, relevant)


def _beir_table(file: Path, role: str, text_of) -> dict[str, str]:
    """``{_id: text}`` of a BEIR JSONL file; an empty file, a record without ``_id`` or an id given twice
    (the second would silently replace the first) is an error naming the file and line."""
    if not file.is_file():
        raise DataError(f"{file.parent}: missing {file.name} (BEIR layout: corpus.jsonl, queries.jsonl, qrels/)")
    table: dict[str, str] = {}
    for number, record in enumerate(read_jsonl(file), 1):
        if "_id" not in record:
            raise DataError(f"{file}: {role} record {number} has no '_id'")
        key = str(record["_id"])
        if key in table:
            raise DataError(f"{file}: {role} id {key!r} appears twice (record {number}); each {role} needs its own id")
        table[key] = text_of(record)
    if not table:
        raise DataError(f"{file}: no {role}s; a BEIR folder needs at least one")
    return table


def write_beir(rs: RetrievalSet, folder: str | Path, split: str = "test") -> Path:
    """Write a retrieval set as a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/{split}.tsv``),
    the layout :func:`read_beir`, ``python -m st_code.evaluation --local`` and training configs read."""
    folder = Path(folder)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc_id, text in rs.corpus.items():
            handle.write(json.dumps({"_id": doc_id, "title": "", "text": text}, ensure_ascii=False) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for query_id, text in rs.queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}, ensure_ascii=False) + "\n")
    with (folder / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for query_id, docs in rs.relevant.items():
            handle.writelines(f"{query_id}\t{doc_id}\t1\n" for doc_id in sorted(docs))
    return folder


def _tsv_rows(qrels_file: Path) -> Iterator[tuple[int, list[str]]]:
    with qrels_file.open(encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.reader(handle, delimiter="\t"), 1):
            if not row or (line_number == 1 and row[0].strip().lower() in ("query-id", "query_id", "qid", "query")):
                continue  # header
            yield line_number, row


def _read_qrels_rows(rows: Iterable[tuple[int, list[str]]], queries: dict, corpus: dict,
                     where: str) -> dict[str, set[str]]:
    relevant: dict[str, set[str]] = {}
    for line_number, row in rows:
        if len(row) < 3:
            raise DataError(f"{where}:{line_number}: expected 'query-id<TAB>corpus-id<TAB>score', got {row}")
        qid, cid, score = str(row[0]), str(row[1]), row[2]
        try:
            relevant_score = int(float(score))
        except ValueError:
            raise DataError(f"{where}:{line_number}: score {score!r} is not a number") from None
        if qid not in queries or cid not in corpus:
            raise DataError(f"{where}:{line_number}: query {qid!r} or document {cid!r} is not in the folder's queries or corpus")
        if relevant_score > 0:
            relevant.setdefault(qid, set()).add(cid)
    return relevant


def _beir_pairs(rs: RetrievalSet) -> list[dict[str, str]]:
    return [{"query": rs.queries[q], "positive": rs.corpus[d]} for q, ds in rs.relevant.items() for d in sorted(ds)]


def _load_datasets_folder(path: Path, split: str):
    from datasets import load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except Exception as exc:  # datasets raises several types for "not a dataset folder"
        raise DataError(f"{path}: not a datasets folder, JSONL file or BEIR folder ({exc})") from None
    if hasattr(dataset, "keys"):  # DatasetDict
        if split not in dataset:
            raise DataError(f"{path}: no split {split!r}; splits: {list(dataset)}")
        dataset = dataset[split]
    return dataset


def _source_records(path: Path, split: str) -> tuple[Iterable[dict[str, Any]], str]:
    """The rows of a local source and the name used for rows without a task."""
    if is_data_gen_output(path):
        if (path / DATA_GEN_DATASET / "dataset_info.json").is_file():
            return _load_datasets_folder(path / DATA_GEN_DATASET, split), path.name
        return read_jsonl(path / DATA_GEN_TRIPLETS), path.name
    if is_beir_folder(path):
        return _beir_pairs(read_beir(path, split)), path.name
    if _is_datasets_folder(path):
        return _load_datasets_folder(path, split), path.name
    if path.is_dir():
        raise DataError(f"{path}: a folder that is neither a data_gen output (dataset/ or triplets.jsonl), a datasets "
                        "folder, nor a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    if path.suffix in (".jsonl", ".json"):
        return read_jsonl(path), path.stem
    raise DataError(f"{path}: unsupported format; use .jsonl, a data_gen output folder, a datasets folder or a BEIR folder")


def load_samples(path: str | Path, task: str | None = None, language: str | None = None,
                 columns: dict[str, str] | None = None, max_samples: int | None = None,
                 split: str = "train", code_language: str | None = None) -> list[Sample]:
    """Training samples from any source listed in the module docstring.

    Args:
        path: the source (a path, or ``hf://datasets/...``).
        task, language, code_language: override the rows' own columns (``None`` keeps them).
        columns: ``{"anchor": <column>, "positive": <column>}`` for sources with other column names.
        max_samples: read at most this many rows.
        split: the split of a datasets folder, BEIR qrels file or hub dataset.
    """
    return list(iter_samples(path, task, language, columns, max_samples, split, code_language))


def iter_samples(path: str | Path, task: str | None = None, language: str | None = None,
                 columns: dict[str, str] | None = None, max_samples: int | None = None,
                 split: str = "train", code_language: str | None = None) -> Iterator[Sample]:
    """:func:`load_samples`, one row at a time: a source of millions of rows streams through (a BEIR-shaped
    hub set is joined in memory first). Raises :class:`DataError` at the end if no row was usable."""
    if str(path).startswith(HUB_PREFIX):
        yield from _load_hub(str(path), task, language, code_language, columns or {}, max_samples, split)
        return
    path = require_dataset(path)
    records, name = _source_records(path, split)
    made = 0
    for sample in _samples_from(records, str(path), task, language, code_language, columns, max_samples, name):
        made += 1
        yield sample
    if not made:
        raise DataError(f"{path}: no usable (query, positive) rows")


def require_dataset(path: str | Path) -> Path:
    """``path`` as a Path, or the DataError every reader gives for a local source that is not there."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset {path} does not exist")
    return path


def require_sources(paths: Iterable[str | Path]) -> None:
    """:func:`require_dataset` for every local source among ``paths`` (``hf://datasets/...`` ones are the
    hub's to answer). Light: command lines call it before importing the libraries reading and encoding need."""
    for path in paths:
        if not str(path).startswith(HUB_PREFIX):
            require_dataset(path)


def source_fingerprint(path: str | Path) -> str:
    """The content a source's rows are read from (for a data_gen folder: its dataset, not its journal)."""
    from st_code.fingerprint import path_fingerprint

    path = Path(path)
    if is_data_gen_output(path):
        dataset = path / DATA_GEN_DATASET
        return path_fingerprint(dataset if (dataset / "dataset_info.json").is_file() else path / DATA_GEN_TRIPLETS)
    return path_fingerprint(path)


def probe_source(path: str | Path, columns: dict[str, str] | None = None, split: str = "train",
                 rows: int = 3) -> list[Sample]:
    """Read the first ``rows`` rows of a local source through the same reader training uses, so a
    config that names a folder it cannot read fails at validation, not hours later."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if is_beir_folder(path):  # qrels can only be checked whole; the files are opened and their first rows parsed
        for name in ("corpus.jsonl", "queries.jsonl"):
            next(iter(read_jsonl(path / name)), None)
        if not (path / "qrels" / f"{split}.tsv").is_file():
            raise DataError(f"{path}: missing qrels/{split}.tsv (BEIR layout: corpus.jsonl, queries.jsonl, qrels/)")
        return []
    records, name = _source_records(path, split)
    samples = records_to_samples(islice(iter(records), rows * 4), str(path), columns=columns, max_samples=rows,
                                 default_task=name)
    if not samples:
        raise DataError(f"{path}: no usable (query, positive) rows in its first {rows * 4} rows")
    return samples


def _hub_configs(name: str) -> list[str]:
    from datasets import get_dataset_config_names

    try:
        return list(get_dataset_config_names(name))
    except Exception:  # noqa: BLE001 - an unknown or unreachable repo is reported by load_dataset below
        return []


def _per_language_beir(configs: list[str]) -> list[str]:
    """The prefixes of CoIR's per-language layout (``go-corpus``, ``go-queries``, ``go-qrels``, ...)."""
    names = set(configs)
    return sorted(c[:-len("-corpus")] for c in names if c.endswith("-corpus")
                  and {c[:-len("-corpus")] + "-queries", c[:-len("-corpus")] + "-qrels"} <= names)


def _load_hub(uri: str, task, language, code_language, columns, max_samples, split) -> Iterator[Sample]:
    """``hf://datasets/<owner>/<name>[:<subset>]`` through ``datasets.load_dataset`` (needs hub access).

    Rows as they are, or, for BEIR-shaped repositories (CoIR-Retrieval/*, mteb/*), the ``split`` qrels
    joined into (query, positive) pairs: ``corpus``/``queries``/``default`` subsets, or one
    ``<lang>-corpus``/``<lang>-queries``/``<lang>-qrels`` triple per language (CoIR's CodeSearchNet and
    CSN-CCR), whose rows take that language. A subset named after a programming language
    (``:python``) gives it to rows that name none."""
    from datasets import load_dataset

    name, _, subset = uri[len(HUB_PREFIX):].partition(":")
    default_task = name.split("/")[-1]
    try:
        configs = [] if subset else _hub_configs(name)
        if {"corpus", "queries"} <= set(configs):
            records = _hub_beir_pairs(name, split)
        elif _per_language_beir(configs):
            records = [dict(row, language=prefix) for prefix in _per_language_beir(configs)
                       for row in _hub_beir_pairs(name, split, prefix=prefix + "-")]
        else:
            records = load_dataset(name, subset or None, split=split)
            if canonical_code_language(subset) and not code_language:
                code_language = canonical_code_language(subset)
                records = (dict(row, code_language=row.get("code_language") or code_language) for row in records)
    except DataError:
        raise
    except Exception as exc:  # offline, unknown id, gated...: one clear line instead of a hub stack trace
        raise DataError(f"could not load {uri} from the Hugging Face hub ({type(exc).__name__}: {exc})") from None
    made = 0
    for sample in _samples_from(records, uri, task, language, code_language, columns, max_samples, default_task):
        made += 1
        yield sample  # a hub dataset of rows is Arrow on disk: its rows stream from there
    if not made:
        raise DataError(f"{uri}: no usable (query, positive) rows")


def _hub_beir_pairs(name: str, split: str, prefix: str = "") -> list[dict[str, str]]:
    from datasets import load_dataset

    def table(config: str) -> dict[str, str]:
        data = load_dataset(name, config)
        rows = data[config[len(prefix):]] if config[len(prefix):] in data else data[next(iter(data))]
        return {str(r["_id"]): ((r.get("title") or "") + "\n" + (r.get("text") or "")).strip() for r in rows}

    corpus, queries = table(prefix + "corpus"), table(prefix + "queries")
    qrels = load_dataset(name, prefix + "qrels" if prefix else "default", split=split)
    rows = ((i, [r["query-id"], r["corpus-id"], r.get("score", 1)]) for i, r in enumerate(qrels, 1))
    where = f"{name} {prefix + 'qrels' if prefix else 'qrels'} ({split})"
    rs = RetrievalSet(name, "", queries, corpus, _read_qrels_rows(rows, queries, corpus, where))
    return _beir_pairs(rs)


__all__ = ["DataError", "load_samples", "iter_samples", "require_dataset", "require_sources", "probe_source", "read_beir",
           "read_jsonl", "records_to_samples", "write_beir", "is_beir_folder", "is_data_gen_output",
           "source_fingerprint", "HUB_PREFIX", "QUERY_KEYS", "POSITIVE_KEYS", "ROW_COLUMNS"]
