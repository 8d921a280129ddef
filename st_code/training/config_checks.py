"""Checking a curriculum before any training: names that must resolve, paths that must exist, numbers in
range; each problem is one :class:`ConfigError` naming its key."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from st_code.errors import UsageError
from st_code.pooling_names import POOLINGS
from st_code.training.config import ConfigError, CurriculumConfig, DatasetSource, FilterConfig


FILTER_TYPES = ("embedder_topk", "difficulty", "llm_judge")


def _check_filter(flt: FilterConfig, where: str) -> None:
    from st_code.data.records import DIFFICULTY_LABELS

    if flt.type not in FILTER_TYPES:
        raise ConfigError(f"{where}.type: {flt.type!r}; use one of {FILTER_TYPES}")
    if flt.type == "llm_judge" and not flt.llm:
        raise ConfigError(f"{where}.llm: the llm_judge filter needs a litellm model name")
    if flt.rejudge and flt.type != "llm_judge":
        raise ConfigError(f"{where}.rejudge: only the llm_judge filter asks an LLM; set type: llm_judge or drop rejudge")
    if flt.unlabeled not in ("keep", "drop"):
        raise ConfigError(f"{where}.unlabeled: {flt.unlabeled!r}; use keep or drop")
    unknown = sorted(set(flt.keep) - set(DIFFICULTY_LABELS))
    if unknown:
        raise ConfigError(f"{where}.keep: unknown label(s) {unknown}; CodeR Table 17 labels are {DIFFICULTY_LABELS}")


def _check_source(name: str, source: DatasetSource) -> None:
    """The path exists and its first rows read as training pairs (hub sources are read at run time)."""
    from st_code.data.readers import HUB_PREFIX, DataError, probe_source

    if source.path.startswith(HUB_PREFIX):
        return
    if not Path(source.path).exists():
        raise ConfigError(f"data.sources.{name}.path: {source.path} does not exist")
    try:
        probe_source(source.path, source.columns, source.split)
    except DataError as exc:
        raise ConfigError(f"data.sources.{name}.path: {exc}") from None


def _finite_numbers(node: Any, where: str) -> None:
    """Every float in the config is a real number (YAML's .nan / .inf are not)."""
    import math

    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            _finite_numbers(getattr(node, f.name), f"{where}.{f.name}" if where else f.name)
    elif isinstance(node, dict):
        for key, value in node.items():
            _finite_numbers(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _finite_numbers(value, f"{where}[{i}]")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"{where}: must be a finite number, got {node}")


def _at_least(value: float | None, low: float, where: str, optional: bool = True) -> None:
    if value is None and optional:
        return
    if value is None or value < low:
        raise ConfigError(f"{where}: must be >= {low:g}, got {value}")


def _in_range(value: float, low: float, high: float, where: str) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{where}: must be between {low:g} and {high:g}, got {value}")


def _check_numbers(config: CurriculumConfig) -> None:
    """Numbers that parse but make no sense fail here, by key, instead of deep inside a run."""
    _finite_numbers(config, "")
    m = config.model
    _at_least(m.max_seq_length, 1, "model.max_seq_length", optional=False)
    _at_least(m.embedding_dim, 1, "model.embedding_dim")
    _at_least(m.pma_num_heads, 1, "model.pma_num_heads")
    if m.embedding_dim and m.pma_num_heads and m.embedding_dim % m.pma_num_heads:
        raise ConfigError(f"model.pma_num_heads: {m.pma_num_heads} does not divide embedding_dim {m.embedding_dim}")
    if m.lora:
        lora = {"alpha": m.lora.get("lora_alpha"), "dropout": m.lora.get("lora_dropout"), **m.lora}
        r = lora.get("r", 32)
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ConfigError(f"model.lora.r: the LoRA rank must be an integer >= 1, got {r!r}")
        for key in ("alpha", "dropout"):
            if lora.get(key) is not None and (isinstance(lora[key], bool) or not isinstance(lora[key], (int, float))):
                raise ConfigError(f"model.lora.{key}: expected a number, got {lora[key]!r}")
        if lora.get("alpha") is not None and not lora["alpha"] > 0:
            raise ConfigError(f"model.lora.alpha: must be > 0, got {lora['alpha']!r}")
        if lora.get("dropout") is not None and not 0 <= lora["dropout"] < 1:
            raise ConfigError(f"model.lora.dropout: must be in [0, 1), got {lora['dropout']!r}")
    if config.data.offline is not None:
        o = config.data.offline
        _in_range(o.heldout_percent, 1, 99, "data.offline.heldout_percent")
        _at_least(o.max_pairs_per_task, 1, "data.offline.max_pairs_per_task")
        _at_least(o.max_code_lines, 1, "data.offline.max_code_lines", optional=False)
    hn = config.data.hard_negatives
    _in_range(hn.relative_margin, 0, 0.999, "data.hard_negatives.relative_margin")
    for key in ("num_negatives", "range_max", "batch_size"):
        _at_least(getattr(hn, key), 1, f"data.hard_negatives.{key}", optional=False)
    for name, source in config.data.sources.items():
        _at_least(source.max_samples, 1, f"data.sources.{name}.max_samples")
    for i, stage in enumerate(config.stages):
        where = f"stages[{i}] ({stage.name})"
        if not stage.epochs > 0:
            raise ConfigError(f"{where}.epochs: must be > 0, got {stage.epochs}")
        _at_least(stage.max_steps, 1, f"{where}.max_steps")
        _in_range(stage.warmup_ratio, 0, 1, f"{where}.warmup_ratio")
        _at_least(stage.warmup_steps, 0, f"{where}.warmup_steps")
        if isinstance(stage.learning_rate, (int, float)) and not stage.learning_rate > 0:
            raise ConfigError(f"{where}.learning_rate: must be > 0, got {stage.learning_rate}")
        _in_range(stage.end_learning_rate, 0, stage.learning_rate, f"{where}.end_learning_rate")
        _at_least(stage.weight_decay, 0, f"{where}.weight_decay", optional=False)
        _at_least(stage.save_steps, 1, f"{where}.save_steps", optional=False)
        _at_least(stage.max_samples_per_dataset, 1, f"{where}.max_samples_per_dataset")
        _at_least(stage.max_seq_length, 1, f"{where}.max_seq_length")
        if stage.head_learning_rate is not None and not stage.head_learning_rate > 0:
            raise ConfigError(f"{where}.head_learning_rate: must be > 0, got {stage.head_learning_rate}")
        for j, flt in enumerate(stage.filters):
            _at_least(flt.k, 1, f"{where}.filters[{j}].k", optional=False)
            _at_least(flt.concurrency, 1, f"{where}.filters[{j}].concurrency", optional=False)
            if not flt.timeout > 0:
                raise ConfigError(f"{where}.filters[{j}].timeout: must be > 0 seconds, got {flt.timeout}")
    _at_least(config.evaluation.batch_size, 1, "evaluation.batch_size", optional=False)
    _at_least(config.evaluation.max_queries, 1, "evaluation.max_queries")
    _at_least(config.logging_steps, 1, "logging_steps", optional=False)


def validate(config: CurriculumConfig) -> None:
    """Cross-field checks: names that must resolve, paths that must exist, values in range."""
    hub_id = config.publish.hub_model_id
    if hub_id is not None and (hub_id.count("/") != 1 or not all(hub_id.split("/"))):
        raise ConfigError(f"publish.hub_model_id: {hub_id!r} is not a hub repository id; use 'owner/name'")
    if config.model.pooling not in POOLINGS:
        raise ConfigError(f"model.pooling: {config.model.pooling!r} is not one of {POOLINGS}")
    if config.model.dtype not in (None, "bfloat16", "float16", "float32"):
        raise ConfigError(f"model.dtype: {config.model.dtype!r}; use bfloat16, float16, float32 or null")
    if config.model.liger_kernel not in (True, False, "auto"):
        raise ConfigError(f"model.liger_kernel: {config.model.liger_kernel!r}; use true, false or auto")
    if not config.stages:
        raise ConfigError("stages: at least one stage is required")
    _check_numbers(config)
    available = set(config.data.sources)
    if config.data.offline is not None:
        from st_code.data.offline_pairs import CODE2TEXT, CODE_CONTEXT, TEXT2CODE, TEXT_ONLY

        available |= {f"offline:{t}" for t in (TEXT2CODE, CODE2TEXT, CODE_CONTEXT, TEXT_ONLY)}
        for i, folder in enumerate(config.data.offline.code_dirs or []):
            if not Path(folder).is_dir():
                raise ConfigError(f"data.offline.code_dirs[{i}]: folder {folder} does not exist")
        jdk = config.data.offline.jdk_sources
        if isinstance(jdk, str) and not Path(jdk).is_file():
            raise ConfigError(f"data.offline.jdk_sources: {jdk} is no file; give a JDK's lib/src.zip, or true to find "
                              "the installed JDK's")
    from st_code.prompts import INSTRUCTION_SETS

    if config.model.instruction_set not in INSTRUCTION_SETS:
        raise ConfigError(f"model.instruction_set: {config.model.instruction_set!r} is not one of {INSTRUCTION_SETS}")
    if config.optimizer not in ("per_stage", "continuous"):
        raise ConfigError(f"optimizer: {config.optimizer!r}; use per_stage or continuous")
    if config.optimizer == "continuous" and len({s.learning_rate for s in config.stages}) > 1:
        raise ConfigError("optimizer: continuous runs one learning-rate schedule across all stages; give every stage "
                          f"the same learning_rate (got {[s.learning_rate for s in config.stages]})")
    if config.compile:
        from st_code.training.compiling import check_compile_settings

        try:
            check_compile_settings(config.compile_backend, config.compile_mode, config.gradient_checkpointing)
        except UsageError as exc:
            raise ConfigError(str(exc)) from None
    shape_multiple = config.packed_shape_multiple
    if shape_multiple not in ("auto", None) and not (
            isinstance(shape_multiple, list) and len(shape_multiple) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape_multiple)):
        raise ConfigError(f"packed_shape_multiple: [rows, width] (whole numbers >= 1, e.g. [8, 128]), null or auto, "
                          f"got {shape_multiple!r}")
    if config.record_batches < 0:
        raise ConfigError(f"record_batches: {config.record_batches} must be >= 0")
    workers = config.dataloader_workers
    if workers != "auto" and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ConfigError(f"dataloader_workers: a whole number >= 0 or auto, got {workers!r}")
    for name, source in config.data.sources.items():
        _check_source(name, source)
    for i, stage in enumerate(config.stages):
        where = f"stages[{i}] ({stage.name})"
        if not stage.datasets:
            raise ConfigError(f"{where}.datasets: a stage with no data")
        for name in stage.datasets:
            if name not in available:
                raise ConfigError(f"{where}.datasets: unknown dataset {name!r}; available: {sorted(available)}")
        if stage.learning_rate <= 0 or stage.temperature <= 0:
            raise ConfigError(f"{where}: learning_rate and temperature must be > 0")
        if stage.batch_size < 2:
            raise ConfigError(f"{where}.batch_size: must be >= 2 (in-batch negatives), got {stage.batch_size}")
        if stage.mini_batch_size != "auto" and (not isinstance(stage.mini_batch_size, int)
                                                or stage.mini_batch_size < 1):
            raise ConfigError(f"{where}.mini_batch_size: a whole number >= 1 or auto, got {stage.mini_batch_size!r}")
        if stage.mini_batch_tokens is not None and stage.mini_batch_tokens < 1:
            raise ConfigError(f"{where}.mini_batch_tokens: must be >= 1, got {stage.mini_batch_tokens}")
        if not 0 <= stage.mini_batch_padding < 1:
            raise ConfigError(f"{where}.mini_batch_padding: a share in [0, 1), got {stage.mini_batch_padding}")
        overhead = stage.mini_batch_overhead
        if overhead not in ("auto", None) and (not isinstance(overhead, int) or isinstance(overhead, bool)
                                               or overhead < 0):
            raise ConfigError(f"{where}.mini_batch_overhead: token slots (a whole number >= 0), auto or null, "
                              f"got {overhead!r}")
        if not (isinstance(stage.pack_sequences, bool) or stage.pack_sequences == "auto"):
            raise ConfigError(f"{where}.pack_sequences: true, false or auto, got {stage.pack_sequences!r}")
        if stage.pack_sequences is True and not (stage.gradcache and stage.length_sorted):
            raise ConfigError(f"{where}.pack_sequences: packs GradCache's length-sorted mini-batches; it needs "
                              "gradcache: true and length_sorted: true")
        if stage.sampler not in ("proportional", "round_robin"):
            raise ConfigError(f"{where}.sampler: {stage.sampler!r}; use proportional or round_robin")
        if stage.num_negatives < 0:
            raise ConfigError(f"{where}.num_negatives must be >= 0")
        if stage.infonce not in ("joint", "two_term"):
            raise ConfigError(f"{where}.infonce: {stage.infonce!r}; use joint (one softmax: CodeR, CodeXEmbed) or "
                              "two_term (C2LLM's in-batch + hard-negative terms)")
        if stage.infonce == "two_term" and stage.matryoshka_dims:
            raise ConfigError(f"{where}: infonce two_term does not combine with matryoshka_dims yet; use joint")
        if stage.matryoshka_dims is not None and (not stage.matryoshka_dims
                                                  or any(d < 1 for d in stage.matryoshka_dims)):
            raise ConfigError(f"{where}.matryoshka_dims: a list of dimensions >= 1, e.g. [384, 128, 64], "
                              f"got {stage.matryoshka_dims}")
        for j, flt in enumerate(stage.filters):
            _check_filter(flt, f"{where}.filters[{j}]")
        named = [name for key in stage.mix or {} for name in key.split("+")]
        if stage.mix is not None and (sorted(named) != sorted(stage.datasets)):
            raise ConfigError(f"{where}.mix: give each of this stage's datasets {stage.datasets} one weight, alone "
                              f"or in a share joined by '+' (msmarco+nq: 1), got {sorted(stage.mix)}")
        for name, weight in (stage.mix or {}).items():
            if not weight > 0:
                raise ConfigError(f"{where}.mix.{name}: the weight must be > 0, got {weight}")
        if stage.mix is not None and stage.sampler != "proportional":
            raise ConfigError(f"{where}.mix sets each dataset's share of the batches, which round_robin overrides; "
                              "use sampler: proportional (the default) or drop mix")
        if stage.merge_lora and not config.model.lora:
            raise ConfigError(f"{where}.merge_lora: true needs model.lora to be set")
    names = [s.name for s in config.stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"stages: stage names must be unique, got {names}")
    from st_code.data.offline_pairs import HELDOUT_SET_NAMES

    known_sets = set(HELDOUT_SET_NAMES) | set(config.data.sources)
    for name in config.evaluation.sets:
        if name not in known_sets:
            raise ConfigError(f"evaluation.sets: unknown set {name!r}; built-in: {sorted(HELDOUT_SET_NAMES)}")


__all__ = ["FILTER_TYPES", "validate"]
