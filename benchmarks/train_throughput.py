"""Training throughput of a stage, today's settings against the previous ones, side by side.

    python benchmarks/train_throughput.py                               # CPU: a tiny decoder, the C2LLM shape
    python benchmarks/train_throughput.py --device cuda --model Qwen/Qwen2.5-Coder-0.5B \\
        --config recipes/configs/c2llm-0.5b.yaml --steps 50             # a GPU: the real model

Both runs train the same model (the config's model section; ``--model`` swaps the base), on the
same data (standard-library docstring -> code pairs with one mined hard negative: real, variable
lengths), with the same batch, learning rate and loss, for the same steps, in alternating rounds:

* ``previous``: sentence-transformers' CachedMultipleNegativesRankingLoss, mini-batches cut from the
  batch as sampled (every one padded to the batch's longest row), mini-batch 16;
* ``now``: the loss the curriculum builds for the config's first stage (``stage_loss``): st-code's
  LengthSortedCachedMNRL (each column longest first, cut into mini-batches of similar length, each at
  its own width) with ``mini_batch_size: auto`` (a memory probe on a GPU, 16 rows on a CPU), and
  fused AdamW on a GPU.

Printed per run: samples/s, real (non-padding) tokens/s, the padding share of the token slots the
backbone computed, and on a GPU the peak memory, the share of wall time the GPU was busy, and MFU on
real tokens (6 x parameters x real tokens per step, forward and backward, over the GPU's peak bf16
rate); then the ratios, and the two loss curves (the same maths: they differ only by dropout noise).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402
from token_meter import TokenMeter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(docstring, code, a mined hard negative) from the standard library: real code of every length."""
    from st_code.data import build_offline_data
    from st_code.data.offline_pairs import TEXT2CODE
    from st_code.mining import load_embedder, mine_rows

    pairs = build_offline_data(heldout_percent=1, include_package_docs=False, max_code_lines=60,
                               max_pairs_per_task=n, seed=seed).train[TEXT2CODE]
    negatives = mine_rows([q for q, _ in pairs], [d for _, d in pairs], load_embedder("minilm"), 1)
    return [(q, d, found[0]) for (q, d), found in zip(pairs, negatives) if found]


def run(config: dict, base: str, rows, device: str, steps: int, batch: int, sorted_: bool, out: Path) -> dict:
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    from st_code.training.config import ModelConfig, StageConfig
    from st_code.training.losses import stage_loss
    from st_code.training.models import build_training_model

    model_config = ModelConfig(**{**config["model"], "base": base})
    if device == "cpu":
        model_config.dtype = None
    torch.manual_seed(0)  # the same initial weights (PMA, LoRA) for both runs
    model = build_training_model(model_config).to(device)
    known = {f.name for f in dataclasses.fields(StageConfig)}
    stage = StageConfig(**{k: v for k, v in config["stages"][0].items() if k in known and k != "filters"})
    stage.batch_size = batch
    if sorted_:
        loss = stage_loss(model, stage, log=print)
        mini = f"{loss.mini_batch_size} rows" + (f" / {loss.mini_batch_num_tokens} slots"
                                                 if loss.mini_batch_num_tokens else "")
    else:
        mini = "16 rows"
        loss = CachedMultipleNegativesRankingLoss(model, scale=1 / stage.temperature, mini_batch_size=16)
    meter = TokenMeter(model)
    dataset = Dataset.from_dict({"anchor": [r[0] for r in rows], "positive": [r[1] for r in rows],
                                 "negative_1": [r[2] for r in rows]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch,
        learning_rate=stage.learning_rate, save_strategy="no", report_to=[], logging_steps=1,
        dataloader_drop_last=True, seed=0, bf16=device.startswith("cuda"), use_cpu=device == "cpu",
        optim="adamw_torch_fused" if (sorted_ and device.startswith("cuda")) else "adamw_torch",
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    busy = _gpu_busy_share(trainer) if device.startswith("cuda") else None
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    parameters = sum(p.numel() for p in model.parameters())
    # GradCache embeds every row twice (a pass without gradients, then the replay): the batch's own
    # real tokens are half of what the meter counted
    result = {"mini_batch": mini, "seconds": seconds, "samples_per_s": steps * batch / seconds,
              "real_tokens_per_s": meter.real / 2 / seconds, "padding_share": meter.padding_share,
              "losses": [e["loss"] for e in trainer.state.log_history if "loss" in e]}
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        real_tokens = meter.real / 2
        result.update(gpu=name, peak_memory_gb=torch.cuda.max_memory_allocated() / 2**30, gpu_busy_share=busy(),
                      mfu=(6 * parameters * real_tokens / seconds) / (peak * 1e12) if peak else None)
    return result


def _gpu_busy_share(trainer):
    """Kernel time over wall time, from the torch profiler over the whole run."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    profiler = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
    original = trainer.train
    timing = {}

    def train(*args, **kwargs):
        with profiler:
            start = time.perf_counter()
            out = original(*args, **kwargs)
            torch.cuda.synchronize()
            timing["wall"] = time.perf_counter() - start
        return out

    trainer.train = train

    def share() -> float:
        kernel_us = sum(e.device_time_total for e in profiler.key_averages() if e.device_time_total)
        return kernel_us / 1e6 / timing["wall"]

    return share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "recipes" / "configs" / "c2llm-0.5b.yaml"))
    parser.add_argument("--model", help="the base (hub id or folder); default on CPU: a tiny random Qwen2 decoder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, help="default: the config's first stage's")
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    batch = args.batch_size or config["stages"][0]["batch_size"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = args.model
        if base is None:
            from st_code.testing import save_tiny_qwen2

            base = save_tiny_qwen2(tmp / "tiny", hidden_size=128, num_layers=2)
        rows = make_pairs(args.pairs)
        runs: dict[str, list[dict]] = {"previous": [], "now": []}
        for r in range(args.rounds):
            for name, sorted_ in (("previous", False), ("now", True)):
                runs[name].append(run(config, base, rows, args.device, args.steps, batch, sorted_, tmp / f"{name}{r}"))
    print(f"config {args.config} | base {args.model or 'tiny random Qwen2 (128-d, 2 layers)'} | {args.device} | "
          f"batch {batch} | {args.steps} steps x {args.rounds} rounds | {len(rows)} pairs")
    keys = ["samples_per_s", "real_tokens_per_s", "padding_share", "peak_memory_gb", "gpu_busy_share", "mfu"]
    median = {name: {k: statistics.median(r[k] for r in rs) for k in keys if rs[0].get(k) is not None}
              for name, rs in runs.items()}
    for name, figures in median.items():
        shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        print(f"{name:<9} mini-batch {runs[name][0]['mini_batch']}: {shown}")
    print(f"ratio now/previous: samples/s {median['now']['samples_per_s'] / median['previous']['samples_per_s']:.2f}x, "
          f"real tokens/s {median['now']['real_tokens_per_s'] / median['previous']['real_tokens_per_s']:.2f}x")
    print("loss curves (round 1): previous " + ", ".join(f"{x:.4f}" for x in runs["previous"][0]["losses"])
          + " | now " + ", ".join(f"{x:.4f}" for x in runs["now"][0]["losses"]))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
