"""Export to ONNX (and OpenVINO) of a saved model with standard modules: the exported graph gives the
PyTorch embeddings; int8 stays close; custom-code models are refused with the reason."""

from __future__ import annotations

import numpy as np
import pytest

import st_code
from st_code.errors import UsageError
from st_code.export import ExportedEncoder, export_model
from tests.conftest import TEXTS


@pytest.fixture(scope="module")
def saved_minilm(tmp_path_factory, minilm_path):
    folder = tmp_path_factory.mktemp("export") / "minilm"
    model = st_code.build_model(minilm_path, pooling="mean", device="cpu")
    model.save(str(folder))
    return folder, model


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_onnx_export_gives_the_pytorch_embeddings(saved_minilm):
    folder, model = saved_minilm
    written = export_model(folder, to="onnx", quantize="int8", log=lambda _: None)
    assert [p.relative_to(folder).as_posix() for p in written] == ["onnx/model.onnx", "onnx/model_qint8.onnx"]
    texts = TEXTS + ["def parse(line):\n    return json.loads(line)" * 40]  # one text past max_seq_length
    expected = model.encode(texts, prompt_name="CosQA-query")
    exported = ExportedEncoder(folder).encode(texts, prompt_name="CosQA-query", batch_size=2)
    np.testing.assert_allclose(exported, expected, atol=1e-4)
    int8 = ExportedEncoder(folder, file="onnx/model_qint8.onnx").encode(texts)
    assert _cosine_rows(int8, model.encode(texts)).min() > 0.97


def test_a_decoder_with_last_token_pooling_exports_too(tmp_path, tiny_qwen_path):
    model = st_code.build_model(tiny_qwen_path, pooling="lasttoken", device="cpu")
    model.save(str(tmp_path / "decoder"))
    export_model(tmp_path / "decoder", log=lambda _: None)
    np.testing.assert_allclose(ExportedEncoder(tmp_path / "decoder").encode(TEXTS), model.encode(TEXTS), atol=1e-5)


def test_openvino_export_runs_the_same_graph(saved_minilm, tmp_path):
    pytest.importorskip("openvino")
    folder, model = saved_minilm
    export_model(folder, to="openvino", out=tmp_path, log=lambda _: None)
    (tmp_path / "tokenizer.json").symlink_to(folder / "tokenizer.json")
    for name in ("tokenizer_config.json", "sentence_bert_config.json", "config_sentence_transformers.json",
                 "config.json"):
        (tmp_path / name).symlink_to(folder / name)
    embeddings = ExportedEncoder(tmp_path, backend="openvino").encode(TEXTS)
    np.testing.assert_allclose(embeddings, model.encode(TEXTS), atol=1e-4)


def test_custom_code_models_are_refused_with_the_reason(tmp_path, tiny_qwen_path):
    model = st_code.build_model(tiny_qwen_path, pooling="pma", device="cpu")
    model.save(str(tmp_path / "pma"))
    with pytest.raises(UsageError, match="PMA pooling .* is custom code.*trust_remote_code=True"):
        export_model(tmp_path / "pma", log=lambda _: None)
    with pytest.raises(UsageError, match="only int8"):
        export_model(tmp_path / "pma", quantize="int4")


def test_export_command(saved_minilm, tmp_path, capsys):
    from st_code.cli import main

    folder, _ = saved_minilm
    assert main(["export", str(folder), "--to", "onnx", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "onnx" / "model.onnx").is_file()
    assert main(["export", str(tmp_path / "missing")]) == 2
    assert "no modules.json" in capsys.readouterr().err


def test_an_int8_onnx_graph_indexes_updates_and_searches(saved_minilm, tmp_path):
    """st-code index --model FOLDER/onnx/model_qint8.onnx: the graph embeds (no PyTorch in the loop), the
    manifest keeps its path, update and search reuse it, and a changed graph is refused."""
    from st_code.cli import main
    from st_code.search import CodeSearcher, build_index, read_manifest, update_index
    from tests.test_code_search import write_repo
    from tests.test_hybrid_search import SOURCES

    folder, model = saved_minilm
    graph = folder / "onnx" / "model_qint8.onnx"
    if not graph.is_file():
        export_model(folder, to="onnx", quantize="int8", log=lambda _: None)
    repo = write_repo(tmp_path / "repo", SOURCES)
    report = build_index(repo, tmp_path / "index", model=str(graph), log=lambda _: None, progress=False)
    assert report.embedded == report.units and read_manifest(tmp_path / "index")["model"] == str(graph.resolve())
    searcher = CodeSearcher(tmp_path / "index")
    hit = searcher.search(["gzip response compression middleware"], k=1)[0][0]
    assert hit.path == "middleware/compress.go"
    torch_vector = model.encode([hit.text], normalize_embeddings=True)[0]
    row = next(i for i, u in enumerate(searcher.units(range(report.units))) if u["text"] == hit.text)
    assert float(np.load(tmp_path / "index" / "vectors.npy")[row] @ torch_vector) > 0.97  # int8 ~ PyTorch
    assert update_index(tmp_path / "index", log=lambda _: None, progress=False).embedded == 0
    original = graph.read_bytes()
    try:
        graph.write_bytes((folder / "onnx" / "model.onnx").read_bytes())  # another (float) graph at that path
        assert main(["update", str(tmp_path / "index")]) != 0
    finally:
        graph.write_bytes(original)
