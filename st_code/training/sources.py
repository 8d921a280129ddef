"""The curriculum's data, read once per run: every configured source as :class:`Sample` rows (each
row keeps its own task, languages, instruction and difficulty), hard negatives mined where a stage
wants more than a source has, and the held-out evaluation sets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from sentence_transformers import SentenceTransformer

from st_code.assets import MINILM, resolve_model_name
from st_code.data.code_languages import DETECT, detect_code_language, language_counts
from st_code.data.offline_pairs import (HELDOUT_SET_NAMES, PACKAGE_SET_NAMES, TEXT_ONLY, build_offline_data,
                                        humaneval_retrieval)
from st_code.data.readers import is_beir_folder, iter_samples, read_beir
from st_code.data.records import RetrievalSet, Sample
from st_code.mining import mine_rows
from st_code.training.config import (CurriculumConfig, DatasetSource, HardNegativesConfig, OfflineDataConfig,
                                     StageConfig)

def resolve_base(base: str) -> str:
    """``"minilm"`` -> the packaged all-MiniLM-L6-v2 folder; anything else unchanged."""
    return resolve_model_name(base)


def is_sentence_embedder(base: str) -> bool:
    """Whether ``base`` is already a sentence-transformers model (a folder or hub repo with modules.json)."""
    if base == MINILM:
        return True
    path = Path(base)
    if path.exists():
        return (path / "modules.json").is_file()
    try:
        from huggingface_hub import file_exists

        return bool(file_exists(base, "modules.json"))
    except Exception:  # noqa: BLE001 - offline or unknown: treat as a raw model
        return False


def read_sources(config: CurriculumConfig, log: Callable[[str], None]) -> tuple[dict[str, list[Sample]],
                                                                                 dict[str, RetrievalSet]]:
    """``({source name: samples}, {held-out set name: set})`` for a config (no mining yet), in memory."""
    heldout: dict[str, RetrievalSet] = {}
    sources = {name: list(samples) for name, samples in iter_sources(config, heldout, log)}
    return sources, heldout


def iter_sources(config: CurriculumConfig, heldout: dict[str, RetrievalSet],
                 log: Callable[[str], None]) -> Iterator[tuple[str, Iterator[Sample]]]:
    """Each source's rows as a stream, one source after the other, so a run can write millions of
    rows to disk without holding them; the held-out sets go into ``heldout`` as they are met."""
    cfg = config.data
    wants_builtin_sets = any(name in HELDOUT_SET_NAMES for name in config.evaluation.sets)
    if cfg.offline is not None or wants_builtin_sets:
        o = cfg.offline or OfflineDataConfig()
        other = o.other_languages or any(name in PACKAGE_SET_NAMES for name in config.evaluation.sets)
        log("building the offline data from code on this machine ...")
        offline = build_offline_data(o.code_dirs, seed=o.seed, heldout_percent=o.heldout_percent,
                                     max_pairs_per_task=o.max_pairs_per_task, max_code_lines=o.max_code_lines,
                                     include_package_docs=o.include_package_docs, other_languages=other,
                                     jdk_sources=o.jdk_sources)
        log("  " + offline.summary())
        heldout.update(offline.heldout)
        heldout["HumanEval-doc2code"] = humaneval_retrieval()
        if cfg.offline is not None:
            for task, pairs in offline.train.items():
                code_language = None if task == TEXT_ONLY else "Python"
                rows = [Sample(q, p, [], task, "English", code_language) for q, p in pairs]
                if o.other_languages or o.jdk_sources:  # each language is a dataset of its own (Sample.group)
                    rows.extend(Sample(q, p, [], task, "English", lang) for q, p, lang in offline.other_languages.get(task, ()))
                yield f"offline:{task}", iter(rows)
    for name, src in cfg.sources.items():
        path = Path(src.path)
        if name in config.evaluation.sets and is_beir_folder(path):
            heldout[name] = read_beir(path, src.split)
            heldout[name].name = name
            continue
        yield name, _source_stream(name, src, log)


def _source_stream(name: str, src: DatasetSource, log: Callable[[str], None]) -> Iterator[Sample]:
    """One configured source's rows with its overrides applied; logs its size, tasks and languages."""
    detect = src.code_language == DETECT
    tasks: set[str] = set()
    languages: list[str | None] = []
    for sample in iter_samples(src.path, src.task, src.language, src.columns, src.max_samples, src.split,
                               code_language=None if detect else src.code_language):
        if detect:  # the last resort, for sets that name no language (a row's own column still wins)
            sample.code_language = (sample.code_language or detect_code_language(sample.positive)
                                    or detect_code_language(sample.query))
        if src.instruction:
            sample.instruction = src.instruction
        tasks.add(sample.task)
        languages.append(sample.code_language)
        yield sample
    names = sorted(tasks)
    log(f"  source {name}: {len(languages)} samples from {src.path} ({len(names)} task(s): "
        f"{', '.join(names[:4])}{' ...' if len(names) > 4 else ''})")
    if any(languages):
        log(f"    programming languages (each its own batches): {language_counts(languages)}")


def negatives_wanted(stages: list[StageConfig]) -> dict[str, int]:
    """The most hard negatives any stage asks of each dataset."""
    wanted: dict[str, int] = {}
    for stage in stages:
        for name in stage.datasets:
            wanted[name] = max(wanted.get(name, 0), stage.num_negatives)
    return wanted


def mine_negatives(samples: list[Sample], model: SentenceTransformer, num_negatives: int, hn: HardNegativesConfig,
                   log: Callable[[str], None]) -> list[Sample]:
    """Hard negatives per (task, code language, language) group through st-code's one mining wrapper
    (:func:`st_code.mining.mine_rows`); rows that get too few negatives are dropped."""
    groups: dict[tuple, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.group, []).append(s)
    mined: list[Sample] = []
    for key, group in groups.items():
        label = " | ".join(part for part in key if part)
        log(f"  mining {num_negatives} hard negative(s) for {label} ({len(group)} pairs) ...")
        found = mine_rows([s.query for s in group], [s.positive for s in group], model, num_negatives,
                          hn.relative_margin, hn.range_max, hn.batch_size, query_prompt=hn.query_prompt,
                          corpus_prompt=hn.document_prompt)
        mined.extend(replace(sample, negatives=negatives) for sample, negatives in zip(group, found)
                     if negatives is not None)
    return mined


__all__ = ["read_sources", "iter_sources", "mine_negatives", "negatives_wanted", "is_sentence_embedder", "resolve_base"]
