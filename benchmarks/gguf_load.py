"""Building a model from a .gguf base: transformers' four reads of the file vs one shared read.

    python benchmarks/gguf_load.py                       # a tiny Qwen2 with the real 151k vocabulary
    python benchmarks/gguf_load.py --gguf ~/models/qwen2.5-coder-0.5b-q8_0.gguf --rounds 1

transformers parses a .gguf's metadata (vocabulary and merges included) for the config, the tokenizer's
config, the tokenizer and the weights; ``st_code.build_model`` shares one reader across the four
(``st_code.gguf_reading``). Both ways are timed in alternating rounds in this one run, the median
reported, and their embeddings compared: sharing the reader must not change the model.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import st_code  # noqa: E402
import st_code.builder  # noqa: E402
from st_code.gguf_reading import gguf_read_once  # noqa: E402

TEXTS = ["def add(a, b):\n    return a + b", "read a jsonl file line by line"]


def _build(gguf_file: str, shared: bool):
    st_code.builder.gguf_read_once = gguf_read_once if shared else contextlib.nullcontext
    try:
        start = time.perf_counter()
        model = st_code.build_model(gguf_file, pooling="lasttoken", device="cpu")
        return time.perf_counter() - start, model.encode(TEXTS)
    finally:
        st_code.builder.gguf_read_once = gguf_read_once


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", help="a .gguf file (default: write a tiny random Qwen2 with the real tokenizer)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both ways (default 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        gguf_file = args.gguf
        if gguf_file is None:
            from st_code.testing import save_tiny_qwen2_gguf

            gguf_file = save_tiny_qwen2_gguf(Path(folder) / "tiny.gguf", seed=3)
        times: dict[str, list[float]] = {"four reads": [], "one read": []}
        embeddings = {}
        for _ in range(args.rounds):
            for name, shared in (("four reads", False), ("one read", True)):
                seconds, embeddings[name] = _build(gguf_file, shared)
                times[name].append(seconds)
    before, after = (statistics.median(times[n]) for n in ("four reads", "one read"))
    print(f"{'way':<12} {'build s (median)':>17}  rounds")
    for name, values in times.items():
        print(f"{name:<12} {statistics.median(values):>17.1f}  {', '.join(f'{v:.1f}' for v in values)}")
    print(f"ratio (four reads / one read): {before / after:.2f}x")
    difference = float(np.abs(embeddings["four reads"] - embeddings["one read"]).max())
    print(f"largest embedding difference: {difference:.2e}")
    return 0 if difference < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
