"""An exported graph (``st-code export``: ONNX, its int8 copy, OpenVINO) as a code-search embedder.

``st-code index REPO --model FOLDER/onnx/model_qint8.onnx`` embeds with onnxruntime instead of PyTorch
(int8: about 2x the texts per second on a CPU; docs/benchmarks.md). The index records the graph's path
and a fingerprint of the graph, tokenizer and settings, so ``update`` and ``search`` use the same graph
and refuse a changed one. Prompts, truncation and normalization are the saved model's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

GRAPH_SUFFIXES = (".onnx", ".xml")
_SETTINGS = ("tokenizer.json", "tokenizer_config.json", "sentence_bert_config.json",
             "config_sentence_transformers.json")


def is_exported_graph(name: str | None) -> bool:
    """Whether ``name`` is the path of an exported graph file (rather than a model folder or hub id)."""
    return bool(name) and Path(name).suffix in GRAPH_SUFFIXES and Path(name).expanduser().is_file()


class ExportedSearchModel:
    """The slice of ``SentenceTransformer``'s API the index and the searcher use, over an exported graph."""

    def __init__(self, graph: str | Path) -> None:
        from st_code.export import ExportedEncoder

        self.graph = Path(graph).expanduser().resolve()
        self.folder = self.graph.parent.parent  # FOLDER/onnx/model.onnx, FOLDER/openvino/openvino_model.xml
        backend = "openvino" if self.graph.suffix == ".xml" else "onnx"
        self.encoder = ExportedEncoder(self.folder, backend=backend, file=str(self.graph.relative_to(self.folder)))
        self.prompts = dict(self.encoder.prompts)
        self.tokenizer = self.encoder.tokenizer
        self._dimension: int | None = None

    def eval(self) -> "ExportedSearchModel":
        return self

    def encode(self, texts: list[str], prompt: str | None = None, batch_size: int = 32,
               normalize_embeddings: bool = True, **_: Any) -> np.ndarray:
        vectors = self.encoder.encode([(prompt or "") + text for text in texts], batch_size=batch_size)
        vectors = np.asarray(vectors, dtype=np.float32)
        if normalize_embeddings and len(vectors):
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def get_embedding_dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.encode(["x"]).shape[1])
        return self._dimension

    def fingerprint(self) -> str:
        """The graph's bytes and the settings that shape its input."""
        from st_code.fingerprint import path_fingerprint, stable_hash

        parts = [path_fingerprint(self.graph)] + [path_fingerprint(self.folder / name) for name in _SETTINGS]
        return stable_hash("|".join(parts))


__all__ = ["ExportedSearchModel", "is_exported_graph", "GRAPH_SUFFIXES"]
