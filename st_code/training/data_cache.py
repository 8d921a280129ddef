"""The curriculum's data, built once per run and cached under ``<output_dir>/data``: every source's
rows with their mined hard negatives, and the held-out sets. The cache is keyed by a fingerprint of
the data config, the data's content, the base (it may mine) and the stages' negatives; any change
rebuilds it. Only the main process builds; the others wait and read."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from sentence_transformers import SentenceTransformer

from st_code.data.records import RetrievalSet, Sample
from st_code.fingerprint import stable_hash
from st_code.training.config import CurriculumConfig
from st_code.training.stage_datasets import read_samples, save_samples
from st_code.training.sources import mine_negatives, negatives_wanted, read_sources

FINGERPRINT_FILE = "FINGERPRINT"


def data_fingerprint(config: CurriculumConfig, content: dict[str, str]) -> str:
    """What the cached data belongs to (``content``: the sources' content fingerprints)."""
    return stable_hash({"data": asdict(config.data), "content": content, "base": config.model.base,
                        "evaluation": config.evaluation.sets,
                        "stages": [(s.name, s.datasets, s.num_negatives) for s in config.stages]})


def prepare_data(data_dir: Path, config: CurriculumConfig, fingerprint: str, state,
                 embedder: Callable[[], tuple[SentenceTransformer, str]],
                 log: Callable[[str], None]) -> tuple[dict[str, list[Sample]], dict[str, RetrievalSet]]:
    """``({source: samples with negatives}, {held-out set: set})``, from the cache when it matches
    ``fingerprint``; ``embedder()`` gives the mining embedder (and its label) when mining is needed."""
    stamp = data_dir / FINGERPRINT_FILE
    with state.main_process_first():
        if not (stamp.is_file() and stamp.read_text() == fingerprint) and state.is_main_process:
            _build(data_dir, config, embedder, log)
            stamp.write_text(fingerprint)
    sources = {json.loads(p.with_suffix(".json").read_text())["name"]: read_samples(p)
               for p in sorted(data_dir.glob("source-*.jsonl"))}
    heldout = {}
    for path in sorted(data_dir.glob("heldout-*.json")):
        rs = RetrievalSet.from_json(json.loads(path.read_text()))
        heldout[rs.name] = rs
    return sources, heldout


def _build(data_dir: Path, config: CurriculumConfig, embedder: Callable[[], tuple[SentenceTransformer, str]],
           log: Callable[[str], None]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in list(data_dir.glob("source-*")) + list(data_dir.glob("heldout-*")):
        stale.unlink()
    sources, heldout = read_sources(config, log)
    hn = config.data.hard_negatives
    model = None
    for name, samples in sources.items():
        need = negatives_wanted(config.stages).get(name, 0)
        if need and hn.enabled and min((len(s.negatives) for s in samples), default=0) < need:
            if model is None:
                model, label = embedder()
                log(f"mining hard negatives with {label}")
            sources[name] = mine_negatives(samples, model, need, hn, log)
    for index, (name, samples) in enumerate(sources.items()):
        path = data_dir / f"source-{index:03d}.jsonl"
        save_samples(samples, path)
        path.with_suffix(".json").write_text(json.dumps({"name": name, "count": len(samples)}))
    for name, rs in heldout.items():
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        (data_dir / f"heldout-{safe}.json").write_text(json.dumps(rs.to_json()))


__all__ = ["prepare_data", "data_fingerprint"]
