"""How many distinct packed mini-batch shapes a stage's steps make, exact and rounded up, side by side.

    python benchmarks/packed_shapes.py                                  # the c2llm-0.5b stage at an H200's budget
    python benchmarks/packed_shapes.py --budget 16384 --multiples none,8x128,4x64

Where compiled layers run as CUDA graphs (``compile_mode: reduce-overhead``), every new input shape
records new graphs, so a packed mini-batch whose shape (packed rows x width) changes every step could pay
a recording every step. ``packed_shape_multiple`` rounds the shape up so that a few shapes recur, at the
price of padding. This script measures both sides without a GPU: it tokenizes the benchmark's training
batches as the model does (the config's model section on a tiny decoder with the same Qwen tokenizer),
then plans every step's packed mini-batches with the loss's own code (columns merged, sorted, cut to the
token budget, packed; ``LengthSortedCachedMNRL``), and counts the distinct shapes, how many first
appear after the first ``--settle`` steps (what a long run keeps paying), the padding share and the
mini-batches per step. No forward pass is run: what a shape costs to record is a GPU figure
(``EXTRAS=cudagraphs,cudagraphs-exact`` in benchmarks/gpu_training_check.sh; on an H200 with torch 2.11
both crashed in GradCache's replayed backward, so st-code refuses CUDA graphs with GradCache).

The default budget, 65,536 token slots, is what ``mini_batch_size: auto`` found on an H200 for the
C2LLM-0.5B shape at 1,024 tokens (64 rows; docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def parse_multiples(text: str) -> list[tuple[str, object]]:
    """``none,8x128`` -> [("none", None), ("8x128", ShapeMultiple(8, 128))]."""
    from st_code.training.packing import ShapeMultiple

    found: list[tuple[str, object]] = []
    for item in filter(None, (i.strip() for i in text.split(","))):
        if item == "none":
            found.append((item, None))
            continue
        rows, _, width = item.partition("x")
        if not (rows.isdigit() and width.isdigit() and int(rows) >= 1 and int(width) >= 1):
            raise ValueError(f"--multiples takes none or ROWSxWIDTH items (e.g. 8x128), got {item!r}")
        found.append((item, ShapeMultiple(int(rows), int(width))))
    if not found:
        raise ValueError("--multiples is empty")
    return found


def batches(count: int, batch: int, steps: int, seed: int = 0) -> list[list[int]]:
    """Row indices of ``steps`` batches: a fresh random order every epoch, the last partial batch dropped
    (the trainer's sampler with ``dataloader_drop_last``)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    found: list[list[int]] = []
    while len(found) < steps:
        order = torch.randperm(count, generator=generator).tolist()
        found += [order[i:i + batch] for i in range(0, count - batch + 1, batch)]
    return found[:steps]


def measure(loss, features_of_steps, settle: int) -> dict:
    """Plan every step's packed mini-batches with the loss's own code; count shapes and padding."""
    seen: set[tuple[int, int]] = set()
    late = mini_batches = real = slots = 0
    for step, features in enumerate(features_of_steps):
        groups, _ = loss.groups(features)
        for group in groups:
            lengths = sorted(group["attention_mask"].sum(dim=1).tolist(), reverse=True)
            ranges = loss.plan(lengths)
            mini_batches += len(ranges)
            real += sum(lengths)
            slots += loss.slots(lengths, ranges)
            for begin, end in ranges:
                shape = loss.packed_shape(lengths[begin:end])
                if shape not in seen:
                    seen.add(shape)
                    late += step >= settle
    steps = len(features_of_steps)
    return {"shapes": len(seen), "new_after_settling": late, "padding_share": 1 - real / slots,
            "mini_batches_per_step": mini_batches / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "recipes" / "configs" / "c2llm-0.5b.yaml"))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--settle", type=int, default=10, help="shapes first seen after this many steps are counted "
                                                               "as late (each would record during a long run)")
    parser.add_argument("--batch-size", type=int, help="default: the config's first stage's")
    parser.add_argument("--budget", type=int, default=65536, help="token slots a mini-batch may hold")
    parser.add_argument("--multiples", default="none,8x128,8x64,4x128,1x128",
                        help="comma-separated: none (exact shapes) or ROWSxWIDTH")
    parser.add_argument("--pairs", type=int, default=600, help="training pairs requested from the standard library")
    parser.add_argument("--pairs-file", type=Path, help="read the pairs from here, or build and write them here")
    args = parser.parse_args()
    try:
        multiples = parse_multiples(args.multiples)
    except ValueError as error:
        parser.error(str(error))
    if args.steps < 1 or args.budget < 1:
        parser.error("--steps and --budget must be >= 1")

    import torch

    from st_code.testing import save_tiny_qwen2
    from st_code.training.config import ModelConfig
    from st_code.training.losses import LengthSortedCachedMNRL
    from st_code.training.models import build_training_model
    from meters import load_or_make_pairs

    config = yaml.safe_load(Path(args.config).read_text())
    batch = args.batch_size or config["stages"][0]["batch_size"]
    rows = load_or_make_pairs(args.pairs, args.pairs_file)
    if len(rows) < batch:
        parser.error(f"{len(rows)} pairs are fewer than one batch of {batch}: raise --pairs or lower --batch-size")
    with tempfile.TemporaryDirectory() as tmp:
        base = save_tiny_qwen2(Path(tmp) / "tiny", hidden_size=64, num_layers=1)
        model_config = ModelConfig(**{**config["model"], "base": base, "dtype": None})
        model = build_training_model(model_config)
    columns = list(zip(*rows))
    with torch.no_grad():
        features_of_steps = [[model.preprocess([column[i] for i in indices]) for column in columns]
                             for indices in batches(len(rows), batch, args.steps)]
    print(f"config {args.config} | batch {batch} x {len(columns)} columns | {args.steps} steps | budget "
          f"{args.budget} token slots | max length {model.max_seq_length} | {len(rows)} pairs")
    print(f"{'shape multiple':<16} {'shapes':>7} {'new after step ' + str(args.settle):>20} {'padding':>8} "
          f"{'mini-batches/step':>18}")
    for name, multiple in multiples:
        loss = LengthSortedCachedMNRL(model, pack=True, mini_batch_size=batch, mini_batch_num_tokens=args.budget,
                                      shape_multiple=multiple)
        figures = measure(loss, features_of_steps, args.settle)
        print(f"{name:<16} {figures['shapes']:>7} {figures['new_after_settling']:>20} "
              f"{figures['padding_share']:>8.3f} {figures['mini_batches_per_step']:>18.2f}")


if __name__ == "__main__":
    main()
