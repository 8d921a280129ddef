"""Encode throughput: last-token vs PMA pooling vs LoRA (unmerged, merged), same backbone, one run.

    python benchmarks/encode_throughput.py [--backbone minilm|qwen] [--texts 256] [--repeats 5]
    python benchmarks/encode_throughput.py --device cuda --model Qwen/Qwen2.5-Coder-0.5B --dtype bfloat16
    python benchmarks/encode_throughput.py --device cuda --model random:qwen2.5-coder-0.5b --dtype bfloat16
                                                              # the same shape, random weights: no download

Variants are timed in interleaved rounds (A B C D, A B C D, ...) and the median is reported, so
machine noise hits every variant alike. Ratios are throughput relative to last-token pooling. Also
printed: real (non-padding) tokens/s, the padding share of the token slots computed (sentence-
transformers sorts texts by length before batching) and, on a GPU, the peak memory.
Targets (issue #2): PMA costs < 5% over last-token; merged LoRA within noise of no LoRA.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
import statistics
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import interleaved_rounds  # noqa: E402

import torch  # noqa: E402

import st_code  # noqa: E402
from st_code.assets import minilm_path  # noqa: E402
from st_code.testing import resolve_benchmark_base, save_tiny_qwen2  # noqa: E402
from token_meter import TokenMeter  # noqa: E402


def _texts(n: int) -> list[str]:
    import inspect
    import json

    source = inspect.getsource(json)
    lines = [line for line in source.splitlines() if line.strip()]
    return ["\n".join(lines[i : i + 6]) for i in range(0, 6 * n, 6)][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", choices=["minilm", "qwen"], default="minilm",
                        help="minilm: packaged all-MiniLM-L6-v2; qwen: random Qwen2 (512-d, 4 layers) with the real tokenizer")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", help="any base (hub id, folder, or random:<shape> from st_code.testing."
                                        "RANDOM_SHAPES) instead of --backbone")
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="e.g. bfloat16 on a GPU")
    args = parser.parse_args()
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            base = resolve_benchmark_base(args.model, tmp)
        elif args.backbone == "minilm":
            base = minilm_path()
        else:
            base = save_tiny_qwen2(tmp, hidden_size=512, num_layers=4, num_heads=8, num_kv_heads=4)
        texts = _texts(args.texts)
        common = {"max_seq_length": args.max_seq_length, "device": args.device,
                  "dtype": getattr(torch, args.dtype) if args.dtype else None}
        variants = {
            "lasttoken": st_code.build_model(base, pooling="lasttoken", **common),
            "pma": st_code.build_model(base, pooling="pma", **common),
            "lora (unmerged)": st_code.build_model(base, pooling="lasttoken", lora=True, **common),
        }
        variants["lora (merged)"] = st_code.merged_copy(variants["lora (unmerged)"])
        for model in variants.values():  # warm-up
            model.eval().encode(texts[:16], batch_size=args.batch_size)
        meters = {name: TokenMeter(model) for name, model in variants.items()}
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()

        def encoding(model):
            def work():
                with torch.inference_mode():
                    model.encode(texts, batch_size=args.batch_size)
            return work

        timings = interleaved_rounds({name: encoding(model) for name, model in variants.items()}, args.repeats,
                                     warmup=0, sync=torch.cuda.synchronize if args.device.startswith("cuda") else None)

    reference = statistics.median(timings["lasttoken"])
    print(f"backbone={args.model or args.backbone} device={args.device} texts={args.texts} batch={args.batch_size} "
          f"repeats={args.repeats} threads={torch.get_num_threads()}")
    print(f"{'variant':<18}{'median s':>10}{'texts/s':>10}{'real tokens/s':>15}{'padding':>9}{'throughput ratio':>18}")
    for name, values in timings.items():
        median = statistics.median(values)
        meter = meters[name]
        tokens_per_s = meter.real / args.repeats / median
        print(f"{name:<18}{median:>10.3f}{args.texts / median:>10.1f}{tokens_per_s:>15.0f}"
              f"{meter.padding_share:>9.3f}{reference / median:>18.3f}")
    if args.device.startswith("cuda"):
        print(f"GPU {torch.cuda.get_device_name()}: peak memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    spread = (max(timings["lasttoken"]) - min(timings["lasttoken"])) / reference
    print(f"noise (last-token max-min spread / median): {spread:.3f}")


if __name__ == "__main__":
    main()
