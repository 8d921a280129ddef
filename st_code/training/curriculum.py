"""The Annealing curriculum (CodeR section 4) with CodeXEmbed's merge-between-stages and continuous
optimizer, on ``SentenceTransformerTrainer``.

One :class:`CurriculumRunner` run: read (and mine) the data once, evaluate the starting model, then
train each stage with GradCache InfoNCE (``CachedMultipleNegativesRankingLoss``, scale =
1/temperature) on one dataset per (task, programming language, natural language, instruction),
evaluate, save, and move on. Every stage writes its model and a ``DONE.json``; a rerun skips
finished stages and resumes an interrupted one from its last trainer checkpoint, so nothing
already trained is lost.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import yaml
from accelerate import PartialState
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments
from transformers import set_seed

from st_code.data.records import RetrievalSet, Sample
from st_code.errors import UsageError
from st_code.fingerprint import stable_hash
from st_code.hub import push_folder
from st_code.locking import FolderLock
from st_code.outputs import write_text_atomic
from st_code.lora import LoraSettings, add_lora, has_lora, merge_lora, merged_copy, skip_lora_input_cast_under_autocast
from st_code.mining import load_embedder
from st_code.modules import PMAPooling
from st_code.training.batch_record import RecordingCollator
from st_code.training.compiling import check_cuda_graphs_with_gradcache, compiled_layers, records_cuda_graphs
from st_code.training.config import CurriculumConfig, StageConfig
from st_code.training.stage_datasets import StageDatasets, build_stage_datasets, check_batch_fits
from st_code.training.evaluate import evaluate_dims, evaluate_stage
from st_code.training.filters import FilterReport, difficulty_filter, embedder_topk_filter, llm_judge_filter
from st_code.training.instructions import InstructionPlan, check_no_placeholders, match_prompts_to_training
from st_code.training.stage_loss import stage_loss
from st_code.training.packing import check_stage_packing, resolve_shape_multiple
from st_code.training.publish import card_details, prune_checkpoints
from st_code.training.run_report import markdown_table, write_report
from st_code.training.run_state import prepare_output, run_identity
from st_code.training.data_cache import data_fingerprint, prepare_data
from st_code.training.models import (build_training_model, enable_activation_checkpointing, float32_trainable,
                                     kernel_lines, load_stage_model, mining_embedder, train_on_cpu)
from st_code.training.sources import resolve_base
from st_code.training.stage_rows import StageRows, column_of, stage_rows
from st_code.training.stage_plan import plan_lines, planned_steps, steps_of
from st_code.training.stage_trainer import (
    LinearSchedule, StageTrainer, load_optimizer_state, loader_settings, optimizer_state_by_name, resume_checkpoint,
    save_optimizer_state, stage_schedule, warmup_steps_of,
)

OPTIMIZER_STATE = "optimizer_state.pt"  # a finished stage's AdamW state, for a continuous optimizer
SCHEDULE_FILE = "schedule.json"  # the continuous schedule, fixed at the first run


def _quiet(message: str) -> None:
    """The log of the ranks other than the main one: they train the same stages in step with it."""


class CurriculumRunner:
    """Runs a :class:`CurriculumConfig` end to end; see the module docstring."""

    def __init__(self, config: CurriculumConfig, output_dir: str | Path | None = None,
                 log: Callable[[str], None] = print, existing_run: str = "refuse") -> None:
        """``existing_run``: what to do when the output folder holds a run started with another setup
        (config, data or st-code version): ``refuse`` (default), ``overwrite`` or ``resume``."""
        self.config = config
        self.out = Path(output_dir or config.output_dir)
        self.existing_run = existing_run
        self.use_cpu = train_on_cpu()
        self.state = PartialState(cpu=self.use_cpu)
        # one copy of the progress under torchrun / accelerate, as the trainer's own logs; errors still raise
        self.log = log if self.state.is_main_process else _quiet
        self.lora = LoraSettings.from_value(config.model.lora)
        self.instructions = InstructionPlan(config.model.instruction_set, config.model.instruction_format)
        self.last_train_metrics: dict[str, Any] = {}

    # -- model and data --------------------------------------------------------------------
    def build_initial_model(self) -> SentenceTransformer:
        """The configured base with its fresh parts (LoRA, a PMA head) drawn from ``seed``: without it they
        came from whatever the process had drawn before, so a second run in one process (a sweep, a
        notebook) trained from other weights than the first."""
        set_seed(self.config.seed)
        return build_training_model(self.config.model)

    def _load_stage_model(self, path: Path) -> SentenceTransformer:
        return load_stage_model(path, self.config.model)

    def prepare_data(self, mining_model: SentenceTransformer | None) -> tuple[dict[str, list[Sample]], dict[str, RetrievalSet]]:
        """Samples per source (with mined negatives) and held-out sets, cached under ``output_dir/data``."""
        built = mining_model

        def embedder():
            return mining_embedder(self.config, built if built is not None else self.build_initial_model())

        fingerprint = data_fingerprint(self.config, self.identity["data"])
        return prepare_data(self.out / "data", self.config, fingerprint, self.state, embedder, self.log)

    # -- stages ------------------------------------------------------------------------------
    def _filtered_samples(self, stage: StageConfig, sources: dict[str, list[Sample]], model: SentenceTransformer,
                          reports: list[FilterReport], stage_dir: Path) -> tuple[list[Sample], StageRows]:
        rows = stage_rows(stage, sources, self.config.seed)
        samples = rows.samples
        for flt in stage.filters:
            if flt.type == "embedder_topk":
                reference = (merged_copy(model) if has_lora(model) else model) if flt.model is None \
                    else load_embedder(flt.model)
                samples, report = embedder_topk_filter(samples, reference, k=flt.k, query_prompt=flt.query_prompt,
                                                       document_prompt=flt.document_prompt)
            elif flt.type == "difficulty":
                samples, report = difficulty_filter(samples, tuple(flt.keep), flt.unlabeled)
            else:
                samples, report = llm_judge_filter(samples, self._judge_instruction, flt.llm, flt.api_base,
                                                   tuple(flt.keep), flt.concurrency, flt.timeout,
                                                   journal=stage_dir / "judge-journal.jsonl", rejudge=flt.rejudge)
            reports.append(report)
            self.log(f"  filter {report.line()}")
        if not samples:
            raise UsageError(f"stage {stage.name!r}: no training samples left after filtering")
        return samples, rows

    def _judge_instruction(self, sample: Sample) -> str | None:
        """Table 17 asks about the task in CodeR's own words, whatever set the model trains with."""
        return InstructionPlan("coder", "bge").instruction(sample)

    def stage_datasets(self, stage: StageConfig, samples: list[Sample], rows: StageRows | None = None) -> StageDatasets:
        """The stage's homogeneous datasets and, when it trains with instructions, their prompts
        (``rows``: the stage's :class:`StageRows`, whose ``mix`` repeats set each dataset's share)."""
        plan = self.instructions
        repeat_of = rows.repeat_of if rows is not None and stage.mix else None
        if not (stage.instructions and plan.enabled):
            return build_stage_datasets(samples, stage.num_negatives, repeat_of=repeat_of)
        result = build_stage_datasets(samples, stage.num_negatives, instruction_of=plan.instruction,
                                      query_prompt=plan.query_prompt, document_prompt=plan.document_prompt,
                                      repeat_of=repeat_of)
        for key, columns in (result.prompts or {}).items():
            for column, prompt in columns.items():
                check_no_placeholders(prompt, f"stage {stage.name!r}, dataset {key!r}, column {column!r}")
        return result

    def continuous_schedule(self, sources: dict[str, list[Sample]]) -> LinearSchedule:
        """One schedule over every stage, planned once and kept in ``schedule.json`` so a resumed run
        follows the same curve."""
        path = self.out / SCHEDULE_FILE
        planned_from = stable_hash([(s.learning_rate, s.end_learning_rate, s.warmup_steps, s.warmup_ratio, s.max_steps,
                                     s.epochs, s.batch_size, s.datasets) + ((s.mix,) if s.mix else ())
                                    for s in self.config.stages])
        stored = json.loads(path.read_text()) if path.is_file() else {}
        if stored.get("planned_from") == planned_from:
            return LinearSchedule(**stored["schedule"])
        if stored:
            self.log("continuous optimizer: the stages' schedule settings changed (--resume-anyway); planning again")
        first, last = self.config.stages[0], self.config.stages[-1]
        total = sum(planned_steps(stage, sources, self.config.seed, self.state.num_processes)
                    for stage in self.config.stages)
        warmup = warmup_steps_of(first.warmup_steps, first.warmup_ratio, total)
        schedule = LinearSchedule(first.learning_rate, last.end_learning_rate, warmup, total)
        if self.state.is_main_process:
            write_text_atomic(path, json.dumps({"schedule": asdict(schedule), "planned_from": planned_from}))
        self.log(f"continuous optimizer: one schedule over {total} planned steps ({warmup} warmup), "
                 f"{schedule.peak:g} -> {schedule.end:g}")
        return schedule

    def _train_stage(self, index: int, stage: StageConfig, model: SentenceTransformer,
                     sources: dict[str, list[Sample]], stage_dir: Path, step_offset: int = 0,
                     carried_state: dict | None = None,
                     continuous: LinearSchedule | None = None) -> tuple[list[tuple[int, float]], list[FilterReport],
                                                                        StageDatasets]:
        reports: list[FilterReport] = []
        stage_dir.mkdir(parents=True, exist_ok=True)
        samples, rows = self._filtered_samples(stage, sources, model, reports, stage_dir)
        stage_sets = self.stage_datasets(stage, samples, rows)
        if not stage_sets.datasets:
            raise UsageError(f"stage {stage.name!r}: no sample has the {stage.num_negatives} hard negative(s) it asks for")
        check_batch_fits(stage.name, stage.batch_size, stage_sets, self.log)
        self.log(f"stage {index + 1} '{stage.name}': {sum(len(d) for d in stage_sets.datasets.values())} samples in "
                 f"{len(stage_sets.datasets)} dataset(s), {stage.num_negatives} hard negative(s), "
                 f"temperature {stage.temperature}, instructions {'on' if stage_sets.prompts else 'off'}")
        lr_mapping = {}
        if stage.head_learning_rate is not None:
            for position, module in enumerate(model):
                if isinstance(module, PMAPooling):
                    lr_mapping[rf"(^|\.){position}\."] = stage.head_learning_rate
        max_steps = stage.max_steps if stage.max_steps is not None else -1
        # a stage shorter than logging_steps would log no loss at all
        quota = stage_sets.batches_per_epoch(stage.batch_size)
        steps = steps_of(stage, sum(quota.values()), self.state.num_processes)
        logging_steps = min(self.config.logging_steps, steps)
        args = SentenceTransformerTrainingArguments(
            output_dir=str(stage_dir / "checkpoints"), learning_rate=stage.learning_rate,
            num_train_epochs=stage.epochs, max_steps=max_steps, per_device_train_batch_size=stage.batch_size,
            weight_decay=stage.weight_decay, multi_dataset_batch_sampler=stage.sampler,
            prompts=stage_sets.prompts or None, learning_rate_mapping=lr_mapping,
            logging_steps=max(1, logging_steps), save_strategy="steps", save_steps=stage.save_steps,
            save_total_limit=2, seed=self.config.seed, bf16=self.config.bf16, report_to=[],
            dataloader_drop_last=True, use_cpu=self.use_cpu, ddp_find_unused_parameters=False,
            optim="adamw_torch" if self.use_cpu else "adamw_torch_fused",  # one fused kernel per step on GPUs
            **loader_settings(self.config, self.use_cpu, self.log),
        )
        gather = self.config.gather_across_devices and self.state.num_processes > 1
        if self.config.gradient_checkpointing:
            enable_activation_checkpointing(model)
        skip_lora_input_cast_under_autocast(model)  # bf16 runs: no float32 round trip into the adapter
        cuda_graphs = records_cuda_graphs(self.config.compile, self.config.compile_mode,
                                          str(next(model.parameters()).device))
        loss = stage_loss(model, stage, gather, self.log,
                          resolve_shape_multiple(self.config.packed_shape_multiple, cuda_graphs))
        def schedule_for(num_training_steps: int) -> LinearSchedule:
            if continuous is not None:
                return continuous
            return stage_schedule(stage.learning_rate, stage.end_learning_rate, stage.warmup_steps,
                                  stage.warmup_ratio, num_training_steps)

        record = self.config.record_batches if self.state.is_main_process else 0
        collator = RecordingCollator(preprocess_fn=model.preprocess, prompts=stage_sets.prompts or None,
                                     path=stage_dir / "batches.jsonl" if record else None, limit=record)
        if record:
            stage_dir.mkdir(parents=True, exist_ok=True)
            (stage_dir / "batches.jsonl").unlink(missing_ok=True)
        trainer = StageTrainer(model=model, args=args, train_dataset=stage_sets.datasets, loss=loss,
                               data_collator=collator, schedule=schedule_for, step_offset=step_offset,
                               carried_state=carried_state, record_dataset_names=bool(record), stage_name=stage.name,
                               batch_quota=quota if stage.mix else None)
        checkpoint = resume_checkpoint(stage_dir, self.state, self.log)
        if checkpoint:
            self.log(f"  resuming stage '{stage.name}' from {checkpoint}")
        inference_length = model.max_seq_length
        if stage.max_seq_length is not None:
            model.max_seq_length = stage.max_seq_length
        # compile: true, the layers in place while this stage trains (not the trainer's whole-model torch_compile)
        compiled = compiled_layers(model, self.config.compile_backend, self.config.compile_mode) \
            if self.config.compile else nullcontext(0)
        try:
            with compiled as blocks:
                if blocks:
                    self.log(f"  compiled {blocks} layers in place ({self.config.compile_backend}, dynamic shapes); "
                             "the first steps compile")
                trainer.train(resume_from_checkpoint=checkpoint)
        finally:
            model.max_seq_length = inference_length
        losses = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
        self.last_train_metrics = trainer.run_metrics()
        if continuous is not None and self.state.is_main_process:
            save_optimizer_state(stage_dir / OPTIMIZER_STATE, optimizer_state_by_name(trainer.optimizer, model),
                                 step_offset + trainer.state.global_step)
        return losses, reports, stage_sets

    # -- run ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train every stage (skipping finished ones), evaluate, save ``final`` and the report.

        The output folder is locked for the run, and checked against the setup it was started with
        (see :mod:`st_code.training.run_state`)."""
        lock = FolderLock(self.out, "training run", self.log) if self.state.is_main_process else nullcontext()
        with lock:
            return self._run()

    def _run(self) -> dict[str, Any]:
        self.identity = run_identity(self.config)
        if self.state.is_main_process:  # a conflicting folder is refused before the model loads
            prepare_output(self.out, self.identity, self.existing_run, self.log)
            (self.out / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        self.state.wait_for_everyone()
        model = self.build_initial_model()
        for line in kernel_lines(self.config.model, model):
            self.log(line)
        cuda_graphs = records_cuda_graphs(self.config.compile, self.config.compile_mode,
                                          str(next(model.parameters()).device))
        # before minutes of data preparation, not at that stage's start (the setup it recorded does not stand in
        # the way of the corrected config's run: prepare_output lets a run that trained nothing be replaced)
        for stage in self.config.stages:
            check_stage_packing(model, stage)
            check_cuda_graphs_with_gradcache(cuda_graphs, stage)
        sources, heldout = self.prepare_data(mining_model=model)
        for stage in self.config.stages:
            for line in plan_lines(stage, sources, self.config.seed, self.state.num_processes):
                self.log(line)
        scores: dict[str, dict] = {}
        losses: dict[str, list] = {}
        records: dict[str, dict] = {}
        scores["base"] = self._base_scores(heldout)
        self._log_scores("base", scores.get("base"))

        continuous = self.continuous_schedule(sources) if self.config.optimizer == "continuous" else None
        used_instructions = False
        trained_instructions: dict[str, set[str]] = {}
        global_step, carried = 0, None
        for index, stage in enumerate(self.config.stages):
            stage_dir = self.out / "stages" / f"{index + 1}-{stage.name}"
            done = stage_dir / "DONE.json"
            used_instructions = used_instructions or stage.instructions
            if done.is_file():
                record = json.loads(done.read_text())
                self.log(f"stage {index + 1} '{stage.name}' already finished; loading it")
                model = self._load_stage_model(stage_dir / "model")
            else:
                offset = global_step if continuous is not None else 0  # per-stage schedules start at 0
                stage_start = time.time()
                stage_losses, reports, stage_sets = self._train_stage(index, stage, model, sources, stage_dir,
                                                                      offset, carried, continuous)
                if stage.merge_lora:
                    merge_lora(model)
                for task, texts in stage_sets.instructions.items():
                    trained_instructions.setdefault(task, set()).update(texts)
                match_prompts_to_training(model, self.config.model, used_instructions and self.instructions.enabled,
                                          trained_instructions)
                # only a stage trained with MatryoshkaLoss vouches for its truncated embeddings
                model.matryoshka_dims = sorted(set(stage.matryoshka_dims), reverse=True) if stage.matryoshka_dims \
                    else None
                if self.state.is_main_process:  # standalone full weights: the model the stage's scores describe
                    (merged_copy(model) if has_lora(model) else model).save(str(stage_dir / "model"))
                    record = {"losses": stage_losses, "filters": [asdict(r) for r in reports],
                              "train": self.last_train_metrics,
                              # filters, training and saving, not evaluation (in this process: a resumed
                              # stage counts from its resume)
                              "wall_seconds": round(time.time() - stage_start, 1),
                              "datasets": {k: len(d) for k, d in stage_sets.datasets.items()},
                              "instructions": {t: sorted(v) for t, v in stage_sets.instructions.items()},
                              "scores": evaluate_stage(model, heldout, self.config.evaluation, self.log),
                              "scores_by_dim": evaluate_dims(model, heldout, self.config.evaluation, stage.matryoshka_dims, self.log)}
                    write_text_atomic(done, json.dumps(record, indent=2))
                self.state.wait_for_everyone()
                record = json.loads(done.read_text())
            if self.state.is_main_process and not self.config.publish.keep_checkpoints:
                prune_checkpoints(stage_dir, self.log)  # also a finished stage's leftovers after a kill
            for task, texts in record.get("instructions", {}).items():
                trained_instructions.setdefault(task, set()).update(texts)
            global_step += int(record.get("train", {}).get("global_step", 0))
            if continuous is not None:
                carried, _ = load_optimizer_state(stage_dir / OPTIMIZER_STATE)
            records[stage.name] = record
            scores[stage.name] = record["scores"]
            losses[stage.name] = [tuple(x) for x in record["losses"]]
            self._log_scores(stage.name, scores[stage.name])
            for dim, dim_scores in record.get("scores_by_dim", {}).items():
                scores[f"{stage.name} @{dim}"] = dim_scores
                self._log_scores(f"{stage.name} @{dim}", dim_scores)
            # The next stage trains a fresh adapter after a merge (CodeXEmbed), and also when this stage was
            # loaded from disk: stage models are saved merged, so a run resumed between two stages that share
            # one adapter goes on with a fresh adapter on the same weights (the same model, re-split).
            if self.lora is not None and index + 1 < len(self.config.stages) and not has_lora(model):
                set_seed(self.config.seed + index + 1)  # the fresh adapter's init is the same on a resumed run
                add_lora(model, r=self.lora.r, alpha=self.lora.alpha, dropout=self.lora.dropout,
                         target_modules=self.lora.target_modules, **self.lora.extra)
                float32_trainable(model)

        result: dict[str, Any] = {"scores": scores, "final": str(self.out / "final")}
        if self.state.is_main_process:
            match_prompts_to_training(model, self.config.model, used_instructions and self.instructions.enabled,
                                          trained_instructions)
            final = merged_copy(model) if has_lora(model) else model
            table = write_report(self.out / "report", scores, losses)
            languages = {value for rows in sources.values() for value in column_of(rows, "language")}
            trained = {name for stage in self.config.stages for name in stage.datasets}
            code_languages = Counter(value for name in trained
                                     for value in column_of(sources.get(name, ()), "code_language") if value)
            final.card_details = card_details(self.config, records, scores, self.out / "report", languages,
                                              dict(code_languages))
            final.save(str(self.out / "final"))
            shutil.copyfile(self.out / "config.yaml", self.out / "final" / "training_config.yaml")
            result["table"] = table
            self.log("\n" + table)
            self.log(f"\nmodel: {self.out / 'final'}\nreport: {self.out / 'report'}")
            if self.config.publish.hub_model_id:
                result["hub_url"] = push_folder(self.out / "final", self.config.publish.hub_model_id,
                                                private=self.config.publish.private, log=self.log)
        return result

    def _base_scores(self, heldout: dict[str, RetrievalSet]) -> dict | None:
        """The untrained base on the held-out sets, computed once per base and evaluation data."""
        path = self.out / "base_scores.json"
        key = stable_hash({"base": self.config.model.base, "evaluation": asdict(self.config.evaluation),
                           "data": data_fingerprint(self.config, self.identity["data"])})
        if not self.config.evaluation.sets:
            return None
        cached = json.loads(path.read_text()) if path.is_file() else {}
        if cached.get("key") == key:
            return cached["scores"]
        scores = None
        if self.state.is_main_process:
            self.log("evaluating the base model ...")
            base = SentenceTransformer(resolve_base(self.config.model.base))  # as its users would load it
            scores = evaluate_stage(base, heldout, self.config.evaluation, self.log)
            write_text_atomic(path, json.dumps({"key": key, "scores": scores}))  # the other ranks read it
        return scores

    def _log_scores(self, row: str, results: dict | None) -> None:
        if results:
            self.log(markdown_table({row: results}).splitlines()[-1])


__all__ = ["CurriculumRunner"]
