"""Encoding speed of an exported model against PyTorch, side by side in one run.

    python benchmarks/export_speed.py [--texts 128] [--batch-size 32] [--rounds 3] [--threads N]

The packaged all-MiniLM-L6-v2 (mean pooling) is saved, exported (``st-code export``: ONNX, ONNX
int8, OpenVINO), and the same texts are encoded by each, in interleaved rounds (medians). Printed:
texts/s, the ratio to PyTorch, and the lowest cosine similarity of any text's embedding to
PyTorch's (what the export costs in accuracy). Every runtime gets the same number of CPU threads.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import interleaved_rounds  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _texts(n: int) -> list[str]:
    """Functions of the standard library's json package, of their real, varied lengths."""
    import json as module

    source = inspect.getsource(module.decoder) + inspect.getsource(module.encoder)
    chunks = [chunk for chunk in source.split("\ndef ") if chunk.strip()]
    return [(chunks[i % len(chunks)])[: 200 + 37 * i % 1500] for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads for every runtime")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import st_code
    from st_code.assets import minilm_path
    from st_code.export import ExportedEncoder, export_model

    texts = _texts(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "minilm"
        model = st_code.build_model(minilm_path(), pooling="mean", device="cpu").eval()
        model.save(str(folder))
        export_model(folder, to="onnx", quantize="int8", log=lambda _: None)
        runners = {"pytorch": lambda t: model.encode(t, batch_size=args.batch_size)}
        onnx = ExportedEncoder(folder, num_threads=args.threads)
        int8 = ExportedEncoder(folder, file="onnx/model_qint8.onnx", num_threads=args.threads)
        runners["onnx"] = lambda t: onnx.encode(t, batch_size=args.batch_size)
        runners["onnx int8"] = lambda t: int8.encode(t, batch_size=args.batch_size)
        try:
            export_model(folder, to="openvino", log=lambda _: None)
            openvino = ExportedEncoder(folder, backend="openvino", num_threads=args.threads)
            runners["openvino"] = lambda t: openvino.encode(t, batch_size=args.batch_size)
        except Exception as exc:  # openvino not installed: measure the rest
            print(f"(openvino skipped: {exc})")
        reference = runners["pytorch"](texts)
        agreement = {}
        for name, run in runners.items():  # warm-up, and accuracy
            embeddings = run(texts)
            agreement[name] = float(((embeddings * reference).sum(1) / np.linalg.norm(embeddings, axis=1)
                                     / np.linalg.norm(reference, axis=1)).min())

        def timed(run):
            def work():
                with torch.inference_mode():
                    run(texts)
            return work

        timings = interleaved_rounds({name: timed(run) for name, run in runners.items()}, args.rounds, warmup=0)
    base = statistics.median(timings["pytorch"])
    print(f"all-MiniLM-L6-v2, {args.texts} texts, batch {args.batch_size}, {args.rounds} rounds, "
          f"{args.threads} CPU threads each")
    print(f"{'runtime':<12}{'median s':>10}{'texts/s':>10}{'vs pytorch':>12}{'min cosine':>12}")
    results = {}
    for name, values in timings.items():
        median = statistics.median(values)
        results[name] = {"seconds": median, "ratio": base / median, "min_cosine": agreement[name]}
        print(f"{name:<12}{median:>10.3f}{args.texts / median:>10.1f}{base / median:>12.2f}{agreement[name]:>12.4f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
