"""Export a saved model to ONNX or OpenVINO, and run the exported graph without PyTorch.

``export_model`` writes, inside the model folder (or ``out``), the files the serving stacks read:
``onnx/model.onnx`` (``--quantize int8``: also ``onnx/model_qint8.onnx``, dynamic int8 weights) and
``openvino/openvino_model.xml`` (converted from the ONNX graph). The graph takes the tokenizer's
outputs (``input_ids``, ``attention_mask``, ``token_type_ids`` where the tokenizer makes them) and
returns ``last_hidden_state`` (what sentence-transformers' ONNX backend and text-embeddings-inference
pool themselves, by the folder's ``1_Pooling`` config) and ``sentence_embedding`` (pooling and
normalization included: what :class:`ExportedEncoder` returns).

Why not sentence-transformers' ``export_optimized_onnx_model`` / ``backend="onnx"``: they go through
optimum-onnx and optimum-intel, whose releases pin transformers below 4.58 and 5.6, while
sentence-transformers 6 runs on transformers 5.x; so the export is ``torch.onnx.export`` on the model's
own modules, traced on a padded batch so the attention-mask path is the general one.

Only models saved with sentence-transformers' own modules export: PMA pooling and bidirectional
attention are custom code (``modeling_st_code.py``) that ONNX consumers do not have.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from st_code.errors import MissingPathError, UsageError
from st_code.outputs import check_output_folder, staged_files

EXPORT_TARGETS = ("onnx", "openvino")
ONNX_FILE = "onnx/model.onnx"
ONNX_INT8_FILE = "onnx/model_qint8.onnx"
OPENVINO_FILE = "openvino/openvino_model.xml"
OUTPUTS = ("last_hidden_state", "sentence_embedding")
CUSTOM_REASONS = {
    "PMAPooling": "PMA pooling (a learned attention head, C2LLM) is custom code",
    "BidirectionalTransformer": "bidirectional attention on a decoder is custom code",
}


def _check_exportable(folder: Path) -> None:
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        raise MissingPathError(f"{folder} is not a saved model folder (no modules.json); pass the folder model.save() "
                               "wrote")
    custom = [entry["type"] for entry in json.loads(modules_file.read_text(encoding="utf-8"))
              if not entry["type"].startswith("sentence_transformers.")]
    if custom:
        name = custom[0].rsplit(".", 1)[-1]
        reason = CUSTOM_REASONS.get(name, f"{custom[0]} is custom code")
        raise UsageError(
            f"{folder} cannot be exported: {reason}, and ONNX/OpenVINO consumers (sentence-transformers' backends, "
            "text-embeddings-inference) run a plain transformer graph with a standard Pooling config. Serve it with "
            "PyTorch: SentenceTransformer(folder, trust_remote_code=True). Models with mean, last-token or CLS pooling "
            "export.")


def _requires(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"exporting needs {module.split('.')[0]}: pip install 'st-code[{extra}]'") from None


def export_model(model_path: str | Path, to: str = "onnx", quantize: str | None = None, out: str | Path | None = None,
                 opset: int = 18, log: Callable[[str], None] = print) -> list[Path]:
    """Export the saved model at ``model_path``; returns the files written.

    Args:
        to: ``"onnx"`` or ``"openvino"`` (OpenVINO converts the ONNX graph, which is written too).
        quantize: ``"int8"`` (ONNX only): also a dynamically quantized copy, int8 weights.
        out: the folder to write ``onnx/`` and ``openvino/`` into; default the model folder itself.
        opset: the ONNX opset.
    """
    if to not in EXPORT_TARGETS:
        raise UsageError(f"--to {to!r}: use one of {EXPORT_TARGETS}")
    if quantize not in (None, "int8"):
        raise UsageError(f"--quantize {quantize!r}: only int8 is supported")
    if quantize and to == "openvino":
        raise UsageError("--quantize int8 is for ONNX (onnxruntime's dynamic quantization); OpenVINO runs the "
                         "int8 ONNX file too: --to onnx --quantize int8")
    folder = Path(model_path)
    _check_exportable(folder)
    target = folder if out is None else check_output_folder(out, flag="--out", what="export", owned=_holds_export)
    target.mkdir(parents=True, exist_ok=True)
    # every file is written into a staging folder and moved into place only when all are complete: a full
    # disk or a failed conversion leaves the earlier export (or none), never a truncated model.onnx
    with staged_files(target) as staging:
        onnx_path = staging / ONNX_FILE
        names = [_export_onnx(folder, onnx_path, opset, log)]
        if quantize == "int8":
            quantization = _requires("onnxruntime.quantization", "export")
            int8_path = staging / ONNX_INT8_FILE
            quantization.quantize_dynamic(str(onnx_path), str(int8_path), weight_type=quantization.QuantType.QInt8,
                                          per_channel=True)  # per-tensor scales cost MiniLM up to 0.09 cosine
            names.append(int8_path)
        if to == "openvino":
            openvino = _requires("openvino", "openvino")
            xml = staging / OPENVINO_FILE
            xml.parent.mkdir(parents=True, exist_ok=True)
            openvino.save_model(openvino.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
            names.append(xml)
        names = [path.relative_to(staging) for path in names]
    written = [target / name for name in names]
    for path in written:
        log(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB)")
    return written


def _holds_export(folder: Path) -> bool:
    """An ``--out`` that may be written: an earlier export, or a saved model folder (exports go beside it)."""
    return any((folder / name).exists() for name in ("onnx", "openvino", "modules.json"))


def _export_onnx(folder: Path, onnx_path: Path, opset: int, log: Callable[[str], None]) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer

    _requires("onnx", "export")
    # eager attention: the mask is always built as a tensor, never skipped by a check on the example's values
    model = SentenceTransformer(str(folder), device="cpu", model_kwargs={"attn_implementation": "eager"}).eval()
    example = model.preprocess(["an example text that is long enough to pad the other", "short"])
    names = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in example]

    class Graph(torch.nn.Module):
        """The model's modules from tokenizer outputs to (token embeddings, sentence embedding)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.model.forward(dict(zip(names, tensors)))
            return features["token_embeddings"], features["sentence_embedding"]

    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes.update({"last_hidden_state": {0: "batch", 1: "sequence"}, "sentence_embedding": {0: "batch"}})
    with torch.no_grad():
        torch.onnx.export(Graph(), tuple(example[name] for name in names), str(onnx_path), input_names=names,
                          output_names=list(OUTPUTS), dynamic_axes=axes, opset_version=opset, dynamo=False)
    log(f"traced {ONNX_FILE} (inputs {', '.join(names)})")
    return onnx_path


class ExportedEncoder:
    """Sentence embeddings from an exported graph, with onnxruntime or OpenVINO and the folder's own
    tokenizer, truncation and prompts: no PyTorch needed.

    Args:
        folder: the model folder the export wrote into.
        backend: ``"onnx"`` or ``"openvino"``.
        file: the graph inside ``folder`` (default ``onnx/model.onnx`` / ``openvino/openvino_model.xml``;
            ``onnx/model_qint8.onnx`` for the int8 copy).
        num_threads: CPU threads the runtime may use (default: the runtime's own choice, all cores).
    """

    def __init__(self, folder: str | Path, backend: str = "onnx", file: str | None = None,
                 num_threads: int | None = None) -> None:
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        path = self.folder / (file or (ONNX_FILE if backend == "onnx" else OPENVINO_FILE))
        if not path.is_file():
            raise MissingPathError(f"no exported graph at {path}: run python -m st_code export {self.folder} --to {backend}")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder))
        settings = self._read("sentence_bert_config.json")
        self.max_seq_length = settings.get("max_seq_length") or self.tokenizer.model_max_length
        self.prompts = self._read("config_sentence_transformers.json").get("prompts", {})
        if backend == "onnx":
            onnxruntime = _requires("onnxruntime", "export")
            options = onnxruntime.SessionOptions()
            if num_threads:
                options.intra_op_num_threads = options.inter_op_num_threads = num_threads
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.inputs = [i.name for i in self.session.get_inputs()]
            self._run = lambda feed: self.session.run(["sentence_embedding"], feed)[0]
        elif backend == "openvino":
            openvino = _requires("openvino", "openvino")
            # f32: OpenVINO's CPU plugin would otherwise compute in bf16 where the CPU has it
            settings: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
            if num_threads:
                settings["INFERENCE_NUM_THREADS"] = num_threads
            compiled = openvino.Core().compile_model(str(path), "CPU", settings)
            self.inputs = [port.get_any_name() for port in compiled.inputs]
            output = compiled.output("sentence_embedding")
            self._run = lambda feed: compiled(feed)[output]
        else:
            raise UsageError(f"backend {backend!r}: use onnx or openvino")

    def _read(self, name: str) -> dict:
        path = self.folder / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def encode(self, texts: list[str], prompt_name: str | None = None, batch_size: int = 32) -> np.ndarray:
        """Embeddings of ``texts`` (with the named prompt prepended), as the PyTorch model computes them."""
        if prompt_name is not None and prompt_name not in self.prompts:
            raise UsageError(f"prompt_name {prompt_name!r} is not one of the model's prompts {sorted(self.prompts)}")
        prefix = self.prompts.get(prompt_name, "") if prompt_name else ""
        order = np.argsort([-len(text) for text in texts], kind="stable")  # batches of like lengths pad little
        batches = []
        for start in range(0, len(texts), batch_size):
            chunk = [prefix + texts[i] for i in order[start:start + batch_size]]
            encoded = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_seq_length,
                                     return_tensors="np")
            batches.append(self._run({name: encoded[name].astype(np.int64) for name in self.inputs}))
        if not batches:
            return np.zeros((0, 0), dtype=np.float32)
        embeddings = np.empty_like(np.concatenate(batches))
        embeddings[order] = np.concatenate(batches)
        return embeddings


__all__ = ["export_model", "ExportedEncoder", "EXPORT_TARGETS"]
