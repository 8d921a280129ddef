"""What a stage will read and how long it will run, known before any training: the rows each source
dataset contributes, how often a ``mix`` repeats it, the batches per homogeneous dataset and the
optimizer steps. The curriculum logs it at the start of every run (``--dry-run`` included) and plans
its continuous schedule from it."""

from __future__ import annotations

import math
from collections import Counter

from st_code.data.records import Sample
from st_code.training.config import StageConfig
from st_code.training.stage_rows import StageRows, mix_shares, stage_rows

#: a repeat count past which the plan warns: each row is then seen this often per epoch
MANY_REPEATS = 20.0


def planned_batches(rows: StageRows, num_negatives: int, batch_size: int) -> dict[tuple, int]:
    """Batches per epoch of each (task, code language, language) group before filtering: a group's
    rows weighted by their source's repeats, in full batches; none for a group smaller than a batch."""
    counts: Counter = Counter()
    weighted: Counter = Counter()
    for source, group, enough in rows.group_sizes(num_negatives):
        if enough:
            counts[group] += 1
            weighted[group] += rows.repeats[source]
    return {group: int(weighted[group] // batch_size) if counts[group] >= batch_size else 0 for group in counts}


def steps_of(stage: StageConfig, batches_per_epoch: int, num_processes: int) -> int:
    """Optimizer steps, as the trainer counts them: the batches shared across processes, times epochs."""
    if stage.max_steps is not None:
        return stage.max_steps
    return max(1, math.ceil(stage.epochs * math.ceil(batches_per_epoch / num_processes)))


def planned_steps(stage: StageConfig, sources: dict[str, list[Sample]], seed: int, num_processes: int) -> int:
    """Optimizer steps a stage will take (before filtering)."""
    rows = stage_rows(stage, sources, seed)
    return steps_of(stage, sum(planned_batches(rows, stage.num_negatives, stage.batch_size).values()), num_processes)


def plan_lines(stage: StageConfig, sources: dict[str, list[Sample]], seed: int, num_processes: int) -> list[str]:
    """The stage's plan as log lines: per source dataset its rows, repeats and rows read per epoch,
    then the batches and steps (before filtering, which can only drop rows)."""
    rows = stage_rows(stage, sources, seed)
    batches = planned_batches(rows, stage.num_negatives, stage.batch_size)
    total = sum(batches.values())
    lines = [f"stage '{stage.name}' plan (before filtering): {sum(rows.rows.values())} rows from "
             f"{len(rows.rows)} source(s), {len(batches)} group(s), batch {stage.batch_size} -> {total} batches "
             f"per epoch, {steps_of(stage, total, num_processes)} step(s)"]
    short = Counter(source for source, _, enough in rows.group_sizes(stage.num_negatives) if not enough)
    for name, count in rows.rows.items():
        key, weight = mix_shares(stage.mix)[name] if stage.mix else (name, 0)
        share = f", mix weight {weight:g}" + (f" (shared by {key})" if key != name else "") if stage.mix else ""
        lacking = f"; {short[name]} lack {stage.num_negatives} negatives and are left out" if short[name] else ""
        lines.append(f"  {name}: {count} rows x {rows.repeats[name]:.2f} repeats = "
                     f"{round(count * rows.repeats[name])} rows per epoch{share}{lacking}")
        if rows.repeats[name] > MANY_REPEATS:
            lines.append(f"  note: {name} is read {rows.repeats[name]:.0f} times per epoch to meet its mix "
                         "share; lower its weight or give it more rows if that overfits it")
    small = [group for group, n in batches.items() if n == 0]
    if small:
        lines.append(f"  note: {len(small)} group(s) hold fewer rows than one batch and are not trained on: "
                     + ", ".join(" | ".join(p for p in group if p) for group in small[:5])
                     + (" ..." if len(small) > 5 else ""))
    return lines


__all__ = ["planned_batches", "planned_steps", "plan_lines", "steps_of", "MANY_REPEATS"]
