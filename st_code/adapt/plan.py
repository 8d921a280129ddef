"""How many training steps fit in ``--minutes``, and the curriculum config that trains them.

The budget is wall time for the whole command on this machine. What the steps cost is measured, not
guessed: a few real forward and backward passes of the model on real rows at the stage's batch shape
(:func:`seconds_per_step`), and what embedding costs comes from the base model's evaluation, which runs
first anyway. The chosen plan is written down (``plan.json``), so a rerun resumes the same config
instead of re-measuring on a machine that is now busier or idler.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from sentence_transformers import SentenceTransformer

from st_code.data.records import Sample

#: A trainer step against the timed one: collation, the optimizer, logs and checkpoints cost more, and
#: the timed step is one batch of the first rows. Measured by benchmarks/adapt_repository.py --minutes 6 on 2
#: CPU cores with the length-sorted loss both sides use on a CPU: 1.31 (Python tree: 4.54 s a trainer
#: step against 3.47 s timed) and 1.08 (C/C++ tree: 4.92 against 4.56). With sentence-transformers' own
#: loss it had been 0.80 and 0.86 (the mixed timed batch padded more than the trainer's batches of one
#: dataset); at 0.9 after the loss changed, a 6-minute run trained 33 planned steps in 150 s instead of
#: 103. The larger of the two, so that --minutes is rarely overrun.
TRAINER_STEP_RATIO = 1.3
#: Saving the model, loading it back for evaluation, writing the report.
FIXED_SECONDS = 45.0
MIN_STEPS = 10


@dataclass
class TrainingPlan:
    """What the stage will do and why: the measured costs behind ``max_steps``."""

    max_steps: int
    seconds_per_step: float
    budget_seconds: float
    spent_seconds: float
    mining_seconds: float
    evaluation_seconds: float
    epochs: float
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def seconds_per_step(model: SentenceTransformer, samples: list[Sample], batch_size: int, max_seq_length: int,
                     repeats: int = 2) -> float:
    """Wall seconds of one training step (query, positive and one negative column of ``batch_size`` real
    rows through the model, InfoNCE, backward), measured after one warm-up step; the weights are untouched.
    On a CPU with the loss the stage trains with there (length-sorted chunks, st_code.training.losses)."""
    import torch
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    from st_code.training.losses import LengthSortedMNRL

    rows = samples[:batch_size]
    shift = samples[batch_size:batch_size * 2] or samples[1:batch_size + 1] or rows
    columns = [[s.query for s in rows], [s.positive for s in rows],
               [shift[i % len(shift)].positive for i in range(len(rows))]]
    loss = LengthSortedMNRL(model) if model.device.type == "cpu" else MultipleNegativesRankingLoss(model)
    saved_length, was_training = model.max_seq_length, model.training
    model.max_seq_length = max_seq_length
    model.train()
    try:
        prepare = getattr(model, "preprocess", None) or model.tokenize
        features = [{k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in prepare(texts).items()}
                    for texts in columns]
        timings = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            loss(features, labels=None).backward()
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - start)
            model.zero_grad(set_to_none=True)
    finally:
        model.max_seq_length = saved_length
        model.train(was_training)
    return TRAINER_STEP_RATIO * min(timings[1:])


def plan_steps(budget_seconds: float, spent_seconds: float, per_step: float, evaluation_seconds: float,
               texts_to_mine: int, texts_evaluated: int, train_rows: int, batch_size: int,
               max_epochs: float = 2.0) -> TrainingPlan:
    """The steps that fit: the budget less what is spent, mining (embedding every training text once,
    at the speed the base evaluation embedded), the final evaluation (as long as the base's) and saving;
    at least :data:`MIN_STEPS`, at most ``max_epochs`` over the training rows."""
    per_text = evaluation_seconds / max(texts_evaluated, 1)
    mining = per_text * texts_to_mine
    left = budget_seconds - spent_seconds - mining - evaluation_seconds - FIXED_SECONDS
    wanted = int(left // per_step) if per_step > 0 else MIN_STEPS
    most = max(MIN_STEPS, math.ceil(max_epochs * train_rows / batch_size))
    steps = max(MIN_STEPS, min(wanted, most))
    note = ""
    if wanted < MIN_STEPS:
        note = (f"the budget leaves time for {max(wanted, 0)} step(s) after data, mining and evaluation; "
                f"training the minimum of {MIN_STEPS} (raise --minutes)")
    elif wanted > most:
        note = f"the budget fits {wanted} steps; capped at {max_epochs:g} epochs of the training rows"
    return TrainingPlan(max_steps=steps, seconds_per_step=round(per_step, 3), budget_seconds=budget_seconds,
                        spent_seconds=round(spent_seconds, 1), mining_seconds=round(mining, 1),
                        evaluation_seconds=round(evaluation_seconds, 1),
                        epochs=round(steps * batch_size / max(train_rows, 1), 2), note=note)


def adapt_config(model: str, pooling: str, train_file: str, output_dir: str, steps: int, learning_rate: float,
                 batch_size: int, max_seq_length: int, train_seq_length: int, seed: int, gradcache: bool,
                 extra_sources: dict[str, str] | None = None) -> dict[str, Any]:
    """The curriculum config of an adaptation: one stage over the repository's pairs (and any LLM-written
    ones), one mined hard negative per pair, no evaluation inside the run (adapt scores and gates itself)."""
    sources = {"repository": {"path": train_file}}
    sources.update({name: {"path": path} for name, path in (extra_sources or {}).items()})
    return {
        "model": {"base": model, "pooling": pooling, "lora": None, "instruction_set": "none",
                  "max_seq_length": max_seq_length},
        "data": {"offline": None, "sources": sources,
                 "hard_negatives": {"num_negatives": 1, "relative_margin": 0.05}},
        "stages": [{
            "name": "repository", "datasets": list(sources), "learning_rate": learning_rate, "max_steps": steps,
            "batch_size": batch_size, "num_negatives": 1, "temperature": 0.05, "gradcache": gradcache,
            "max_seq_length": train_seq_length, "save_steps": max(5, steps // 4), "warmup_ratio": 0.1,
        }],
        "evaluation": {"sets": []},
        "publish": {"keep_checkpoints": False},
        "output_dir": output_dir,
        "seed": seed,
    }


__all__ = ["TrainingPlan", "adapt_config", "plan_steps", "seconds_per_step", "MIN_STEPS"]
