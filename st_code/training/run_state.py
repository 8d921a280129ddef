"""What a run's output folder was started with, so a rerun resumes only the same run.

``run.json`` records the run's identity: the resolved config, a fingerprint of every data source
(file and folder contents; hub sources by name), and st-code's code fingerprint. A rerun whose
identity differs stops with a line per difference and the two ways on: ``overwrite`` (remove this
run's outputs and start fresh) or ``resume`` (keep the finished stages, note the change in
``run.json``'s history, and go on).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

from st_code.errors import RunConflictError, UsageError
from st_code.fingerprint import code_fingerprint, path_fingerprint, stable_hash
from st_code.locking import LOCK_NAME
from st_code.outputs import check_output_folder, write_text_atomic
from st_code.training.config import CurriculumConfig

RUN_FILE = "run.json"
#: Everything a curriculum run writes into its folder (``overwrite`` removes these and nothing else).
RUN_OUTPUTS = ("stages", "data", "final", "report", "base_scores.json", "schedule.json", RUN_FILE, "config.yaml")
EXISTING_RUN_MODES = ("refuse", "overwrite", "resume")
#: What a run writes before it trains: its setup record and the data cache, which is stamped with its data's
#: fingerprint and rebuilt on any change. A folder holding nothing else has nothing a new setup could mix with.
BEFORE_TRAINING = (RUN_FILE, "config.yaml", "data")


def data_fingerprints(config: CurriculumConfig) -> dict[str, str]:
    """``{what: fingerprint}`` for every input the data is built from."""
    from st_code.data.readers import HUB_PREFIX, source_fingerprint

    prints: dict[str, str] = {}
    for name, source in config.data.sources.items():
        prints[f"data.sources.{name}"] = (f"hub:{source.path}" if source.path.startswith(HUB_PREFIX)
                                          else source_fingerprint(source.path))
    offline = config.data.offline
    if offline is not None:
        dirs = [path_fingerprint(d) for d in offline.code_dirs] if offline.code_dirs else [f"stdlib:{sys.version}"]
        packages = []
        if offline.include_package_docs:
            from st_code.data.offline_pairs import _metadata_files

            packages = sorted(p.parent.name for p in _metadata_files())
        jdk = None
        if offline.jdk_sources:
            from st_code.data.jdk_sources import resolve_jdk_sources

            source = resolve_jdk_sources(offline.jdk_sources)
            jdk = path_fingerprint(source) if source is not None else "none found"
        prints["data.offline"] = stable_hash({"code": dirs, "packages": packages, **({"jdk": jdk} if jdk else {})})
    return prints


def run_identity(config: CurriculumConfig) -> dict[str, Any]:
    settings = config.to_dict()
    settings.pop("output_dir", None)
    return {"config": settings, "data": data_fingerprints(config), "code": code_fingerprint()}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        items: dict[str, Any] = {}
        for key, inner in value.items():
            items.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return items
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        items = {}
        for i, inner in enumerate(value):
            items.update(_flatten(inner, f"{prefix}[{i}]"))
        return items
    return {prefix: value}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per setting, data source or code that differs between two identities."""
    lines = []
    before, after = _flatten(old.get("config", {})), _flatten(new.get("config", {}))
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            lines.append(f"{key}: {before.get(key, '(absent)')!r} -> {after.get(key, '(absent)')!r}")
    old_data, new_data = old.get("data", {}), new.get("data", {})
    for key in sorted(set(old_data) | set(new_data)):
        if old_data.get(key) != new_data.get(key):
            lines.append(f"{key}: its content changed" if key in old_data and key in new_data
                         else f"{key}: {'added' if key in new_data else 'removed'}")
    if old.get("code") != new.get("code"):
        lines.append(f"st-code's code: {old.get('code')} -> {new.get('code')}")
    return lines


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a curriculum run (its setup record, or an older run's stages)."""
    return (folder / RUN_FILE).is_file() or (folder / "stages").is_dir()


def prepare_output(out: Path, identity: dict[str, Any], mode: str = "refuse",
                   log: Callable[[str], None] = print) -> bool:
    """Check ``out`` against ``identity`` and record it; returns whether the run starts fresh.

    ``mode``: ``refuse`` (a differing or unrecorded earlier run is an error, unless it stopped before
    training anything: :data:`BEFORE_TRAINING`), ``overwrite`` (remove the earlier run's outputs first) or
    ``resume`` (keep them and go on)."""
    if mode not in EXISTING_RUN_MODES:
        raise UsageError(f"existing_run must be one of {EXISTING_RUN_MODES}, got {mode!r}")
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is a file; pass a folder (it is created if missing)")
    check_output_folder(out, flag="--output-dir", what="training run", owned=is_run_folder, ignore=(LOCK_NAME,))
    record_file = out / RUN_FILE
    earlier = [name for name in RUN_OUTPUTS if (out / name).exists()]
    record = json.loads(record_file.read_text()) if record_file.is_file() else None
    if record is not None and record.get("identity") == identity and mode != "overwrite":
        return False
    if earlier and mode == "refuse" and all(name in BEFORE_TRAINING for name in earlier):
        # the earlier run stopped before training (bad data, a refused setting): its corrected rerun starts here
        log(f"{out}: the run recorded there stopped before training anything; this run takes its place")
        record, earlier = None, []
    if earlier and mode == "refuse":
        if record is None:
            changes = ["the earlier run recorded no setup (run.json): it was started by an older st-code"]
        else:
            changes = differences(record["identity"], identity)
        listed = "\n".join(f"  - {line}" for line in changes)
        raise RunConflictError(
            f"{out} holds a run started with a different setup; resuming it would mix the two:\n{listed}\n"
            "Start fresh with --overwrite (removes that run's stages, data, model and report), keep its finished "
            "stages with --resume-anyway, or give this run another --output-dir")
    history = (record or {}).get("history", [])
    if earlier and mode == "overwrite":
        for name in earlier:
            target = out / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        log(f"--overwrite: removed the earlier run's {', '.join(earlier)} from {out}")
        history = []
    elif earlier and mode == "resume" and record is not None:
        history.append({"resumed": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "changes": differences(record["identity"], identity)})
        log(f"--resume-anyway: resuming {out} despite {len(history[-1]['changes'])} change(s)")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(record_file, json.dumps({"identity": identity, "history": history}, indent=2, default=str))
    return not (out / "stages").exists()


__all__ = ["is_run_folder", "run_identity", "data_fingerprints", "differences", "prepare_output", "RUN_OUTPUTS", "EXISTING_RUN_MODES",
           "BEFORE_TRAINING"]
