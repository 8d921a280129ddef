"""The path a GPU user takes, end to end with real parts, asserted at every seam:

OpenAI-compatible server on 127.0.0.1 -> ``python -m data_gen all`` over a Python + Go repository
(Text2Code, Code2Text, Code Translation, Code Context; English and Chinese) -> mining ->
``recipes/annealing.py`` on a tiny decoder with PMA + LoRA + instructions + merges, reading data_gen's
output folder as the shipped configs do -> saved model -> ``SentenceTransformer(...,
trust_remote_code=True)`` -> ``python -m st_code.evaluation`` on a local set.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.real_path import ROOT, curriculum_config

pytestmark = pytest.mark.slow
BGE = re.compile(r"^<instruct>(.*)\n<query>", re.DOTALL)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, tiny_qwen_path, coder_pile):
    root = coder_pile.parent
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(curriculum_config(tiny_qwen_path, coder_pile, root / "run")))
    result = subprocess.run([sys.executable, str(ROOT / "recipes" / "annealing.py"), "--config", str(config)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [json.loads(line) for line in (root / "coder-pile" / "triplets.jsonl").read_text().splitlines()]
    return root, rows


def _batches(root: Path, stage: str) -> list[dict]:
    path = root / "run" / "stages" / stage / "batches.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _row_of(rows: list[dict], query: str, positive: str) -> dict:
    matches = [r for r in rows if r["query"] == query and r["positive"] == positive]
    assert len(matches) == 1, f"the pair the loss saw is not one data_gen row: {query[:80]!r}"
    return matches[0]


def _pairs(batch: dict):
    """(anchor text as the loss saw it, positive) per row of a recorded batch."""
    return zip(batch["columns"]["anchor"], batch["columns"]["positive"])


def test_data_gen_output_covers_the_tasks_and_languages(real_run):
    _, rows = real_run
    assert {r["task"] for r in rows} == {"Web Query to Code Retrieval", "Code Summary Retrieval",
                                         "Code Translation Retrieval", "Code Context Retrieval"}
    assert {r["code_language"] for r in rows} == {"Python", "Go"} and {r["language"] for r in rows} == {"English",
                                                                                                       "Chinese"}
    assert all(r["negative_1"] and r["negative_2"] and r["difficulty"] in ("simple", "medium", "hard") for r in rows)


def test_batches_are_homogeneous_and_rows_keep_their_task_and_language(real_run):
    root, rows = real_run
    for stage in ("1-warm", "2-instructed", "3-hard"):
        batches = _batches(root, stage)
        assert batches, stage
        for batch in batches:
            assert len(batch["datasets"]) == 1, batch["datasets"]  # one dataset per batch
            task, code_language, language = batch["datasets"][0].split(" | ")[:3]
            for text, positive in _pairs(batch):
                row = _row_of(rows, BGE.sub("", text), positive)
                assert (row["task"], row["code_language"], row["language"]) == (task, code_language, language)


def test_the_loss_sees_the_instruction_the_saved_model_applies(real_run):
    root, rows = real_run
    from sentence_transformers import SentenceTransformer

    import st_code

    final = root / "run" / "final"
    plain = SentenceTransformer(str(final), trust_remote_code=True, device="cpu")
    ours = st_code.load_model(final, device="cpu")
    texts = ["read json lines", "func Sum(values []int) int { return 0 }"]
    np.testing.assert_allclose(plain.encode(texts), ours.encode(texts), atol=1e-6)
    assert plain.prompts == ours.prompts

    for batch in _batches(root, "1-warm"):  # stage 1 trains without instructions
        assert not any(BGE.match(text) for text in batch["columns"]["anchor"])
    seen_translation = False
    for stage in ("2-instructed", "3-hard"):
        for batch in _batches(root, stage):
            for text, positive in _pairs(batch):
                match = BGE.match(text)
                assert match, text[:100]
                row = _row_of(rows, text[match.end():], positive)
                assert match.group(1) == row["instruction"]  # data_gen's filled per-row instruction
                assert not re.search(r"\{[a-z_]+\}", match.group(1))  # no placeholder reaches the loss
                # the saved model carries that exact prompt under the task's name
                names = [n for n, p in plain.prompts.items() if p == text[: match.end()] and n.startswith(row["task"])]
                assert names, f"no saved prompt for {row['task']!r} with {match.group(1)!r}"
                if row["task"] == "Code Translation Retrieval":
                    seen_translation = True
                    source, target = row["code_language"], "Go" if row["code_language"] == "Python" else "Python"
                    assert match.group(1).startswith(f"Given a piece of {source} code, retrieve {target} code")
                    assert names == [f"Code Translation Retrieval ({source}, {target})-query"]
    assert seen_translation


def test_difficulty_labels_decide_stage_3(real_run):
    root, rows = real_run
    done = json.loads((root / "run" / "stages" / "3-hard" / "DONE.json").read_text())
    report = done["filters"][0]
    labels = Counter(r["difficulty"] for r in rows)
    assert report["detail"] == dict(labels)  # every row judged by its own data_gen label, no LLM asked
    assert report["kept"] == labels["medium"] + labels["hard"]
    for batch in _batches(root, "3-hard"):
        for text, positive in _pairs(batch):
            assert _row_of(rows, BGE.sub("", text), positive)["difficulty"] in ("medium", "hard")
    assert sum(done["datasets"].values()) == report["kept"]


def test_evaluation_of_the_saved_model_on_a_local_set(real_run, tmp_path):
    root, _ = real_run
    heldout = tmp_path / "web-queries.jsonl"  # functions the model never trained on, in data_gen's row layout
    pairs = [("add two numbers", "def add(a, b):\n    return a + b"),
             ("reverse a string", "def reverse(text):\n    return text[::-1]"),
             ("check whether a number is prime", "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, n))")]
    heldout.write_text("\n".join(json.dumps({"query": q, "positive": p, "task": "Web Query to Code Retrieval",
                                             "language": "English", "code_language": "Python"}) for q, p in pairs))
    final = root / "run" / "final"
    out = tmp_path / "eval"
    result = subprocess.run([sys.executable, "-m", "st_code.evaluation", str(final), "--local", str(heldout),
                             "--output-dir", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((out / "results.json").read_text())
    score = report["scores"][str(final)]["web-queries"]["ndcg_at_10"]
    saved = json.loads((final / "config_sentence_transformers.json").read_text())["prompts"]
    prompt = saved["Web Query to Code Retrieval-query"]
    assert report["prompts"][str(final)]["web-queries"]["query"] == prompt  # the trained task's instruction
    import st_code
    from st_code.evaluation import load_local_set
    from tests.retrieval_check import ndcg_at_10

    model = st_code.load_model(final, device="cpu")
    assert score == pytest.approx(ndcg_at_10(model, load_local_set(heldout), prompt), abs=1e-4)
