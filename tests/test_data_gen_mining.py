"""data_gen's hard-negative mining: one corpus embedding for every task, the embedder's precision and
batch defaults, and bad settings refused before any call."""

from __future__ import annotations

import pytest

from data_gen import PipelineConfig


def test_mining_embeds_the_shared_corpus_once_for_all_tasks(minilm_path):
    """Two tasks over one corpus: mine_hard_negatives runs per task, the corpus is embedded once."""
    from sentence_transformers import SentenceTransformer

    from data_gen.negatives import mine
    from data_gen.pairs import Pair

    model = SentenceTransformer(minilm_path, device="cpu")
    embedded: list[str] = []
    real_encode = model.encode

    def counting_encode(inputs, *args, **kwargs):
        embedded.extend([inputs] if isinstance(inputs, str) else inputs)
        return real_encode(inputs, *args, **kwargs)

    model.encode = counting_encode
    corpus = [f"def helper_{i}(x):\n    return x * {i} + {i % 7}" for i in range(40)]
    pairs = [Pair(key=f"{task}{i}", task=task, major_type="Text2Code", language="English", code_language="Python",
                  instruction="", query=f"{task}: multiply by {i}",
                  positive=f"def f_{task}_{i}(x):\n    return x * {i}",
                  source_id=str(i)) for task in ("A", "B") for i in range(12)]
    kept, report = mine(pairs, model, corpus, num_negatives=3)
    assert report.pairs_in == 24 and report.pairs_out == len(kept) > 0
    assert all(len(p.negatives) == 3 and p.positive not in p.negatives for p in kept)
    task_of = {p.positive: p.task for p in pairs}
    assert all(task_of.get(n, p.task) == p.task for p in kept for n in p.negatives)  # no other task's positives
    assert sum(text == corpus[0] for text in embedded) == 1  # shared corpus: embedded once, not once per task
    assert "encode_document" not in model.__dict__ and "encode_query" not in model.__dict__  # wrappers removed
    assert 0 < report.embedding_seconds <= report.seconds  # timed inside the embedder
    assert report.search_seconds == pytest.approx(report.seconds - report.embedding_seconds)


def test_mining_embedder_precision_and_batch_defaults(minilm_path, monkeypatch):
    """``auto`` picks bf16 only where the hardware computes it; explicit choices are honoured; the
    embedder runs in the chosen dtype and its vectors agree with float32."""
    import torch

    from st_code.mining import cpu_has_native_bf16, default_batch_size, load_embedder, resolve_dtype

    assert resolve_dtype("float32", "cpu") is torch.float32 and resolve_dtype("bfloat16", "cuda") is torch.bfloat16
    assert resolve_dtype("auto", "cpu") is (torch.bfloat16 if cpu_has_native_bf16() else torch.float32)
    assert resolve_dtype("auto", "mps") is torch.float32
    # no GPU here: stand in for torch's answer about one (an old card without bf16, then a recent one)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_dtype("auto", "cuda:0") is torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("auto", "cuda") is torch.bfloat16
    with pytest.raises(ValueError, match="not one of"):
        resolve_dtype("int8", "cpu")
    assert default_batch_size("cpu") < default_batch_size("cuda")

    texts = ["def add(a, b):\n    return a + b", "Read every record of a JSON lines file"]
    full = load_embedder("minilm", "float32", device="cpu")
    half = load_embedder("minilm", "bfloat16", device="cpu")
    assert full.dtype == torch.float32 and half.dtype == torch.bfloat16
    a = full.encode(texts, convert_to_tensor=True)
    b = half.encode(texts, convert_to_tensor=True).float()
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.99


def test_bad_mining_settings_fail_before_any_call(tmp_path, capsys):
    from data_gen.__main__ import main

    with pytest.raises(ValueError, match="embedder_dtype 'fp8'"):
        PipelineConfig(out=str(tmp_path), embedder_dtype="fp8")
    assert main(["mine", "--out", str(tmp_path), "--embed-batch-size", "0"]) == 2
    assert "embed_batch_size must be a whole number >= 1" in capsys.readouterr().err
