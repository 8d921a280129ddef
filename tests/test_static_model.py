"""``st-code distill``: a static model distilled from a tiny BERT built here (the packaged MiniLM's tokenizer,
random weights: the real vocabulary at a fraction of the cost), loaded by plain sentence-transformers and
used by ``st-code index`` and hybrid search."""

from __future__ import annotations

import numpy as np
import pytest

from st_code.errors import UsageError
from st_code.search import CodeSearcher, build_index
from st_code.search.static import _pca, _weighted, distill, sample_texts
from tests.test_code_search import write_repo
from tests.test_hybrid_search import SOURCES


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, minilm_path):
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder / "bert")
    tokenizer.save_pretrained(folder / "bert")
    transformer = Transformer(str(folder / "bert"), max_seq_length=64)
    SentenceTransformer(modules=[transformer, Pooling(32, "mean")], device="cpu").save(str(folder / "model"))
    return str(folder / "model")


def test_pca_keeps_distances_and_sif_weights_frequent_tokens_down():
    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    rotated = _pca(vectors, 8)
    before = np.linalg.norm(vectors[:, None] - vectors[None], axis=-1)
    after = np.linalg.norm(rotated[:, None] - rotated[None], axis=-1)
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)
    assert _pca(vectors, 3).shape == (50, 3)
    weights = np.linalg.norm(_weighted(np.ones((50, 2), dtype=np.float32), np.arange(50), 1e-3), axis=1)
    assert np.all(np.diff(weights) > 0)  # the rarer (later) a token, the more it weighs


def test_a_distilled_model_loads_anywhere_and_indexes_a_repository(tiny_bert, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = distill(tiny_bert, tmp_path / "static", dims=16, log=lambda _: None, progress=False)
    model = SentenceTransformer(str(out), device="cpu")
    vectors = model.encode(["route a request", "gzip the body"])
    assert vectors.shape == (2, 16) and np.all(np.isfinite(vectors)) and not np.allclose(vectors[0], vectors[1])
    repo = write_repo(tmp_path / "repo", SOURCES)
    report = build_index(repo, tmp_path / "index", model=str(out), log=lambda _: None, progress=False)
    assert report.embedded == report.units > 0
    hits = CodeSearcher(tmp_path / "index").search(["Router"], k=1)[0]
    assert (hits[0].path, hits[0].symbol) == ("chi.go", "Router")
    distill(tiny_bert, out, dims=8, align_texts=0, log=lambda _: None, progress=False)  # its own folder: replaced
    assert SentenceTransformer(str(out), device="cpu").get_embedding_dimension() == 8
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(UsageError, match="--out"):
        distill(tiny_bert, tmp_path / "notes", log=lambda _: None, progress=False)


def _corpus(folder, functions: int = 40):
    folder.mkdir()
    verbs = ["parse", "render", "encode", "retry", "route", "compress", "hash", "sort"]
    for number in range(functions):
        verb = verbs[number % len(verbs)]
        (folder / f"mod_{number}.py").write_text(
            f'def {verb}_{number}(items, limit={number}):\n    """{verb.title()} the items, at most {number} of '
            f'them."""\n    out = []\n    for item in items[:limit]:\n        out.append(item)\n    return out\n')
    return folder


def test_sampled_texts_are_units_and_docs_drawn_evenly_and_reproducibly(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    every = sample_texts(corpus, 1000)
    assert len(every) == 80 and sum(text.startswith(("Parse", "Render")) for text in every) == 10  # 40 units, 40 docs
    drawn = sample_texts(corpus, 20)
    assert len(drawn) == 20 and set(drawn) <= set(every) and drawn == sample_texts(corpus, 20)
    assert drawn != sample_texts(corpus, 20, seed=1)


def test_the_alignment_moves_the_static_space_onto_the_models(tiny_bert, tmp_path):
    """On the sampled texts, the aligned static model's vectors are nearer the model's own (PCA-reduced, as
    the alignment targets them) than the unaligned model's are."""
    from sentence_transformers import SentenceTransformer

    corpus = _corpus(tmp_path / "corpus")
    texts = sample_texts(corpus, 80)
    teacher = SentenceTransformer(tiny_bert, device="cpu").encode(texts, normalize_embeddings=True)
    target = _pca(teacher, 8)
    target /= np.linalg.norm(target, axis=1, keepdims=True)

    def mean_cosine(folder) -> float:
        vectors = SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True)
        return float(np.mean(np.sum(vectors * target, axis=1)))

    plain = distill(tiny_bert, tmp_path / "plain", dims=8, align_texts=0, log=lambda _: None, progress=False)
    lines = []
    aligned = distill(tiny_bert, tmp_path / "aligned", dims=8, align_texts=80, align_corpus=corpus, log=lines.append,
                      progress=False)
    assert any("aligning with" in line and "80 texts" in line for line in lines)
    assert mean_cosine(aligned) > mean_cosine(plain) + 0.1 and mean_cosine(aligned) > 0.5


def test_the_command_line_passes_the_alignment_flags(tiny_bert, tmp_path, capsys):
    from st_code.cli import main

    corpus = _corpus(tmp_path / "corpus")
    assert main(["distill", tiny_bert, "--out", str(tmp_path / "s"), "--dims", "8", "--align-texts", "30",
                 "--align-corpus", str(corpus)]) == 0
    assert f"aligning with {tiny_bert} on 30 texts of {corpus}" in capsys.readouterr().err
    assert main(["distill", tiny_bert, "--out", str(tmp_path / "s"), "--dims", "8", "--align-texts", "0"]) == 0
    assert "aligning" not in capsys.readouterr().err


def test_alignment_inputs_that_cannot_work_are_refused_with_the_fix(tiny_bert, tmp_path):
    corpus = _corpus(tmp_path / "corpus", functions=4)
    with pytest.raises(UsageError, match="too few to align 8 dimensions: pass a bigger --align-corpus"):
        distill(tiny_bert, tmp_path / "a", dims=8, align_texts=16, align_corpus=corpus, log=lambda _: None,
                progress=False)
    with pytest.raises(UsageError, match="--align-texts 10 is too few to fit 8 dimensions"):
        distill(tiny_bert, tmp_path / "b", dims=8, align_texts=10, log=lambda _: None, progress=False)
    with pytest.raises(UsageError, match="--align-texts must be 0"):
        distill(tiny_bert, tmp_path / "c", dims=8, align_texts=-1, log=lambda _: None, progress=False)
    with pytest.raises(UsageError, match="--align-corpus .* does not exist"):
        distill(tiny_bert, tmp_path / "d", dims=8, align_corpus=tmp_path / "missing", log=lambda _: None,
                progress=False)
