"""The trainer of one curriculum stage: sentence-transformers' trainer with the learning-rate
schedule and optimizer hand-over that multi-stage training needs.

* The schedule is linear warmup then linear decay to ``end_learning_rate`` (CodeXEmbed decays
  5e-5 -> 5e-6), over the stage alone (``optimizer: per_stage``) or over the whole curriculum
  (``optimizer: continuous``: the stage starts at the global step where the previous one stopped).
* With a continuous optimizer, AdamW's per-parameter state (moments and step count) is handed
  from one stage to the next by parameter name. After a LoRA merge the fresh adapter has the same
  names as the merged one, so it takes over its predecessor's moments: CodeXEmbed's "continuous
  optimizer" across separate adapters (its Table 4: 67.41 vs 66.06 CoIR with separate optimizers).

Everything else (optimizer class, weight decay groups, ``learning_rate_mapping`` for a fresh
head, checkpoint resume) is the stock trainer's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from datasets import DatasetDict, IterableDatasetDict
from sentence_transformers import SentenceTransformerTrainer
from torch.optim.lr_scheduler import LambdaLR

from st_code.errors import TrainingDiverged


@dataclass(frozen=True)
class LinearSchedule:
    """Linear warmup from 0 to ``peak`` over ``warmup_steps``, then linear to ``end`` at ``total_steps``."""

    peak: float
    end: float
    warmup_steps: int
    total_steps: int

    def learning_rate(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.peak * step / max(1, self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.peak + (self.end - self.peak) * progress

    def factor(self, step: int) -> float:
        """The multiplier LambdaLR applies to ``peak``."""
        return self.learning_rate(step) / self.peak if self.peak else 0.0


def _unwrapped(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    return getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it in AcceleratedOptimizer


def optimizer_state_by_name(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> dict[str, dict]:
    """AdamW's per-parameter state keyed by the parameter's name in ``model`` (on the CPU)."""
    optimizer = _unwrapped(optimizer)
    names = {id(p): n for n, p in model.named_parameters()}
    states = {}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            state = optimizer.state.get(parameter)
            if state and id(parameter) in names:
                states[names[id(parameter)]] = {k: v.detach().cpu().clone() if torch.is_tensor(v) else v
                                                for k, v in state.items()}
    return states


def load_state_by_name(optimizer: torch.optim.Optimizer, model: torch.nn.Module, states: dict[str, dict]) -> int:
    """Give each parameter of ``optimizer`` the saved state of the parameter of the same name and shape;
    returns how many took one over."""
    optimizer = _unwrapped(optimizer)
    by_name = dict(model.named_parameters())
    # torch keeps AdamW's step counter on the CPU unless the group is fused or capturable
    step_on_device = {id(p): bool(group.get("fused") or group.get("capturable"))
                      for group in optimizer.param_groups for p in group["params"]}
    loaded = 0
    for name, state in states.items():
        parameter = by_name.get(name)
        if parameter is None or id(parameter) not in step_on_device:
            continue
        if any(torch.is_tensor(v) and v.dim() > 0 and v.shape != parameter.shape for v in state.values()):
            continue
        moved = {}
        for key, value in state.items():
            if not torch.is_tensor(value):
                moved[key] = value
            elif key == "step":
                moved[key] = value.to(parameter.device) if step_on_device[id(parameter)] else value.cpu()
            else:
                moved[key] = value.to(parameter.device, parameter.dtype)
        optimizer.state[parameter] = moved
        loaded += 1
    return loaded


class StageTrainer(SentenceTransformerTrainer):
    """``SentenceTransformerTrainer`` with a :class:`LinearSchedule` that may start at a global
    ``step_offset``, and optimizer state carried over from the previous stage.

    Args:
        schedule: ``callable(num_training_steps) -> LinearSchedule`` (the stage's length is known
            only once the trainer has built its data loader).
        step_offset: global step at which this stage starts (continuous schedule), else 0.
        carried_state: ``{parameter name: AdamW state}`` from the previous stage, or ``None``.
        record_dataset_names: tag every row with its dataset's name even without per-dataset prompts
            (so a :class:`~st_code.training.batch_record.RecordingCollator` can tell batches apart).
        batch_quota: ``{dataset name: batches per epoch}`` for a stage with a ``mix``
            (:class:`~st_code.training.mix_sampler.QuotaBatchSampler`); ``None``: the configured sampler.
    """

    def __init__(self, *args: Any, schedule, step_offset: int = 0, carried_state: dict | None = None,
                 record_dataset_names: bool = False, stage_name: str = "stage",
                 batch_quota: dict[str, int] | None = None, **kwargs: Any) -> None:
        self.record_dataset_names = record_dataset_names  # read by the parent's __init__ (dataset preprocessing)
        self.batch_quota = batch_quota
        self.stage_name = stage_name
        super().__init__(*args, **kwargs)
        self._schedule_for, self.step_offset, self.carried_state = schedule, step_offset, carried_state
        self.schedule: LinearSchedule | None = None
        self.carried_parameters = 0

    def get_multi_dataset_batch_sampler(self, dataset, batch_samplers, generator=None, seed=0):
        """The mix's quotas when the stage has one (training data only), else the configured sampler."""
        names = list(self.train_dataset.keys()) if isinstance(self.train_dataset, dict) else []
        if self.batch_quota is None or len(names) != len(dataset.datasets) \
                or [len(d) for d in dataset.datasets] != [len(d) for d in self.train_dataset.values()]:
            return super().get_multi_dataset_batch_sampler(dataset, batch_samplers, generator, seed)
        from st_code.training.mix_sampler import QuotaBatchSampler

        return QuotaBatchSampler(dataset, batch_samplers, generator=generator, seed=seed,
                                 quota=[self.batch_quota.get(name, 0) for name in names])

    def run_metrics(self) -> dict[str, Any]:
        """What the finished stage reports: runtime and throughput, and its provenance (processes, the
        batch the loss saw across them, steps, optimizer state carried in, the first learning rate)."""
        history = self.state.log_history
        summary = next((e for e in reversed(history) if "train_runtime" in e), {})
        metrics = {k: summary[k] for k in ("train_runtime", "train_samples_per_second") if k in summary}
        metrics["world_size"] = self.args.world_size
        metrics["global_batch_size"] = (self.args.per_device_train_batch_size * self.args.world_size
                                        * self.args.gradient_accumulation_steps)
        metrics["global_step"] = self.state.global_step
        metrics["carried_optimizer_parameters"] = self.carried_parameters
        metrics["first_learning_rate"] = next((e["learning_rate"] for e in history if "learning_rate" in e), None)
        return metrics

    def compute_loss(self, model, inputs, return_outputs: bool = False, num_items_in_batch=None):
        """The stock loss; a NaN or infinite one stops the stage before it touches the weights."""
        result = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        loss = result[0] if isinstance(result, tuple) else result
        if not bool(torch.isfinite(loss.detach()).all()):
            raise TrainingDiverged(self._diverged_message(loss.detach().float().item()))
        return result

    def _diverged_message(self, loss: float) -> str:
        """Stop at the first non-finite loss. It was computed with the weights after the previous step,
        so that step's checkpoint is set aside (``diverged-checkpoint-N``); the one before it is the last good one."""
        import shutil

        from transformers.trainer_utils import get_last_checkpoint

        step = self.state.global_step + 1
        rate = self.lr_scheduler.get_last_lr()[0] if self.lr_scheduler is not None else self.args.learning_rate
        folder = Path(self.args.output_dir)
        bad = folder / f"checkpoint-{step - 1}"
        if self.is_world_process_zero() and bad.is_dir():
            aside = folder / f"diverged-{bad.name}"
            shutil.rmtree(aside, ignore_errors=True)
            bad.rename(aside)
        good = get_last_checkpoint(str(folder)) if folder.is_dir() else None
        kept = f"the last good checkpoint is {good}" if good else "no good checkpoint was saved yet"
        return (f"stage {self.stage_name!r}: the training loss became {loss} at step {step} (learning rate {rate:g}); "
                f"training stopped before updating the weights, {kept}. Lower the stage's learning_rate (or check its "
                "data), then rerun with --resume-anyway to continue from that checkpoint, or --overwrite to start over")

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Only the saving rank writes the model. transformers 5 calls ``_save`` on every rank and checks
        ``should_save`` inside its own ``_save``, which sentence-transformers' override (6.2) replaces without
        that check: under DDP every rank wrote every checkpoint into the same folder, and a rank reading
        ``modules.json`` while another truncated it died of a JSONDecodeError."""
        if not self.args.should_save:
            return
        super()._save(output_dir, state_dict=state_dict)

    def should_dataset_name_column_be_added(self, dataset, args, loss) -> bool:
        if getattr(self, "record_dataset_names", False) and isinstance(dataset, (DatasetDict, IterableDatasetDict)):
            return True
        return super().should_dataset_name_column_be_added(dataset, args, loss)

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if fresh and self.carried_state:
            self.carried_parameters = load_state_by_name(optimizer, self.model, self.carried_state)
        return optimizer

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        """Resume the optimizer's moments and the schedule's position from ``checkpoint``, but at the
        learning rates of the config this run was started with: a checkpoint also stores the rates it
        was trained at, and a run resumed after lowering a diverging rate must not go on at the old one."""
        scheduler = self.lr_scheduler
        wanted = list(scheduler.base_lrs) if scheduler is not None else None
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None or wanted is None:
            return
        scheduler.base_lrs = list(wanted)
        factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
        for group, rate in zip(_unwrapped(self.optimizer).param_groups, wanted):
            group["initial_lr"], group["lr"] = rate, rate * factor

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        if self.lr_scheduler is None:
            self.schedule = self._schedule_for(num_training_steps)
            offset, schedule = self.step_offset, self.schedule
            self.lr_scheduler = LambdaLR(optimizer or self.optimizer, lambda step: schedule.factor(offset + step))
            self._created_lr_scheduler = True
        return self.lr_scheduler


def stage_schedule(learning_rate: float, end_learning_rate: float, warmup_steps: int | None,
                   warmup_ratio: float, num_training_steps: int) -> LinearSchedule:
    """The schedule of a stage trained alone."""
    return LinearSchedule(learning_rate, end_learning_rate,
                          warmup_steps_of(warmup_steps, warmup_ratio, num_training_steps), num_training_steps)


def warmup_steps_of(warmup_steps: int | None, warmup_ratio: float, num_training_steps: int) -> int:
    """The warmup length, always short of the whole run: warmup starts at learning rate 0, so a run of
    one step (or one no longer than its warmup) would otherwise train nothing at all."""
    warmup = warmup_steps if warmup_steps is not None else math.ceil(warmup_ratio * num_training_steps)
    return max(0, min(warmup, num_training_steps - 1))


def loader_settings(config, use_cpu: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """The trainer's data-loader arguments for a run's config: worker processes tokenize batches ahead of
    the GPU, except while batches are recorded (each worker would count and write its own)."""
    arguments = config.loader_arguments(on_gpu=not use_cpu)
    workers = arguments["dataloader_num_workers"]
    if workers and config.record_batches:
        log(f"  data loader: record_batches is set, so batches are tokenized in this process "
            f"(dataloader_workers {config.dataloader_workers} not used)")
        return {"dataloader_num_workers": 0, "dataloader_persistent_workers": False}
    if workers:
        log(f"  data loader: {workers} worker processes tokenize the next batches")
    return arguments


def resume_checkpoint(stage_dir: Path, state, log: Callable[[str], None]) -> str | None:
    """The newest complete trainer checkpoint of a stage. One a crash cut short (no trainer state,
    weights or optimizer) is set aside as ``incomplete-checkpoint-N`` and reported, not resumed from.
    ``state``: accelerate's PartialState (the main process looks; every rank waits for it)."""
    import shutil

    from transformers.trainer_utils import get_last_checkpoint

    folder = stage_dir / "checkpoints"
    if state.is_main_process and folder.is_dir():
        for checkpoint in sorted(folder.glob("checkpoint-*")):
            missing = [name for name in ("trainer_state.json", "optimizer.pt", "scheduler.pt")
                       if not (checkpoint / name).is_file()]
            if not any(checkpoint.glob("*.safetensors")) and not any(checkpoint.glob("*.bin")):
                missing.append("model weights")
            if missing:
                aside = checkpoint.with_name(f"incomplete-{checkpoint.name}")
                shutil.rmtree(aside, ignore_errors=True)
                checkpoint.rename(aside)
                log(f"  {checkpoint} is incomplete (no {', '.join(missing)}: a run was stopped while "
                    f"saving it); set aside as {aside.name}")
    state.wait_for_everyone()  # every rank, always: the folder may appear for some ranks first
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def save_optimizer_state(path: Path, states: dict[str, dict], global_step: int) -> None:
    """Atomically write the hand-over state of a finished stage."""
    from st_code.outputs import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"states": states, "global_step": global_step}, tmp)


def load_optimizer_state(path: Path) -> tuple[dict[str, dict], int]:
    data = torch.load(path, map_location="cpu", weights_only=False)
    return data["states"], int(data["global_step"])


__all__ = ["StageTrainer", "LinearSchedule", "stage_schedule", "optimizer_state_by_name", "load_state_by_name",
           "save_optimizer_state", "load_optimizer_state"]
