"""``st-code`` (also ``python -m st_code``): work with saved models from the command line.

    st-code export runs/annealing/final --to onnx [--quantize int8]   # onnx/model.onnx in the folder
    st-code export runs/annealing/final --to openvino                 # openvino/openvino_model.xml
    st-code push runs/annealing/final my-org/code-embedder [--public]  # upload the folder to the hub

Training is ``python recipes/annealing.py``, evaluation ``python -m st_code.evaluation``, data
generation ``python -m data_gen``.
"""

from __future__ import annotations

import argparse
import sys


def _export(args: argparse.Namespace) -> int:
    from st_code.export import export_model

    export_model(args.model, to=args.to, quantize=args.quantize, out=args.out)
    return 0


def _push(args: argparse.Namespace) -> int:
    from st_code.hub import push_folder

    push_folder(args.model, args.repo_id, private=not args.public)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="st-code", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    export = commands.add_parser("export", help="write an ONNX or OpenVINO graph of a saved model",
                                 description="Export a model saved with standard modules (mean, last-token or CLS "
                                             "pooling) for ONNX Runtime or OpenVINO; PMA and bidirectional models "
                                             "need PyTorch and are refused with the reason.")
    export.add_argument("model", help="the saved model folder")
    export.add_argument("--to", choices=["onnx", "openvino"], default="onnx")
    export.add_argument("--quantize", choices=["int8"], help="ONNX: also write onnx/model_qint8.onnx (int8 weights)")
    export.add_argument("--out", help="folder to write onnx/ and openvino/ into (default: the model folder)")
    export.set_defaults(run=_export)

    push = commands.add_parser("push", help="upload a saved model folder to the Hugging Face Hub",
                               description="Create the hub repository if needed (private unless --public) and "
                                           "upload the folder as it is on disk. Needs a write token "
                                           "(huggingface-cli login or HF_TOKEN).")
    push.add_argument("model", help="the saved model folder")
    push.add_argument("repo_id", help="owner/name")
    push.add_argument("--public", action="store_true", help="make a new repository public")
    push.set_defaults(run=_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    from st_code.errors import StCodeError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except StCodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


__all__ = ["main", "build_parser"]
