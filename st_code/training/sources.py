"""The curriculum's data, read once per run: every configured source as :class:`Sample` rows (each
row keeps its own task, languages, instruction and difficulty), hard negatives mined where a stage
wants more than a source has, and the held-out evaluation sets."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sentence_transformers import SentenceTransformer

from st_code.assets import MINILM, resolve_model_name
from st_code.data.code_languages import DETECT, detect_code_language, language_counts
from st_code.data.offline_pairs import (HELDOUT_SET_NAMES, PACKAGE_SET_NAMES, TEXT_ONLY, build_offline_data,
                                        humaneval_retrieval)
from st_code.data.readers import is_beir_folder, load_samples, read_beir
from st_code.data.records import RetrievalSet, Sample
from st_code.mining import mine_rows
from st_code.training.config import CurriculumConfig, HardNegativesConfig, OfflineDataConfig, StageConfig

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
    """``({source name: samples}, {held-out set name: set})`` for a config (no mining yet)."""
    cfg = config.data
    sources: dict[str, list[Sample]] = {}
    heldout: dict[str, RetrievalSet] = {}
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
        if cfg.offline is not None:
            for task, pairs in offline.train.items():
                code_language = None if task == TEXT_ONLY else "Python"
                sources[f"offline:{task}"] = [Sample(q, p, [], task, "English", code_language) for q, p in pairs]
            if o.other_languages or o.jdk_sources:  # each language is a dataset of its own in training (Sample.group)
                for task, rows in offline.other_languages.items():
                    sources[f"offline:{task}"].extend(Sample(q, p, [], task, "English", lang) for q, p, lang in rows)
        heldout.update(offline.heldout)
        heldout["HumanEval-doc2code"] = humaneval_retrieval()
    for name, src in cfg.sources.items():
        path = Path(src.path)
        if name in config.evaluation.sets and is_beir_folder(path):
            heldout[name] = read_beir(path, src.split)
            heldout[name].name = name
            continue
        detect = src.code_language == DETECT
        samples = load_samples(src.path, src.task, src.language, src.columns, src.max_samples, src.split,
                               code_language=None if detect else src.code_language)
        if detect:  # the last resort, for sets that name no language (a row's own column still wins)
            for sample in samples:
                sample.code_language = (sample.code_language or detect_code_language(sample.positive)
                                        or detect_code_language(sample.query))
        if src.instruction:
            for sample in samples:
                sample.instruction = src.instruction
        sources[name] = samples
        tasks = sorted({s.task for s in samples})
        log(f"  source {name}: {len(samples)} samples from {src.path} ({len(tasks)} task(s): "
            f"{', '.join(tasks[:4])}{' ...' if len(tasks) > 4 else ''})")
        if any(s.code_language for s in samples):
            log(f"    programming languages (each its own batches): {language_counts(s.code_language for s in samples)}")
    return sources, heldout


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


@dataclass
class StageRows:
    """A stage's rows before filtering, and how often each source dataset is read per epoch.

    ``rows``: rows each source contributes; ``repeats``: passes over it per epoch (1 without ``mix``;
    more for a dataset too small for its share). Repeats are made by the batch sampler
    (:mod:`st_code.training.mix_sampler`), never by copying rows, so no batch holds a row twice."""

    samples: list[Sample]
    rows: dict[str, int]
    repeats: dict[str, float]
    source_of: dict[int, str] = field(repr=False, default_factory=dict)

    def repeat_of(self, sample: Sample) -> float:
        """Passes per epoch over ``sample``'s source dataset."""
        return self.repeats[self.source_of[id(sample)]]


def mix_repeats(mix: dict[str, float] | None, rows: dict[str, int]) -> dict[str, float]:
    """Passes per epoch over each dataset so that each gets its ``mix`` share of the rows read: the
    dataset with the most rows for its weight is read once, the others as often as their share needs.
    Nothing is thrown away."""
    if not mix:
        return {name: 1.0 for name in rows}
    unit = max((n / mix[name] for name, n in rows.items() if n), default=0.0)
    return {name: (unit * mix[name] / n if n else 0.0) for name, n in rows.items()}


def stage_rows(stage: StageConfig, sources: dict[str, list[Sample]], seed: int) -> StageRows:
    """A stage's rows: ``max_samples_per_dataset`` applied (seeded), then ``mix`` as repeats."""
    rng = random.Random(seed)
    chosen: dict[str, list[Sample]] = {}
    for name in stage.datasets:
        rows = sources[name]
        if stage.max_samples_per_dataset is not None and len(rows) > stage.max_samples_per_dataset:
            rows = rng.sample(rows, stage.max_samples_per_dataset)
        chosen[name] = rows
    counts = {name: len(rows) for name, rows in chosen.items()}
    source_of = {id(sample): name for name, rows in chosen.items() for sample in rows}
    return StageRows([sample for name in stage.datasets for sample in chosen[name]], counts,
                     mix_repeats(stage.mix, counts), source_of)


def stage_samples(stage: StageConfig, sources: dict[str, list[Sample]], seed: int) -> list[Sample]:
    """A stage's rows before filtering (``max_samples_per_dataset`` applied; ``mix`` repeats rows
    in the batch sampler, not here: :func:`stage_rows`)."""
    return stage_rows(stage, sources, seed).samples


__all__ = ["read_sources", "mine_negatives", "negatives_wanted", "stage_samples", "stage_rows", "mix_repeats",
           "StageRows", "is_sentence_embedder",
           "resolve_base"]
