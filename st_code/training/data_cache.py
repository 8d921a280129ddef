"""The curriculum's data, built once per run and cached under ``<output_dir>/data``: every source's
rows with their mined hard negatives, in memory-mapped Arrow files (:mod:`st_code.training.sample_table`),
and the held-out sets. The cache is keyed by a fingerprint of
the data config, the data's content, the base (it may mine) and the stages' negatives; any change
rebuilds it. Only the main process builds; the others wait and read."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from sentence_transformers import SentenceTransformer

from st_code.data.records import RetrievalSet
from st_code.fingerprint import stable_hash
from st_code.training.config import CurriculumConfig
from st_code.outputs import atomic_path
from st_code.training.sample_table import SampleTable, write_table
from st_code.training.sources import iter_sources, mine_negatives, negatives_wanted

FINGERPRINT_FILE = "FINGERPRINT"
CACHE_FORMAT = "arrow-1"  # source-NNN.arrow (SampleTable); 0.3's source-NNN.jsonl caches are rebuilt


def data_fingerprint(config: CurriculumConfig, content: dict[str, str]) -> str:
    """What the cached data belongs to (``content``: the sources' content fingerprints)."""
    return stable_hash({"format": CACHE_FORMAT, "data": asdict(config.data), "content": content, "base": config.model.base,
                        "evaluation": config.evaluation.sets,
                        "stages": [(s.name, s.datasets, s.num_negatives) for s in config.stages]})


def prepare_data(data_dir: Path, config: CurriculumConfig, fingerprint: str, state,
                 embedder: Callable[[], tuple[SentenceTransformer, str]],
                 log: Callable[[str], None]) -> tuple[dict[str, SampleTable], dict[str, RetrievalSet]]:
    """``({source: its rows with negatives, on disk}, {held-out set: set})``, from the cache when it matches
    ``fingerprint``; ``embedder()`` gives the mining embedder (and its label) when mining is needed."""
    stamp = data_dir / FINGERPRINT_FILE
    with state.main_process_first():
        if not (stamp.is_file() and stamp.read_text() == fingerprint) and state.is_main_process:
            _build(data_dir, config, embedder, log)
            stamp.write_text(fingerprint)
    sources = {json.loads(p.with_suffix(".json").read_text())["name"]: SampleTable(p)
               for p in sorted(data_dir.glob("source-*.arrow"))}
    heldout = {}
    for path in sorted(data_dir.glob("heldout-*.json")):
        rs = RetrievalSet.from_json(json.loads(path.read_text()))
        heldout[rs.name] = rs
    return sources, heldout


def _build(data_dir: Path, config: CurriculumConfig, embedder: Callable[[], tuple[SentenceTransformer, str]],
           log: Callable[[str], None]) -> None:
    """Each source streamed to its Arrow file, then mined where its rows have fewer negatives than a
    stage asks (mining needs the whole source's text; nothing else holds more than a chunk)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for pattern in ("source-*", "heldout-*", "cache-*.arrow"):  # cache-*: datasets' cuts of the tables
        for stale in data_dir.glob(pattern):
            stale.unlink()
    hn = config.data.hard_negatives
    wanted = negatives_wanted(config.stages)
    heldout: dict[str, RetrievalSet] = {}
    model = None
    for index, (name, samples) in enumerate(iter_sources(config, heldout, log)):
        path = data_dir / f"source-{index:03d}.arrow"
        need = wanted.get(name, 0)
        with atomic_path(path) as tmp:
            count = write_table(samples, tmp, need)
        if need and hn.enabled and min(SampleTable(path).column("num_negatives"), default=need) < need:
            if model is None:
                model, label = embedder()
                log(f"mining hard negatives with {label}")
            mined = mine_negatives(list(SampleTable(path)), model, need, hn, log)
            with atomic_path(path) as tmp:
                count = write_table(mined, tmp, need)
            del mined
        path.with_suffix(".json").write_text(json.dumps({"name": name, "count": count}))
    for name, rs in heldout.items():
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        (data_dir / f"heldout-{safe}.json").write_text(json.dumps(rs.to_json()))


__all__ = ["prepare_data", "data_fingerprint"]
