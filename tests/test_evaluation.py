"""st_code.evaluation: local and built-in sets through mteb, instructions, reports, CLI, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import st_code
from st_code.evaluation import apply_instructions, evaluate, load_local_set, make_local_task
from st_code.data.readers import DataError
from tests.retrieval_check import ndcg_at_10

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def saved_model(tiny_qwen_path, tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "model"
    st_code.build_model(tiny_qwen_path, pooling="pma", embedding_dim=32, device="cpu").save(str(path))
    return str(path)


@pytest.fixture()
def beir_folder(tmp_path):
    folder = tmp_path / "mini-beir"
    (folder / "qrels").mkdir(parents=True)
    docs = {f"d{i}": f"def function_{i}(x):\n    return x + {i}" for i in range(6)}
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": k, "text": v}) for k, v in docs.items()))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps({"_id": f"q{i}", "text": f"add {i} to x"})
                                                    for i in range(6)))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(6)))
    return folder


def test_local_beir_and_builtin_sets_use_mtebs_metrics(saved_model, beir_folder, tmp_path):
    lines: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate([saved_model], local=[str(beir_folder)], builtin=["HumanEval-doc2code"],
                          output_dir=tmp_path / "out", log=lines.append)
    assert not [w for w in caught if "get_sentence_embedding_dimension" in str(w.message)]  # mteb's, not ours
    scores = result.scores[saved_model]
    assert set(scores) == {"mini-beir", "HumanEval-doc2code"}
    # the number is the textbook NDCG@10 of this model on this set (encoded with the prompt it resolves to)
    model = st_code.load_model(saved_model, device="cpu")
    used = result.prompts[saved_model]["mini-beir"]
    expected = ndcg_at_10(model, load_local_set(beir_folder), used["query"], used["document"])
    assert scores["mini-beir"]["ndcg_at_10"] == pytest.approx(expected, abs=1e-4)
    assert set(scores["HumanEval-doc2code"]) == {"ndcg_at_10", "mrr_at_10", "recall_at_10", "map_at_100"}
    for name in ("results.md", "results.json", "results.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    # a rerun is served from the cache, which says so
    again = evaluate([saved_model], local=[str(beir_folder)], output_dir=tmp_path / "out", log=lines.append)
    assert again.scores[saved_model]["mini-beir"] == scores["mini-beir"]
    assert any(line.endswith("(cached)") and "mini-beir" in line for line in lines)


def test_cached_scores_belong_to_their_model_and_data(saved_model, tiny_qwen_path, tmp_path):
    """Two models in one call, two runs into one --output-dir, two sets with the same name: each
    number is computed for the model and data it names (never the first model's cached score)."""
    other = tmp_path / "other"
    st_code.build_model(tiny_qwen_path, pooling="mean", device="cpu").save(str(other))
    pairs = [(f"add {i} to a number", f"def add_{i}(x):\n    return x + {i}") for i in range(8)]
    first, second = tmp_path / "a" / "pairs.jsonl", tmp_path / "b" / "pairs.jsonl"
    # the second set: one pair, so every model scores 1.0 on it; the first's 8 near-twins it does not solve
    for path, rows in ((first, pairs), (second, [(q, d.replace("+", "*")) for q, d in pairs[:1]])):
        path.parent.mkdir()
        path.write_text("\n".join(json.dumps({"query": q, "positive": d}) for q, d in rows))
    out = tmp_path / "out"
    both = evaluate([saved_model, str(other)], local=[str(first), str(second)], output_dir=out, log=lambda _: None)
    names = sorted(both.scores[saved_model])
    assert len(names) == 2  # the two pairs.jsonl stay two sets
    assert both.scores[saved_model] != both.scores[str(other)]
    assert both.scores[saved_model][names[0]] != both.scores[saved_model][names[1]]
    assert 1.0 in [both.scores[saved_model][name]["ndcg_at_10"] for name in names]
    lines: list[str] = []
    alone = evaluate([str(other)], local=[str(first), str(second)], output_dir=out, log=lines.append)
    assert alone.scores[str(other)] == both.scores[str(other)] and all(line.endswith("(cached)") for line in lines)
    # the same folder, retrained in place: the weights changed, so nothing is served from the cache
    st_code.build_model(tiny_qwen_path, pooling="pma", embedding_dim=32, device="cpu").save(str(other))
    lines.clear()
    evaluate([str(other)], local=[str(first)], output_dir=out, log=lines.append)
    assert lines and not any(line.endswith("(cached)") for line in lines)


def test_unreachable_hub_task_is_one_line_not_a_crash(saved_model, tmp_path):
    lines: list[str] = []
    result = evaluate([saved_model], tasks=["CosQA"], builtin=["HumanEval-doc2code"], output_dir=tmp_path,
                      log=lines.append)
    assert "CosQA" in result.skipped and "not reachable" in result.skipped["CosQA"]
    assert [line for line in lines if line.startswith("skipped CosQA")] and "Traceback" not in "\n".join(lines)
    assert "HumanEval-doc2code" in result.scores[saved_model]


def test_pairs_jsonl_as_a_retrieval_set(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"query": f"q{i}", "positive": f"doc {i % 3}"}) for i in range(5)))
    rs = load_local_set(path)
    assert len(rs.queries) == 5 and len(rs.corpus) == 3 and rs.relevant["q3"] == {"d0"}


def test_the_cli_checks_local_sets_before_loading_and_leaves_hub_sets_to_the_hub(beir_folder, tmp_path):
    """What ``--local`` is checked with before the heavy imports: a missing path is refused with the readers'
    own message; an existing one and an ``hf://datasets/...`` set (which the hub answers) pass."""
    from st_code.data.readers import DataError, require_sources

    require_sources([str(beir_folder), "hf://datasets/CoIR-Retrieval/cosqa"])
    with pytest.raises(DataError, match="dataset .*nope.jsonl does not exist"):
        require_sources([str(beir_folder), str(tmp_path / "nope.jsonl")])


def test_corrupt_qrels_is_a_clear_error(beir_folder):
    (beir_folder / "qrels" / "test.tsv").write_text("q1\tnot-a-doc\t1\n")
    with pytest.raises(DataError, match="not in the folder"):
        make_local_task(load_local_set(beir_folder))


def test_instructions_for_third_party_models(minilm_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(minilm_path, device="cpu")
    assert "CosQA-query" not in model.prompts
    apply_instructions(model, "qwen")
    assert model.prompts["CosQA-query"].startswith("Instruct: Given a web search query")
    apply_instructions(model, "none")
    assert model.prompts == {}


def test_cli_on_a_saved_model(saved_model, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "st_code.evaluation", saved_model, "--builtin", "HumanEval-doc2code",
         "--output-dir", str(tmp_path / "cli")], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| HumanEval-doc2code |" in result.stdout and (tmp_path / "cli" / "results.md").exists()
    bad = subprocess.run([sys.executable, "-m", "st_code.evaluation", saved_model, "--local", str(tmp_path / "nope"),
                          "--output-dir", str(tmp_path / "bad")],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
