"""Where one GradCache training step's time goes: how the cut into mini-batches trades padding for passes.

    python benchmarks/step_anatomy.py                                   # CPU: a tiny decoder
    python benchmarks/step_anatomy.py --device cuda --model random:qwen2.5-coder-0.5b \\
        --pairs-file .device/pairs.json --profile                       # a GPU (see gpu_training_check.sh)

One batch of the training pairs (``--batch-size`` rows, query / code / hard negative), the model and loss
of the config's first stage, and the loss's forward and backward timed (no optimizer, no data loader)
with the batch cut into mini-batches several ways, side by side:

* ``padding<=10%``: length-sorted, a mini-batch ends before its padding passes 10% (the CPU default);
* ``overhead=<share>``: length-sorted, the cheapest cut (``cheapest_ranges``) when one mini-batch costs
  ``<share>`` x the token budget in slots on top of its own tokens;
* ``packed``: length-sorted, each mini-batch's rows packed side by side and filled to the token budget,
  drawing on all three columns at once (``pack_sequences``; st_code.training.packing), where the model
  supports it; ``packed per column``: the same, each column on its own (one mini-batch at least per column);
* ``stock``: sentence-transformers' GradCache, 16 rows as sampled (the settings before issue #13);
* with ``--compile BACKEND``, last, the packed cut again with each layer compiled in place
  (st_code.training.compiling), against the same cut uncompiled (``--compile-mode reduce-overhead``: with
  CUDA graphs, and how many were recorded during the warm-up and the timed steps);
* with ``--lora-no-cast``, the first overhead cut again as the curriculum trains it, without peft's cast
  of every LoRA input to the adapter's float32 under autocast (a quarter of the GPU time of the fastest
  cut on an H200 went to dtype copies); ``--cpu-bf16`` runs a CPU under bf16 autocast as a GPU would.

Then the fixed cost of one mini-batch (a pass of 1 short row: forward without gradients, forward and
backward) against a full one (the token budget's rows at full length), i.e. how many token slots one
more mini-batch is worth, and with ``--profile`` the operators that take the step's CPU time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "recipes" / "configs" / "c2llm-0.5b.yaml"))
    parser.add_argument("--model", help="a hub id, a folder or random:<shape>; default: a tiny random Qwen2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, help="default: the config's first stage's")
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--pairs-file", type=Path)
    parser.add_argument("--max-seq-length", type=int, help="truncate here (default: the config's model's)")
    parser.add_argument("--shares", default="0.1,0.25,0.5", help="overhead shares of the token budget to try")
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per cut (after one warm-up step)")
    parser.add_argument("--no-padding-rule", action="store_true",
                        help="skip the padding<=10%% cut (on a GPU its many mini-batches take most of the run)")
    parser.add_argument("--stock", action="store_true", help="also time sentence-transformers' own GradCache")
    parser.add_argument("--profile", action="store_true", help="profile one step of the first overhead cut")
    parser.add_argument("--lora-no-cast", action="store_true",
                        help="time the first overhead cut again as the curriculum trains: LoRA inputs not cast to "
                             "the adapter's float32 under autocast (st_code.lora.skip_lora_input_cast_under_autocast)")
    parser.add_argument("--cpu-bf16", action="store_true",
                        help="on a CPU, keep the config's bf16 backbone and run under bf16 autocast, as a GPU does")
    parser.add_argument("--compile", metavar="BACKEND",
                        help="last, compile each layer in place (st_code.training.compiling; e.g. inductor) and time "
                             "the packed cut (else the first overhead cut) again, compiled, after two warm-up steps")
    parser.add_argument("--compile-mode", help="torch.compile's mode with --compile, e.g. max-autotune-no-cudagraphs")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch
    from meters import cuda_graphs_recorded, load_or_make_pairs

    from st_code.training.compiling import check_cuda_graphs_with_gradcache, records_cuda_graphs
    from st_code.training.config import ModelConfig, StageConfig
    from st_code.training.losses import LengthSortedCachedMNRL
    from st_code.training.stage_loss import mini_batch_limits
    from st_code.training.models import build_training_model
    from st_code.training.packing import packing_unsupported

    config = yaml.safe_load(Path(args.config).read_text())
    cuda = args.device.startswith("cuda")
    rows = load_or_make_pairs(args.pairs, args.pairs_file)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            from st_code.testing import save_tiny_qwen2

            base = save_tiny_qwen2(Path(tmp) / "tiny", hidden_size=128, num_layers=2)
        else:
            from st_code.testing import resolve_benchmark_base

            base = resolve_benchmark_base(args.model, tmp)
        model_config = ModelConfig(**{**config["model"], "base": base})
        model_config.max_seq_length = args.max_seq_length or model_config.max_seq_length
        if not cuda and not args.cpu_bf16:
            model_config.dtype = None
        torch.manual_seed(0)
        model = build_training_model(model_config).to(args.device)
        model.train()  # as the trainer sets it (the backbone loads in eval mode)
    stage = StageConfig(**{k: v for k, v in config["stages"][0].items()
                           if k in {"name", "datasets", "batch_size", "max_seq_length"}})
    stage.batch_size = args.batch_size or stage.batch_size
    stage.max_seq_length = args.max_seq_length or stage.max_seq_length
    if args.compile:  # every cut timed here is GradCache: refused as the curriculum refuses it, before any timing
        check_cuda_graphs_with_gradcache(records_cuda_graphs(True, args.compile_mode, args.device), stage)
    chosen = random.Random(0).sample(rows, stage.batch_size)

    def on_device(feature: dict) -> dict:
        return {k: v.to(args.device) if hasattr(v, "to") else v for k, v in feature.items()}

    features = [on_device(model.preprocess([r[c] for r in chosen])) for c in range(3)]
    labels = torch.zeros(stage.batch_size, device=args.device)
    budget_rows, budget = mini_batch_limits(model, stage, log=print)
    budget = budget or budget_rows * (stage.max_seq_length or model.max_seq_length)
    autocast = torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda or args.cpu_bf16)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    results: dict[str, dict] = {}

    def step(loss) -> float:
        sync()
        start = time.perf_counter()
        with autocast:  # as accelerate wraps the model's forward: GradCache's replay in the backward too
            value = loss([dict(f) for f in features], labels)
            value.backward()
        sync()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    def describe(loss) -> tuple[int, float]:
        passes = real = slots = 0
        groups = loss.groups(features)[0] if hasattr(loss, "groups") else features  # packed: the columns as one
        for feature in groups:
            lengths = sorted(feature["attention_mask"].sum(dim=1).tolist(), reverse=True)
            if hasattr(loss, "plan"):  # sorted, each mini-batch as wide as its first row (or packed)
                plan = loss.plan(lengths)
                slots += loss.slots(lengths, plan)
            else:  # as sampled, each mini-batch as wide as the whole column's longest row
                plan = [(b, min(b + 16, len(lengths))) for b in range(0, len(lengths), 16)]
                slots += lengths[0] * len(lengths)
            passes += len(plan)
            real += sum(lengths)
        return passes, 1 - real / slots

    scale = 1 / float(config["stages"][0].get("temperature", 0.05))
    cuts = {} if args.no_padding_rule else {"padding<=10%": dict(max_padding=0.1)}
    cuts.update({f"overhead={share}": dict(overhead_slots=float(share) * budget) for share in args.shares.split(",")})
    if packing_unsupported(model) is None:
        cuts["packed"] = dict(pack=True)
        cuts["packed per column"] = dict(pack=True, pack_columns=False)
    else:
        print(f"no packed cut: {packing_unsupported(model)}")
    losses = {name: LengthSortedCachedMNRL(model, scale=scale, mini_batch_size=stage.batch_size,
                                           mini_batch_num_tokens=budget, **kwargs) for name, kwargs in cuts.items()}
    if args.stock:
        from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

        losses["stock"] = CachedMultipleNegativesRankingLoss(model, scale=scale, mini_batch_size=16)
    order = sorted(losses, key=lambda name: not name.startswith("overhead"))  # the GPU's cut first
    print(f"batch {stage.batch_size} x 3 columns | token budget {budget} slots | device {args.device}", flush=True)
    step(losses[order[0]])  # warm-up: kernels, allocator, autotuning
    for name in order:
        passes, padding = describe(losses[name])
        times = [step(losses[name]) for _ in range(args.repeats)]
        results[name] = {"mini_batches": passes, "padding_share": padding, "seconds": statistics.median(times)}
        print(f"{name:<16} {passes:>3} mini-batches  padding {padding:.3f}  {statistics.median(times):7.3f} s/step  "
              f"({statistics.median(times) / passes * 1000:.0f} ms a mini-batch)", flush=True)

    if args.lora_no_cast:
        # peft's own switch, the one st_code.lora.skip_lora_input_cast_under_autocast flips during a
        # forward under autocast; the two settings alternate so that drift hits both alike
        from peft.helpers import disable_input_dtype_casting

        name = order[0]
        timed: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeats + 1):
            for uncast in (True, False):
                with disable_input_dtype_casting(model, active=uncast):
                    timed[uncast].append(step(losses[name]))
        cast_s, uncast_s = statistics.median(timed[False][1:]), statistics.median(timed[True][1:])
        results[f"{name}, LoRA inputs not cast"] = {**results[name], "seconds": uncast_s, "cast_seconds": cast_s}
        print(f"{name}, LoRA inputs cast to float32 {cast_s:.3f} s/step, not cast {uncast_s:.3f} s/step "
              f"({cast_s / uncast_s:.2f}x; alternated, {args.repeats} each after one)", flush=True)

    # the fixed cost of a mini-batch against a full one, in the loss's own three passes
    def passes_time(rows_: int, width: int) -> float:
        feature = on_device(model.preprocess([" ".join(["code"] * width)] * rows_))
        feature = {k: v[:, -width:] if getattr(v, "ndim", 0) == 2 else v for k, v in feature.items()}
        times = []
        for _ in range(3):
            sync()
            start = time.perf_counter()
            with autocast:
                with torch.no_grad():
                    model(dict(feature))
                out = model(dict(feature))["sentence_embedding"]
            out.float().sum().backward()
            sync()
            model.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    length = stage.max_seq_length or model.max_seq_length
    small = passes_time(1, 16)
    full_rows = max(1, budget // length)
    full = passes_time(full_rows, length)
    per_slot = max(full - small, 1e-9) / (full_rows * length - 16)
    results["fixed_cost"] = {"one_short_row_s": small, "full_s": full, "full_rows": full_rows, "width": length,
                             "slots_worth_one_mini_batch": small / per_slot}
    print(f"one mini-batch of 1 x 16 tokens: {small * 1000:.1f} ms | {full_rows} x {length}: {full * 1000:.1f} ms | "
          f"one more mini-batch costs as much as {small / per_slot:,.0f} token slots "
          f"({small / per_slot / budget:.2f} of the budget)", flush=True)

    def profiled(name: str, label: str) -> None:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as trace:
            wall = step(losses[name])
        table = trace.key_averages()
        kernels = sum(e.count for e in table if getattr(e, "device_type", None) is not None
                      and str(e.device_type).endswith("CUDA"))
        print(f"profiled step ({label}): {wall:.3f} s; {sum(e.count for e in table):,} events, "
              f"{kernels:,} on the GPU", flush=True)
        print(table.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=50), flush=True)

    if args.profile:
        profiled(order[0], order[0])

    if args.compile:  # last: compiling changes the model in place for whatever runs after it
        from st_code.training.compiling import compile_blocks

        name = "packed" if "packed" in losses else order[0]
        if args.profile and name != order[0]:  # the same cut uncompiled: kernels side by side
            profiled(name, name)
        blocks = compile_blocks(model, args.compile, args.compile_mode)
        recorded_at_start = cuda_graphs_recorded()  # with --compile-mode reduce-overhead
        start = time.perf_counter()
        step(losses[name])
        step(losses[name])  # graphs for what the first step did not meet
        compile_s = time.perf_counter() - start
        recorded_in_warm_up = cuda_graphs_recorded()
        times = [step(losses[name]) for _ in range(args.repeats)]
        seconds = statistics.median(times)
        recorded = None if recorded_at_start is None else {
            "cuda_graphs_recorded": cuda_graphs_recorded() - recorded_at_start,
            "cuda_graphs_recorded_while_timed": cuda_graphs_recorded() - recorded_in_warm_up}
        results[f"{name}, compiled"] = {**results[name], "seconds": seconds, "compile_seconds": compile_s,
                                        "backend": args.compile, "mode": args.compile_mode, **(recorded or {})}
        cuda_graphs = (f"; {recorded['cuda_graphs_recorded']} CUDA graphs recorded, "
                       f"{recorded['cuda_graphs_recorded_while_timed']} in the timed steps") \
            if recorded and recorded["cuda_graphs_recorded"] else ""
        print(f"{name}, compiled ({args.compile}, {blocks} layers): {seconds:.3f} s/step against "
              f"{results[name]['seconds']:.3f} s uncompiled ({results[name]['seconds'] / seconds:.2f}x); "
              f"the two warm-up steps took {compile_s:.0f} s{cuda_graphs}", flush=True)
        if args.profile:
            profiled(name, f"{name}, compiled")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
