"""What a finished run leaves behind: the final model's card, and only the files a user needs.

``card_details`` turns the run's config, its stages' records and its report into what
``st_code.model_card`` writes into ``final/README.md``. ``prune_checkpoints`` removes a finished
stage's trainer checkpoints (each a full copy of the weights plus optimizer state): the stage's
``model/`` and ``DONE.json`` are what a rerun, the report and the user read.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from st_code.assets import MINILM, MINILM_HUB_ID
from st_code.training.config import CurriculumConfig

LANGUAGE_CODES = {"English": "en", "Chinese": "zh"}


def offline_data_line(config: CurriculumConfig, code_languages: dict[str, int] | None = None) -> str | None:
    """What the run's offline data was built from, as the card says it (None: no offline data). With the
    training rows per language given, the JDK's Java is named only if Java rows were trained on (a machine
    without a JDK trains without it)."""
    o = config.data.offline
    if o is None:
        return None
    parts = [f"Python code under {len(o.code_dirs)} folder(s)" if o.code_dirs else "the Python standard library"]
    if o.include_package_docs:
        parts.append("installed packages' READMEs")
    if o.other_languages:
        parts.append("the documented code in other languages that installed packages ship")
    jdk_used = bool(o.jdk_sources) and (code_languages is None or "Java" in code_languages)
    if jdk_used:
        parts.append("Java from the training packages of the JDK's own sources")
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    modules = "st_code.data.offline_pairs" + (", st_code.data.jdk_sources" if jdk_used else "")
    return f"offline: pairs built from {listed} ({modules}); held-out modules and files kept out of training"


def card_details(config: CurriculumConfig, records: dict[str, dict[str, Any]], scores: dict[str, Any],
                 report_dir: Path, languages: Iterable[str] = (),
                 code_languages: dict[str, int] | None = None) -> dict[str, Any]:
    """The model card's training and evaluation sections for a finished run (``code_languages``: the
    training rows per programming language)."""
    m = config.model
    stages = []
    for stage in config.stages:
        record = records.get(stage.name, {})
        row: dict[str, Any] = {
            "name": stage.name, "datasets": stage.datasets,
            "steps": record.get("train", {}).get("global_step", stage.max_steps or f"{stage.epochs:g} epoch(s)"),
            "learning_rate": stage.learning_rate, "batch_size": stage.batch_size,
            "num_negatives": stage.num_negatives, "temperature": stage.temperature,
            "instructions": stage.instructions,
            "max_seq_length": stage.max_seq_length or m.max_seq_length,
        }
        if m.lora is not None:
            row["lora"] = f"r={m.lora.get('r', 32)}, alpha={m.lora.get('alpha', 64)}" if isinstance(m.lora, dict) \
                else "r=32, alpha=64"
            row["merge_lora"] = stage.merge_lora
        if stage.matryoshka_dims:
            row["matryoshka_dims"] = stage.matryoshka_dims
        stages.append(row)
    data = [f"{name}: {source.path}" + (f" (task {source.task})" if source.task else "")
            for name, source in config.data.sources.items()]
    offline = offline_data_line(config, code_languages)
    if offline:
        data.append(offline)
    if code_languages:
        data.append("programming languages (training rows): " + ", ".join(
            f"{language} ({count:,})" for language, count in sorted(code_languages.items(), key=lambda kv: -kv[1])))
    return {
        "model_id": config.publish.hub_model_id,
        "base": MINILM_HUB_ID if m.base == MINILM else m.base,  # the hub id, not st-code's alias
        "license": config.publish.license,
        "languages": sorted({LANGUAGE_CODES.get(language, language) for language in languages if language}),
        "recipe": "st-code train --config training_config.yaml",
        "stages": stages,
        "data": data,
        "scores": scores,
        "plots": [report_dir / "scores.png", report_dir / "loss.png"],
    }


def prune_checkpoints(stage_dir: Path, log: Callable[[str], None] = print) -> int:
    """Remove a finished stage's trainer checkpoints; returns the bytes freed."""
    checkpoints = stage_dir / "checkpoints"
    if not checkpoints.is_dir():
        return 0
    freed = sum(f.stat().st_size for f in checkpoints.rglob("*") if f.is_file())
    shutil.rmtree(checkpoints)
    log(f"  removed the stage's trainer checkpoints ({freed / 2**20:.0f} MB; publish.keep_checkpoints keeps them)")
    return freed


__all__ = ["card_details", "offline_data_line", "prune_checkpoints"]
