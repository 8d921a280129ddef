"""Index speed of several embedders on one repository, side by side in one run: units per second and
the ratio to the first, each a fresh build of the same units (hybrid BM25 included).

    python benchmarks/index_speed.py ~/src/gin --models minilm runs/m/onnx/model.onnx \\
        runs/m/onnx/model_qint8.onnx static-minilm

A model is anything ``st-code index --model`` takes: a saved model, the packaged ``minilm``, a graph
``st-code export`` wrote, a static model ``st-code distill`` wrote.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repository", type=Path)
    parser.add_argument("--models", nargs="+", default=["minilm"])
    args = parser.parse_args(argv)
    from st_code.search import build_index
    from st_code.search.index import load_search_model

    first = None
    print(f"{'model':<60} {'units':>7} {'seconds':>8} {'units/s':>8} {'ratio':>6}")
    for name in args.models:
        loaded = load_search_model(name)  # loading is not indexing
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            report = build_index(args.repository, Path(work) / "index", _loaded=loaded, log=lambda _: None,
                                 progress=False)
            seconds = time.perf_counter() - start
        speed = report.units / seconds
        first = first or speed
        print(f"{name[-60:]:<60} {report.units:>7} {seconds:>8.1f} {speed:>8.0f} {speed / first:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
