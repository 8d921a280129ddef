"""The Annealing curriculum (CodeR section 4) with CodeXEmbed's merge-between-stages, on
``SentenceTransformerTrainer``.

One :class:`AnnealingTrainer` run: build (or mine) the stage data once, evaluate the starting model,
then train each stage with GradCache InfoNCE (``CachedMultipleNegativesRankingLoss``, scale =
1/temperature) on one dataset per (task, language), evaluate, save, and move on. Every stage writes
its model and a ``DONE.json``; a rerun skips finished stages and resumes an interrupted one from
its last trainer checkpoint, so nothing already trained is lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import yaml
from accelerate import PartialState
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss,
)
from transformers.trainer_utils import get_last_checkpoint

import st_code
from st_code.data.offline_pairs import (
    HELDOUT_SET_NAMES, TEXT_ONLY, TEXT_ONLY_INSTRUCTION, RetrievalSet, build_offline_data, humaneval_retrieval,
)
from st_code.lora import LoraSettings, add_lora, has_lora, merge_lora, merged_copy
from st_code.modules import PMAPooling
from st_code.tasks import coder_pile_tasks, evaluation_tasks
from st_code.testing import minilm_path
from st_code.training.config import CurriculumConfig, OfflineDataConfig, StageConfig
from st_code.training.data import Sample, group_samples, is_beir_folder, load_samples, read_beir, read_samples, save_samples
from st_code.training.evaluate import evaluate_sets
from st_code.training.filters import FilterReport, embedder_topk_filter, llm_judge_filter
from st_code.training.report import markdown_table, write_report

logger = logging.getLogger(__name__)


def resolve_base(base: str) -> str:
    """``"minilm"`` -> the packaged all-MiniLM-L6-v2 folder; anything else unchanged."""
    return minilm_path() if base == "minilm" else base


def train_on_cpu() -> bool:
    """True when asked (``ACCELERATE_USE_CPU``) or when torch sees no accelerator.

    accelerate sets up multi-process CPU training (gloo) only when told ``cpu=True``; without it,
    ``torchrun --nproc_per_node 2`` on a CPU-only machine starts two unrelated single-process runs
    that race on the same output files. Passing this to both our ``PartialState`` and the trainer's
    arguments keeps one view of the ranks from data building to saving.
    """
    import torch
    from accelerate.utils import parse_flag_from_env

    return parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.accelerator.is_available()


def _dtype(name: str | None):
    import torch

    return None if name is None else getattr(torch, name)


class AnnealingTrainer:
    """Runs a :class:`CurriculumConfig` end to end; see the module docstring."""

    def __init__(self, config: CurriculumConfig, output_dir: str | Path | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.config = config
        self.out = Path(output_dir or config.output_dir)
        self.log = log
        self.use_cpu = train_on_cpu()
        self.state = PartialState(cpu=self.use_cpu)
        self.lora = LoraSettings.from_value(config.model.lora)
        self.last_train_metrics: dict[str, float] = {}

    # -- model -------------------------------------------------------------------------------
    def build_initial_model(self) -> SentenceTransformer:
        m = self.config.model
        return st_code.build_model(
            resolve_base(m.base), pooling=m.pooling, embedding_dim=m.embedding_dim, lora=self.lora,
            instruction_format=m.instruction_format, max_seq_length=m.max_seq_length, dtype=_dtype(m.dtype),
            attn_implementation=m.attn_implementation, bidirectional=m.bidirectional,
        )

    def _load_stage_model(self, path: Path) -> SentenceTransformer:
        model = st_code.load_model(path)
        model.max_seq_length = self.config.model.max_seq_length
        if has_lora(model):  # a reloaded adapter comes back frozen; train it and the head, not the base
            for name, parameter in model.named_parameters():
                parameter.requires_grad = "lora_" in name or not name.startswith("0.")
        return model

    # -- data --------------------------------------------------------------------------------
    def _data_fingerprint(self) -> str:
        data = asdict(self.config.data)
        data["_base"] = self.config.model.base
        return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def prepare_data(self, mining_model: SentenceTransformer | None) -> tuple[dict[str, list[Sample]], dict[str, RetrievalSet]]:
        """Samples per source (with mined negatives) and held-out sets, cached under ``output_dir/data``."""
        data_dir = self.out / "data"
        stamp = data_dir / "FINGERPRINT"
        fingerprint = self._data_fingerprint()
        with self.state.main_process_first():
            if not (stamp.is_file() and stamp.read_text() == fingerprint):
                if self.state.is_main_process:
                    self._build_data(data_dir, mining_model)
                    stamp.write_text(fingerprint)
        sources = {json.loads(p.with_suffix(".json").read_text())["name"]: read_samples(p)
                   for p in sorted(data_dir.glob("source-*.jsonl"))}
        heldout = {}
        for path in sorted(data_dir.glob("heldout-*.json")):
            rs = RetrievalSet.from_json(json.loads(path.read_text()))
            heldout[rs.name] = rs
        return sources, heldout

    def _build_data(self, data_dir: Path, mining_model: SentenceTransformer | None) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        for stale in list(data_dir.glob("source-*")) + list(data_dir.glob("heldout-*")):
            stale.unlink()
        cfg = self.config.data
        sources: dict[str, list[Sample]] = {}
        heldout: dict[str, RetrievalSet] = {}
        wants_builtin_sets = any(name in HELDOUT_SET_NAMES for name in self.config.evaluation.sets)
        if cfg.offline is not None or wants_builtin_sets:
            o = cfg.offline or OfflineDataConfig()
            self.log("building the offline data from code on this machine ...")
            offline = build_offline_data(o.code_dirs, seed=o.seed, heldout_percent=o.heldout_percent,
                                         max_pairs_per_task=o.max_pairs_per_task, max_code_lines=o.max_code_lines,
                                         include_package_docs=o.include_package_docs)
            self.log("  " + offline.summary())
            if cfg.offline is not None:
                for task, pairs in offline.train.items():
                    language = "text" if task == TEXT_ONLY else "python"
                    sources[f"offline:{task}"] = [Sample(q, p, [], task, language) for q, p in pairs]
            heldout.update(offline.heldout)
            heldout["HumanEval-doc2code"] = humaneval_retrieval()
        for name, src in cfg.sources.items():
            path = Path(src.path)
            if name in self.config.evaluation.sets and is_beir_folder(path):
                heldout[name] = read_beir(path, src.split)
                heldout[name].name = name
                continue
            sources[name] = load_samples(path, src.task or name, src.language, src.columns, src.max_samples, src.split)
            self.log(f"  source {name}: {len(sources[name])} samples from {path}")

        wanted = self._negatives_wanted()
        hn = cfg.hard_negatives
        for name, samples in sources.items():
            need = wanted.get(name, 0)
            if need and hn.enabled and min((len(s.negatives) for s in samples), default=0) < need:
                model = mining_model if hn.model is None else SentenceTransformer(resolve_base(hn.model))
                sources[name] = self._mine(samples, model, need)
        for index, (name, samples) in enumerate(sources.items()):
            path = data_dir / f"source-{index:03d}.jsonl"
            save_samples(samples, path)
            path.with_suffix(".json").write_text(json.dumps({"name": name, "count": len(samples)}))
        for name, rs in heldout.items():
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
            (data_dir / f"heldout-{safe}.json").write_text(json.dumps(rs.to_json()))

    def _negatives_wanted(self) -> dict[str, int]:
        wanted: dict[str, int] = {}
        for stage in self.config.stages:
            for name in stage.datasets:
                wanted[name] = max(wanted.get(name, 0), stage.num_negatives)
        return wanted

    def _mine(self, samples: list[Sample], model: SentenceTransformer, num_negatives: int) -> list[Sample]:
        """TopK-PercPos mining (relative margin) per (task, language) with faiss, via sentence-transformers."""
        from datasets import Dataset
        from sentence_transformers.util import mine_hard_negatives

        hn = self.config.data.hard_negatives
        groups: dict[tuple[str, str], list[Sample]] = {}
        for s in samples:
            groups.setdefault((s.task, s.language), []).append(s)
        mined: list[Sample] = []
        for (task, language), group in groups.items():
            self.log(f"  mining {num_negatives} hard negative(s) for {task} | {language} ({len(group)} pairs) ...")
            dataset = Dataset.from_dict({"anchor": [s.query for s in group], "positive": [s.positive for s in group]})
            result = mine_hard_negatives(
                dataset, model, num_negatives=num_negatives, relative_margin=hn.relative_margin,
                range_max=min(hn.range_max, max(num_negatives + 1, len(group) - 1)), sampling_strategy="top",
                output_format="n-tuple", use_faiss=True, batch_size=hn.batch_size, verbose=False,
            )
            for row in result:
                negatives = [row[f"negative_{j + 1}"] for j in range(num_negatives)]
                mined.append(Sample(row["anchor"], row["positive"], negatives, task, language))
        return mined

    # -- stages ------------------------------------------------------------------------------
    def _instruction(self, task: str) -> str | None:
        for name, src in self.config.data.sources.items():
            if (src.task or name) == task and src.instruction:
                return src.instruction
        if task in coder_pile_tasks():
            return coder_pile_tasks()[task].instruction
        if task in evaluation_tasks():
            return evaluation_tasks()[task].instruction
        return TEXT_ONLY_INSTRUCTION if task == TEXT_ONLY else None

    def _stage_samples(self, stage: StageConfig, sources: dict[str, list[Sample]], model: SentenceTransformer,
                       reports: list[FilterReport]) -> list[Sample]:
        rng = random.Random(self.config.seed)
        samples: list[Sample] = []
        for name in stage.datasets:
            chosen = list(sources[name])
            if stage.max_samples_per_dataset is not None and len(chosen) > stage.max_samples_per_dataset:
                chosen = rng.sample(chosen, stage.max_samples_per_dataset)
            samples.extend(chosen)
        for flt in stage.filters:
            if flt.type == "embedder_topk":
                reference = model if flt.model is None else SentenceTransformer(resolve_base(flt.model))
                samples, report = embedder_topk_filter(samples, reference, k=flt.k)
            else:
                instructions = {s.task: self._instruction(s.task) or s.task for s in samples}
                samples, report = llm_judge_filter(samples, instructions, flt.llm, flt.api_base, tuple(flt.keep),
                                                   flt.concurrency, flt.timeout)
            reports.append(report)
            self.log(f"  filter {report.line()}")
        if not samples:
            raise ValueError(f"stage {stage.name!r}: no training samples left after filtering")
        return samples

    def _train_stage(self, index: int, stage: StageConfig, model: SentenceTransformer,
                     sources: dict[str, list[Sample]], stage_dir: Path) -> tuple[list[tuple[int, float]], list[FilterReport]]:
        reports: list[FilterReport] = []
        samples = self._stage_samples(stage, sources, model, reports)
        datasets = group_samples(samples, stage.num_negatives)
        self.log(f"stage {index + 1} '{stage.name}': {sum(len(d) for d in datasets.values())} samples in "
                 f"{len(datasets)} dataset(s), {stage.num_negatives} hard negative(s), temperature {stage.temperature}")
        prompts = None
        if stage.instructions:
            fmt = self.config.model.instruction_format
            prompts = {key: {"anchor": st_code.format_instruction(self._instruction(key.split(" | ")[0]) or "", fmt)}
                       for key in datasets if self._instruction(key.split(" | ")[0])}
        lr_mapping = {}
        if stage.head_learning_rate is not None:
            for position, module in enumerate(model):
                if isinstance(module, PMAPooling):
                    lr_mapping[rf"(^|\.){position}\."] = stage.head_learning_rate
        args = SentenceTransformerTrainingArguments(
            output_dir=str(stage_dir / "checkpoints"), learning_rate=stage.learning_rate,
            num_train_epochs=stage.epochs, max_steps=stage.max_steps if stage.max_steps is not None else -1,
            per_device_train_batch_size=stage.batch_size, warmup_steps=stage.warmup_ratio,
            multi_dataset_batch_sampler=stage.sampler, prompts=prompts, learning_rate_mapping=lr_mapping,
            logging_steps=self.config.logging_steps, save_strategy="steps", save_steps=stage.save_steps,
            save_total_limit=2, seed=self.config.seed, bf16=self.config.bf16, report_to=[],
            dataloader_drop_last=True, use_cpu=self.use_cpu,
            ddp_find_unused_parameters=False,
        )
        gather = self.config.gather_across_devices and self.state.num_processes > 1
        if stage.gradcache:
            loss = CachedMultipleNegativesRankingLoss(model, scale=1.0 / stage.temperature,
                                                      mini_batch_size=stage.mini_batch_size, gather_across_devices=gather)
        else:  # GradCache trades a second forward pass for memory; skip it where memory is no issue
            loss = MultipleNegativesRankingLoss(model, scale=1.0 / stage.temperature, gather_across_devices=gather)
        if self.config.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=datasets, loss=loss)
        checkpoint = None
        if (stage_dir / "checkpoints").is_dir():
            checkpoint = get_last_checkpoint(str(stage_dir / "checkpoints"))
            if checkpoint:
                self.log(f"  resuming stage '{stage.name}' from {checkpoint}")
        inference_length = model.max_seq_length
        if stage.max_seq_length is not None:
            model.max_seq_length = stage.max_seq_length
        try:
            trainer.train(resume_from_checkpoint=checkpoint)
        finally:
            model.max_seq_length = inference_length
        losses = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
        summary = next((e for e in reversed(trainer.state.log_history) if "train_runtime" in e), {})
        self.last_train_metrics = {k: summary[k] for k in ("train_runtime", "train_samples_per_second") if k in summary}
        # provenance: how many processes trained, and the batch the loss saw across them
        self.last_train_metrics["world_size"] = trainer.args.world_size
        self.last_train_metrics["global_batch_size"] = (trainer.args.per_device_train_batch_size * trainer.args.world_size
                                                        * trainer.args.gradient_accumulation_steps)
        return losses, reports

    # -- run ---------------------------------------------------------------------------------
    def _evaluate(self, model: SentenceTransformer, heldout: dict[str, RetrievalSet], use_instructions: bool) -> dict:
        ev = self.config.evaluation
        sets = {name: heldout[name] for name in ev.sets if name in heldout}
        missing = [name for name in ev.sets if name not in heldout]
        if missing:
            self.log(f"  (evaluation sets not available and skipped: {missing})")
        return evaluate_sets(model, sets, use_instructions, self.config.model.instruction_format, ev.batch_size,
                             ev.max_queries)

    def run(self) -> dict[str, Any]:
        """Train every stage (skipping finished ones), evaluate, save ``final`` and the report."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.state.is_main_process:
            (self.out / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        model = self.build_initial_model()
        sources, heldout = self.prepare_data(mining_model=model)
        scores: dict[str, dict] = {}
        losses: dict[str, list] = {}
        base_scores_file = self.out / "base_scores.json"
        if base_scores_file.is_file():
            scores["base"] = json.loads(base_scores_file.read_text())
        elif self.state.is_main_process:
            self.log("evaluating the base model ...")
            base = SentenceTransformer(resolve_base(self.config.model.base))  # as its users would load it
            scores["base"] = self._evaluate(base, heldout, use_instructions=False)
            base_scores_file.write_text(json.dumps(scores["base"]))
            del base
        self._log_scores("base", scores.get("base"))

        used_instructions = False
        for index, stage in enumerate(self.config.stages):
            stage_dir = self.out / "stages" / f"{index + 1}-{stage.name}"
            done = stage_dir / "DONE.json"
            used_instructions = used_instructions or stage.instructions
            if done.is_file():
                record = json.loads(done.read_text())
                self.log(f"stage {index + 1} '{stage.name}' already finished; loading it")
                model = self._load_stage_model(stage_dir / "model")
            else:
                stage_losses, reports = self._train_stage(index, stage, model, sources, stage_dir)
                if stage.merge_lora:
                    merge_lora(model)
                self._match_prompts_to_training(model, used_instructions)
                if self.state.is_main_process:
                    model.save(str(stage_dir / "model"))
                    record = {"losses": stage_losses, "filters": [asdict(r) for r in reports],
                              "train": self.last_train_metrics,
                              "scores": self._evaluate(model, heldout, used_instructions)}
                    tmp = done.with_suffix(".tmp")
                    tmp.write_text(json.dumps(record, indent=2))
                    tmp.replace(done)
                self.state.wait_for_everyone()
                record = json.loads(done.read_text())
            scores[stage.name] = record["scores"]
            losses[stage.name] = [tuple(x) for x in record["losses"]]
            self._log_scores(stage.name, scores[stage.name])
            if stage.merge_lora and self.lora is not None and index + 1 < len(self.config.stages) and not has_lora(model):
                add_lora(model, r=self.lora.r, alpha=self.lora.alpha, dropout=self.lora.dropout,
                         target_modules=self.lora.target_modules, **self.lora.extra)

        result: dict[str, Any] = {"scores": scores, "final": str(self.out / "final")}
        if self.state.is_main_process:
            self._match_prompts_to_training(model, used_instructions)
            final = merged_copy(model) if has_lora(model) else model
            final.save(str(self.out / "final"))
            table = write_report(self.out / "report", scores, losses)
            result["table"] = table
            self.log("\n" + table)
            self.log(f"\nmodel: {self.out / 'final'}\nreport: {self.out / 'report'}")
        return result

    def _match_prompts_to_training(self, model: SentenceTransformer, used_instructions: bool) -> None:
        """A saved model carries instruction prompts only if it was trained with them: mteb and
        ``encode_query`` apply ``model.prompts`` by themselves, and an instruction the model never saw
        costs retrieval quality."""
        if used_instructions:
            model.prompts = st_code.build_prompts(self.config.model.instruction_format)
        else:
            model.prompts = {}
        model.default_prompt_name = None

    def _log_scores(self, row: str, results: dict | None) -> None:
        if results:
            self.log(markdown_table({row: results}).splitlines()[-1])


__all__ = ["AnnealingTrainer", "resolve_base", "train_on_cpu", "HELDOUT_SET_NAMES"]
