"""Training throughput of a stage, today's settings against the previous ones, side by side.

    python benchmarks/train_throughput.py                               # CPU: a tiny decoder, the C2LLM shape
    python benchmarks/train_throughput.py --device cuda --model Qwen/Qwen2.5-Coder-0.5B \\
        --config recipes/configs/c2llm-0.5b.yaml --steps 50             # a GPU: the real model
    python benchmarks/train_throughput.py --device cuda --model random:qwen2.5-coder-0.5b \\
        --pairs-file .device/pairs.json --runs previous,now,unsorted    # a GPU that cannot reach the hub

Every run trains the same model on the same standard-library pairs, batch, learning rate and order:
``previous`` (sentence-transformers' own GradCache), ``now`` (the loss the curriculum builds, packing
off), ``unsorted`` (``now`` without length sorting: its loss curve must match) and ``packed`` (what the
curriculum trains on a GPU). Per run: samples/s, real tokens/s, padding, and on a GPU peak memory, GPU
busy time and MFU. What each run sets and how each figure is counted: docs/benchmarks.md ("Training
throughput: what the benchmark runs").
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402
from meters import (  # noqa: E402
    ReplayCheck, StepClock, StopAfter, cuda_graphs_recorded, dynamo_graphs, flop_parameters, load_or_make_pairs,
    peak_tflops,
)
from token_meter import TokenMeter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("previous", "now", "unsorted", "packed")
from meters import PROFILED_STEPS, WARMUP_STEPS  # noqa: E402


def run(config: dict, base: str, rows, device: str, steps: int, batch: int, kind: str, out: Path,
        peak_override: float | None = None, schedule_steps: int | None = None) -> dict:
    """Train ``steps`` steps of ``kind`` on a schedule of ``schedule_steps`` (default: ``steps``)."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    from st_code.lora import skip_lora_input_cast_under_autocast
    from st_code.training.config import CurriculumConfig, ModelConfig, StageConfig
    from st_code.training.compiling import check_cuda_graphs_with_gradcache, records_cuda_graphs
    from st_code.training.stage_loss import stage_loss
    from st_code.training.packing import resolve_shape_multiple
    from st_code.training.models import build_training_model, enable_activation_checkpointing

    cuda = device.startswith("cuda")
    model_config = ModelConfig(**{**config["model"], "base": base})
    if not cuda:
        model_config.dtype = None
    torch.manual_seed(0)  # the same initial weights (PMA, LoRA) for every run
    model = build_training_model(model_config).to(device)
    if config.get("gradient_checkpointing"):
        enable_activation_checkpointing(model)
    known = {f.name for f in dataclasses.fields(StageConfig)}
    stage = StageConfig(**{k: v for k, v in config["stages"][0].items() if k in known and k != "filters"})
    stage.batch_size = batch
    if kind == "previous":
        loss = CachedMultipleNegativesRankingLoss(model, scale=1 / stage.temperature, mini_batch_size=16)
    else:
        skip_lora_input_cast_under_autocast(model)  # as the curriculum trains
        stage.length_sorted = kind in ("now", "packed")
        stage.pack_sequences = kind == "packed"
        # packed shapes rounded up where the layers record CUDA graphs, as the curriculum does
        cuda_graphs = records_cuda_graphs(config.get("compile", False), config.get("compile_mode"), device)
        check_cuda_graphs_with_gradcache(cuda_graphs, stage)  # refused as the curriculum refuses it
        shape_multiple = resolve_shape_multiple(config.get("packed_shape_multiple", "auto"), cuda_graphs)
        loss = stage_loss(model, stage, log=print, shape_multiple=shape_multiple)
        if config.get("compile"):  # as the curriculum compiles: each layer in place
            from st_code.training.compiling import compile_blocks

            compile_blocks(model, config.get("compile_backend", "inductor"), config.get("compile_mode"))
    gradcache = hasattr(loss, "embed_minibatch")  # else one forward pass with gradients (gradcache: false)
    mini = (f"{loss.mini_batch_size} rows" + (f" / {loss.mini_batch_num_tokens} slots" if loss.mini_batch_num_tokens
                                              else "") if gradcache else "no GradCache: one pass with gradients"
            ) + {"now": ", sorted", "packed": ", sorted and packed"}.get(kind, ", as sampled")
    if getattr(loss, "shape_multiple", None) is not None:
        mini += f", shapes rounded up to {loss.shape_multiple.rows} rows x {loss.shape_multiple.width} tokens"
    if getattr(loss, "overhead_slots", None) is not None:
        mini += f", the cheapest cut ({loss.overhead_slots} slots a mini-batch)"
    # the data loader as the curriculum runs it (worker processes tokenize ahead on a GPU); previous: none
    loader = CurriculumConfig(dataloader_workers=0 if kind == "previous" else config.get("dataloader_workers", "auto")
                              ).loader_arguments(on_gpu=cuda)
    if loader["dataloader_num_workers"]:
        mini += f", {loader['dataloader_num_workers']} loader workers"
    meter = TokenMeter(model)
    replay = ReplayCheck(loss) if gradcache else None
    dataset = Dataset.from_dict({"anchor": [r[0] for r in rows], "positive": [r[1] for r in rows],
                                 "negative_1": [r[2] for r in rows]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out), max_steps=max(steps, schedule_steps or steps), per_device_train_batch_size=batch,
        learning_rate=stage.learning_rate, save_strategy="no", report_to=[], logging_steps=1,
        dataloader_drop_last=True, seed=0, bf16=cuda, use_cpu=device == "cpu",
        optim="adamw_torch_fused" if (kind != "previous" and cuda) else "adamw_torch",
        **loader,
    )
    profiled = cuda and steps >= WARMUP_STEPS + PROFILED_STEPS + 1
    clock = StepClock(meter, cuda, range(WARMUP_STEPS, WARMUP_STEPS + PROFILED_STEPS) if profiled else None)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                                         callbacks=[clock, StopAfter(steps)])
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    graphs_at_start, cuda_graphs_at_start = dynamo_graphs(), cuda_graphs_recorded()
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    # the timed window: after the warm-up step (and the profiled steps), or all of it for one step
    skip = min(WARMUP_STEPS + (PROFILED_STEPS if profiled else 0), len(clock.ends) - 1)
    t0, real0, slots0 = clock.ends[skip - 1] if skip > 0 else (start, 0, 0)
    t1, real1, slots1 = clock.ends[-1]
    seconds, timed_steps = t1 - t0, len(clock.ends) - skip
    # each timed step's own time: its median is the steady state even when a compiled run's later steps
    # still compile a new kind of graph (they are counted in graphs_compiled_while_timed)
    ends = [t0] + [end[0] for end in clock.ends[skip:]]
    step_seconds = [b - a for a, b in zip(ends, ends[1:])]
    graphs_before = clock.graphs[skip - 1] if skip > 0 else graphs_at_start
    cuda_graphs_before = clock.cuda_graphs[skip - 1] if skip > 0 else cuda_graphs_at_start
    shapes_before = clock.shapes[skip - 1] if skip > 0 else 0
    # GradCache embeds every row twice (a pass without gradients, then the replay): the batch's own
    # real tokens are half of what the meter counted
    passes = 2 if gradcache else 1
    real_tokens, slots = (real1 - real0) / passes, (slots1 - slots0) / passes
    result = {"mini_batch": mini, "timed_steps": timed_steps, "seconds": seconds, "total_seconds": total,
              "seconds_per_step": seconds / timed_steps, "samples_per_s": timed_steps * batch / seconds,
              "median_step_seconds": statistics.median(step_seconds),
              # each timed step's seconds, first timed step first: runs of different lengths compared step by step
              "step_seconds": step_seconds,
              "graphs_compiled": clock.graphs[-1] - graphs_at_start,
              "graphs_compiled_while_timed": clock.graphs[-1] - graphs_before,
              "cuda_graphs_recorded": None if cuda_graphs_at_start is None
              else clock.cuda_graphs[-1] - cuda_graphs_at_start,
              "cuda_graphs_recorded_while_timed": None if cuda_graphs_at_start is None
              else clock.cuda_graphs[-1] - cuda_graphs_before,
              "packed_shapes": clock.shapes[-1], "new_packed_shapes_while_timed": clock.shapes[-1] - shapes_before,
              "real_tokens_per_s": real_tokens / seconds,
              "padding_share": 1 - real_tokens / slots if slots else 0.0,
              "replay_max_difference": replay.max_difference if replay else 0.0,
              "embedding_max_value": replay.max_value if replay else 0.0,
              "replays_checked": replay.replays if replay else 0,
              "losses": [e["loss"] for e in trainer.state.log_history if "loss" in e],
              "learning_rates": [e["learning_rate"] for e in trainer.state.log_history if "loss" in e]}
    if cuda:
        name = torch.cuda.get_device_name()
        peak = peak_tflops(name, peak_override)
        result.update(gpu=name, peak_memory_gb=torch.cuda.max_memory_allocated() / 2**30,
                      gpu_busy_share=(clock.kernel_seconds / clock.profile_wall) if clock.kernel_seconds else None,
                      mfu=(6 * flop_parameters(model) * real_tokens / seconds) / (peak * 1e12) if peak else None)
    del trainer, loss, model
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "recipes" / "configs" / "c2llm-0.5b.yaml"))
    parser.add_argument("--model", help="the base: a hub id, a folder, or random:<shape> (st_code.testing."
                                        "RANDOM_SHAPES); default on CPU: a tiny random Qwen2 decoder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per run (the first is warm-up)")
    parser.add_argument("--previous-steps", type=int, help="steps of the slow 'previous' run (default: --steps)")
    parser.add_argument("--steps-for", default="", metavar="KIND=N,...",
                        help="steps of single runs, e.g. 'unsorted=25', on the learning-rate schedule of --steps "
                             "(a check against 'now' compares the steps both ran); overrides --steps and "
                             "--previous-steps for those runs")
    parser.add_argument("--batch-size", type=int, help="default: the config's first stage's")
    parser.add_argument("--pairs", type=int, default=600, help="training pairs requested from the standard library")
    parser.add_argument("--pairs-file", type=Path, help="read the pairs from here, or build and write them here")
    parser.add_argument("--runs", default="previous,now", help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of all runs; medians are printed")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if its name is not known")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.runs.split(",") if k.strip()]
    if not kinds or any(k not in RUNS for k in kinds):
        parser.error(f"--runs takes a comma-separated list of {', '.join(RUNS)}, got {args.runs!r}")
    steps_of = {k: args.steps for k in kinds}
    if args.previous_steps and "previous" in steps_of:
        steps_of["previous"] = args.previous_steps
    for item in filter(None, (i.strip() for i in args.steps_for.split(","))):
        kind, _, count = item.partition("=")
        if kind.strip() not in RUNS or not count.strip().isdigit() or int(count) < 1:
            parser.error(f"--steps-for takes KIND=N items with KIND one of {', '.join(RUNS)} and N >= 1, got {item!r}")
        if kind.strip() in steps_of:
            steps_of[kind.strip()] = int(count)
    config = yaml.safe_load(Path(args.config).read_text())
    batch = args.batch_size or config["stages"][0]["batch_size"]
    rows = load_or_make_pairs(args.pairs, args.pairs_file)
    if len(rows) < batch:
        parser.error(f"{len(rows)} pairs are fewer than one batch of {batch}: raise --pairs or lower --batch-size")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model is None:
            from st_code.testing import save_tiny_qwen2

            base = save_tiny_qwen2(tmp / "tiny", hidden_size=128, num_layers=2)
        else:
            from st_code.testing import resolve_benchmark_base

            base = resolve_benchmark_base(args.model, tmp)
        for r in range(args.rounds):
            for kind in kinds:
                if kind in failed:
                    continue
                try:
                    result = run(config, base, rows, args.device, steps_of[kind], batch, kind, tmp / f"{kind}{r}",
                                 args.peak_tflops, schedule_steps=args.steps)
                except Exception:  # one broken run must not cost the others' figures (a GPU hour is dear)
                    failed[kind] = traceback.format_exc()
                    print(f"round {r + 1} {kind}: FAILED\n{failed[kind]}", flush=True)
                    gc.collect()
                    if args.device.startswith("cuda"):
                        import torch

                        torch.cuda.empty_cache()
                    continue
                runs[kind].append(result)
                compiled = (f", {result['graphs_compiled_while_timed']} of its {result['graphs_compiled']} graphs "
                            "compiled in the timed steps") if result["graphs_compiled"] else ""
                if result["cuda_graphs_recorded"]:
                    compiled += (f", {result['cuda_graphs_recorded_while_timed']} of its "
                                 f"{result['cuda_graphs_recorded']} CUDA graphs recorded in the timed steps")
                if result["packed_shapes"]:
                    compiled += (f", {result['packed_shapes']} packed shapes, {result['new_packed_shapes_while_timed']}"
                                 " of them new in the timed steps")
                replays = (f", GradCache replays {result['replay_max_difference']:.2g} at most from their first pass "
                           f"(embeddings up to {result['embedding_max_value']:.2g}, {result['replays_checked']} "
                           "mini-batches)") if result["replays_checked"] else ""
                print(f"round {r + 1} {kind}: {result['seconds_per_step']:.2f} s/step (median step "
                      f"{result['median_step_seconds']:.2f} s{compiled}), {result['samples_per_s']:.2f} samples/s, "
                      f"padding {result['padding_share']:.3f}{replays}", flush=True)
                if args.json:
                    args.json.write_text(json.dumps(runs, indent=2))  # each finished run survives a later crash
    print(f"config {args.config} | base {args.model or 'tiny random Qwen2 (128-d, 2 layers)'} | {args.device} | "
          f"batch {batch} | steps {', '.join(f'{k} {n}' for k, n in steps_of.items())}, the first untimed | "
          f"{args.rounds} rounds | {len(rows)} pairs | gradient checkpointing "
          f"{bool(config.get('gradient_checkpointing'))}")
    keys = ["seconds_per_step", "median_step_seconds", "samples_per_s", "real_tokens_per_s", "padding_share",
            "peak_memory_gb", "gpu_busy_share", "mfu"]
    median = {kind: {k: statistics.median(r[k] for r in rs) for k in keys if all(r.get(k) is not None for r in rs)}
              for kind, rs in runs.items() if rs}
    kinds = [k for k in kinds if runs[k]]  # the runs that finished
    for kind, figures in median.items():
        shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
        print(f"{kind:<9} mini-batch {runs[kind][0]['mini_batch']}: {shown}")
    if "previous" in median:
        for kind in [k for k in kinds if k != "previous"]:
            print(f"ratio {kind}/previous: samples/s "
                  f"{median[kind]['samples_per_s'] / median['previous']['samples_per_s']:.2f}x, real tokens/s "
                  f"{median[kind]['real_tokens_per_s'] / median['previous']['real_tokens_per_s']:.2f}x")
    if {"now", "unsorted"} <= set(median):  # what the sorting alone buys (a gradcache: false stage's baseline)
        print(f"ratio now/unsorted: samples/s {median['now']['samples_per_s'] / median['unsorted']['samples_per_s']:.2f}x,"
              f" real tokens/s {median['now']['real_tokens_per_s'] / median['unsorted']['real_tokens_per_s']:.2f}x")
    for kind in kinds:
        print(f"loss curve, round 1, {kind}: " + ", ".join(f"{x:.4f}" for x in runs[kind][0]["losses"]))
    for other in [k for k in ("unsorted", "packed") if {"now", k} <= set(kinds)]:  # the maths must not change
        now, theirs = runs["now"][0]["losses"], runs[other][0]["losses"]
        shared = min(len(now), len(theirs))
        if not shared:
            continue
        gaps = [abs(a - b) for a, b in zip(now[:shared], theirs[:shared])]
        tail = min(10, shared)
        print(f"{'ordering' if other == 'unsorted' else 'packing'} check over {shared} steps: largest "
              f"|now - {other}| {max(gaps):.4f}, mean {statistics.mean(gaps):.4f}; mean of the last {tail}: now "
              f"{statistics.mean(now[shared - tail:shared]):.4f}, {other} {statistics.mean(theirs[shared - tail:shared]):.4f}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)} (tracebacks above)")


if __name__ == "__main__":
    main()
