"""Training data for the curriculum: load any source into (anchor, positive, negative_1..k) datasets.

Every source becomes a list of :class:`Sample` (query, positive, negatives, task, language); the
stage then groups samples by (task, language) into one ``datasets.Dataset`` each, so every batch
comes from one task and language (C2LLM's homogeneous batches via sentence-transformers'
multi-dataset samplers). Metadata stays out of the dataset columns: sentence-transformers would
otherwise feed every column to the loss.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset, load_from_disk

from st_code.data.offline_pairs import RetrievalSet

QUERY_KEYS = ("query", "anchor", "question", "docstring", "text", "nl")
POSITIVE_KEYS = ("positive", "pos", "document", "code", "answer")


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and what is wrong."""


@dataclass
class Sample:
    query: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    task: str = "default"
    language: str = "any"


def _pick(record: dict[str, Any], keys: tuple[str, ...], override: str | None, where: str, role: str) -> str:
    if override:
        if override not in record:
            raise DataError(f"{where}: column {override!r} (for {role}) is missing; columns: {sorted(record)}")
        return record[override]
    for key in keys:
        if key in record and record[key]:
            value = record[key]
            return value[0] if isinstance(value, list) else value
    raise DataError(f"{where}: no {role} column; expected one of {keys} or set columns: {{{role}: <name>}}")


def _negatives(record: dict[str, Any]) -> list[str]:
    if isinstance(record.get("negatives"), list):
        return [n for n in record["negatives"] if n]
    if isinstance(record.get("neg"), list):
        return [n for n in record["neg"] if n]
    numbered = sorted((k for k in record if k.startswith("negative_")), key=lambda k: int(k.split("_")[1]))
    single = [record["negative"]] if record.get("negative") else []
    return single + [record[k] for k in numbered if record[k]]


def _records_to_samples(records, where: str, task: str | None, language: str | None,
                        columns: dict[str, str], max_samples: int | None) -> list[Sample]:
    samples = []
    for i, record in enumerate(records):
        if max_samples is not None and len(samples) >= max_samples:
            break
        at = f"{where} row {i}"
        query = _pick(record, QUERY_KEYS, columns.get("anchor"), at, "anchor")
        positive = _pick(record, POSITIVE_KEYS, columns.get("positive"), at, "positive")
        if not isinstance(query, str) or not isinstance(positive, str) or not query.strip() or not positive.strip():
            continue
        samples.append(Sample(
            query=query, positive=positive, negatives=_negatives(record),
            task=task or record.get("task") or Path(where).stem,
            language=language or record.get("code_language") or record.get("language") or "any",
        ))
    return samples


def _read_jsonl(path: Path):
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{line_number}: not valid JSON ({exc.msg})") from None


def is_beir_folder(path: Path) -> bool:
    return path.is_dir() and (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file()


def read_beir(path: str | Path, split: str = "test") -> RetrievalSet:
    """A BEIR/CoIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/{split}.tsv``) as a retrieval set."""
    path = Path(path)
    qrels_file = path / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        raise DataError(f"{path}: missing qrels/{split}.tsv (BEIR layout: corpus.jsonl, queries.jsonl, qrels/)")
    corpus = {}
    for record in _read_jsonl(path / "corpus.jsonl"):
        if "_id" not in record:
            raise DataError(f"{path}/corpus.jsonl: a record has no '_id'")
        title = record.get("title") or ""
        corpus[str(record["_id"])] = (title + "\n" + record.get("text", "")).strip()
    queries = {str(r["_id"]): r.get("text", "") for r in _read_jsonl(path / "queries.jsonl")}
    relevant: dict[str, set[str]] = {}
    with qrels_file.open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for line_number, row in enumerate(reader, 1):
            if not row or (line_number == 1 and row[0].strip().lower() in ("query-id", "query_id", "qid", "query")):
                continue  # header
            if len(row) < 3:
                raise DataError(f"{qrels_file}:{line_number}: expected 'query-id<TAB>corpus-id<TAB>score', got {row}")
            qid, cid, score = row[0], row[1], row[2]
            try:
                relevant_score = int(float(score))
            except ValueError:
                raise DataError(f"{qrels_file}:{line_number}: score {score!r} is not a number") from None
            if qid not in queries or cid not in corpus:
                raise DataError(f"{qrels_file}:{line_number}: query {qid!r} or document {cid!r} is not in the folder")
            if relevant_score > 0:
                relevant.setdefault(qid, set()).add(cid)
    return RetrievalSet(path.name, "", queries, corpus, relevant)


def load_samples(path: str | Path, task: str | None = None, language: str | None = None,
                 columns: dict[str, str] | None = None, max_samples: int | None = None,
                 split: str = "train") -> list[Sample]:
    """Load training samples from a JSONL file, a ``datasets`` folder, or a BEIR/CoIR folder."""
    columns = columns or {}
    if str(path).startswith(HUB_PREFIX):
        return _load_hub(str(path), task, language, columns, max_samples, split)
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset {path} does not exist")
    if is_beir_folder(path):
        rs = read_beir(path, split)
        pairs = [{"query": rs.queries[q], "positive": rs.corpus[d]} for q, ds in rs.relevant.items() for d in sorted(ds)]
        samples = _records_to_samples(pairs, str(path), task or path.name, language, {}, max_samples)
    elif path.is_dir():
        try:
            dataset = load_from_disk(str(path))
        except Exception as exc:  # datasets raises several types for "not a dataset folder"
            raise DataError(f"{path}: not a datasets folder, JSONL file or BEIR folder ({exc})") from None
        if hasattr(dataset, "keys"):  # DatasetDict
            if split not in dataset:
                raise DataError(f"{path}: no split {split!r}; splits: {list(dataset)}")
            dataset = dataset[split]
        samples = _records_to_samples(dataset, str(path), task, language, columns, max_samples)
    elif path.suffix in (".jsonl", ".json"):
        samples = _records_to_samples(_read_jsonl(path), str(path), task, language, columns, max_samples)
    else:
        raise DataError(f"{path}: unsupported format; use .jsonl, a datasets folder or a BEIR folder")
    if not samples:
        raise DataError(f"{path}: no usable (query, positive) rows")
    return samples


HUB_PREFIX = "hf://datasets/"


def _load_hub(uri: str, task, language, columns, max_samples, split) -> list[Sample]:
    """``hf://datasets/<owner>/<name>[:<subset>]`` through ``datasets.load_dataset`` (needs hub access)."""
    from datasets import load_dataset

    name, _, subset = uri[len(HUB_PREFIX):].partition(":")
    try:
        dataset = load_dataset(name, subset or None, split=split)
    except Exception as exc:  # offline, unknown id, gated...: one clear line instead of a hub stack trace
        raise DataError(f"could not load {uri} from the Hugging Face hub ({type(exc).__name__}: {exc})") from None
    samples = _records_to_samples(dataset, uri, task or name.split("/")[-1], language, columns, max_samples)
    if not samples:
        raise DataError(f"{uri}: no usable (query, positive) rows")
    return samples


def dataset_key(task: str, language: str) -> str:
    """The name of one homogeneous (task, language) training dataset."""
    return f"{task} | {language}"


def group_samples(samples: list[Sample], num_negatives: int) -> dict[str, Dataset]:
    """``{"task | language": Dataset(anchor, positive, negative_1..k)}``; samples short of k negatives are dropped."""
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        if len(sample.negatives) >= num_negatives:
            groups.setdefault(dataset_key(sample.task, sample.language), []).append(sample)
    datasets = {}
    for key, group in groups.items():
        columns: dict[str, list[str]] = {"anchor": [s.query for s in group], "positive": [s.positive for s in group]}
        for j in range(num_negatives):
            columns[f"negative_{j + 1}"] = [s.negatives[j] for s in group]
        datasets[key] = Dataset.from_dict(columns)
    return datasets


def save_samples(samples: list[Sample], path: Path) -> None:
    """Write samples as JSONL atomically (a crash never leaves half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for s in samples:
            handle.write(json.dumps(s.__dict__, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_samples(path: Path) -> list[Sample]:
    return [Sample(**record) for record in _read_jsonl(path)]
