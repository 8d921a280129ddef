"""st-code adapt, across the seams: a repository the test writes (Python, Go, C) -> pairs per language ->
a real curriculum run with the packaged MiniLM -> the gate -> the installed model -> the code-search index.
Nothing is mocked: the trainer, the evaluator, faiss and the LLM server on 127.0.0.1 are the real ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from st_code.adapt import AdaptOptions, adapt_repository, decide
from st_code.data.repo_pairs import CODE2TEXT, CODE_CONTEXT, TEXT2CODE, build_repository_pairs, doc_summary
from st_code.errors import UsageError
from tests.small_repos import LICENCE, PURPOSES, write_repository

ROOT = Path(__file__).resolve().parents[1]
SUMMARIES = {summary for summary, _, _ in PURPOSES}
#: Small and quick: a batch of 8, short texts, one general set (the Python docstring set HumanEval).
QUICK = dict(batch_size=8, train_seq_length=64, heldout_percent=40, general_sets=["HumanEval-doc2code"])


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return write_repository(tmp_path_factory.mktemp("three_languages") / "repo", files_per_language=8)


def test_pairs_per_language_have_the_right_sides(repo):
    pairs = build_repository_pairs(repo, heldout_percent=25, seed=0)
    for language, marker in (("Python", "def "), ("Go", "func "), ("C", "int ")):
        docs = [p for p in pairs.train + pairs.heldout_pairs if p.language == language and p.task == TEXT2CODE]
        assert len(docs) == 8 * 4, language  # four documented functions a file; the fifth has no doc
        for pair in docs:
            assert pair.positive.lstrip().startswith(marker), pair.positive[:80]  # the code, its doc taken out
            assert "@brief" not in pair.positive and '"""' not in pair.positive and "// " not in pair.positive
            assert "@param" not in pair.query and "Args:" not in pair.query and "//" not in pair.query
            assert LICENCE not in pair.query  # a licence header above a function is no doc
            assert any(summary.lower() in pair.query.lower() for summary in SUMMARIES), pair.query
        reverse = {(p.positive, p.query) for p in pairs.train + pairs.heldout_pairs
                   if p.language == language and p.task == CODE2TEXT}
        assert reverse == {(p.query, p.positive) for p in docs}
        contexts = [p for p in pairs.train if p.language == language and p.task == CODE_CONTEXT]
        assert contexts and all(p.query.strip() and p.positive.strip() for p in contexts)
    # the undocumented fifth function of each training file is what --llm would write queries for
    assert {u.language for u in pairs.undocumented_units} == {"Python", "Go", "C"}


def test_split_is_by_file_and_every_language_is_held_out(repo):
    pairs = build_repository_pairs(repo, heldout_percent=25, seed=0)
    assert not set(pairs.train_files) & set(pairs.heldout_files)
    assert {p.path for p in pairs.train} <= set(pairs.train_files)
    assert {p.path for p in pairs.heldout_pairs} <= set(pairs.heldout_files)
    assert {p.language for p in pairs.heldout_pairs} == {"Python", "Go", "C"}
    sets = pairs.heldout_sets(min_queries=5)
    assert {"repo-python-doc2code", "repo-go-code2doc", "repo-c-doc2code"} <= set(sets)
    # doc -> code searches all held-out code of the language: the undocumented fifth function of each
    # held-out file too, and nothing from a training file
    held_python = [f for f in pairs.heldout_files if f.endswith(".py")]
    doc2code = sets["repo-python-doc2code"]
    assert len(doc2code.corpus) == len(doc2code.queries) + len(held_python)
    train_code = {p.positive for p in pairs.train if p.task == TEXT2CODE}
    assert not set(doc2code.corpus.values()) & train_code
    assert len(sets["repo-python-code2doc"].corpus) == len(sets["repo-python-code2doc"].queries)
    other = build_repository_pairs(repo, heldout_percent=25, seed=1)
    assert other.heldout_files != pairs.heldout_files  # the seed decides which files
    assert build_repository_pairs(repo, heldout_percent=25, seed=0).heldout_files == pairs.heldout_files
    whole = build_repository_pairs(repo, heldout_paths=["python_module_1.py", "go_module_*"])
    assert sorted(whole.heldout_files) == ["go_module_%d.go" % i for i in range(8)] + ["python_module_1.py"]
    with pytest.raises(UsageError, match="no code file matches"):
        build_repository_pairs(repo, heldout_paths=["src/"])


@pytest.mark.parametrize(("doc", "summary"), [
    ("@brief Open the device.\n@param path where\n@return a handle", "Open the device."),
    ("Returns the number of rows.\n\n:param table: the table\n:returns: int", "Returns the number of rows."),
    ("Computes a hash\nof the key.\n# Examples\nlet x = 1;", "Computes a hash of the key."),
    ("\\brief Free the buffer and its pages", "Free the buffer and its pages"),
    ("Copyright 2020 Foo Inc. All rights reserved.", None),
    ("NOLINT(build/include)", None),
    ("x = y + 1;\nreturn x;", None),
    ("TODO", None),
    ("-----------------------", None),
])
def test_doc_summaries_are_what_a_person_would_search_with(doc, summary):
    assert doc_summary(doc) == summary


def test_empty_and_documentation_free_repositories_are_one_clear_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing to learn here")
    with pytest.raises(UsageError, match="no code files"):
        adapt_repository(AdaptOptions(str(tmp_path / "empty"), out=str(tmp_path / "out1")), log=lambda _: None)
    bare = write_repository(tmp_path / "bare", files_per_language=3, documented=False)
    with pytest.raises(UsageError, match="documented function.*--llm"):
        adapt_repository(AdaptOptions(str(bare), out=str(tmp_path / "out2")), log=lambda _: None)
    # 8 files a language, 2 held out: 8 documented held-out units each, too few to judge by
    few = write_repository(tmp_path / "few", files_per_language=8)
    with pytest.raises(UsageError, match="fewer than 10 documented.*raise --heldout-percent"):
        adapt_repository(AdaptOptions(str(few), out=str(tmp_path / "out3"), heldout_percent=25), log=lambda _: None)
    result = subprocess.run([sys.executable, "-m", "st_code", "adapt", str(bare), "--out", str(tmp_path / "out3")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error:")


def test_general_sets_leave_out_what_the_repository_trains_on(tmp_path):
    """A repository that holds a function of a built-in set is not scored on that function."""
    from st_code.adapt.runner import _general_sets
    from st_code.evaluation.runner import builtin_sets

    held = builtin_sets(["HumanEval-doc2code"])["HumanEval-doc2code"]
    query_id = next(iter(held.queries))
    code = held.corpus[next(iter(held.relevant[query_id]))]
    lines = code.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("def "))
    source = "\n".join(lines[:at + 1] + [f'    """{held.queries[query_id]}"""'] + lines[at + 1:]) + "\n"
    write_repository(tmp_path / "repo", files_per_language=8, languages=("Python",))
    (tmp_path / "repo" / "zz_copied.py").write_text(source)
    pairs = build_repository_pairs(tmp_path / "repo", heldout_files={"python_module_0.py"})
    assert any(p.path == "zz_copied.py" for p in pairs.train)
    lines = []
    sets = _general_sets(["HumanEval-doc2code"], pairs, lines.append)
    assert query_id not in sets["HumanEval-doc2code"].queries
    assert len(sets["HumanEval-doc2code"].queries) == len(held.queries) - 1
    assert any("left out" in line for line in lines)


def test_options_that_cannot_run_are_refused_before_anything_loads(tmp_path):
    """AdaptOptions.check (what the command line calls before importing sentence-transformers, and the run
    itself calls first): a missing repository, no minutes, an LLM name litellm cannot route."""
    from st_code.adapt.options import AdaptOptions
    from st_code.errors import MissingPathError

    assert AdaptOptions(str(tmp_path)).check() == tmp_path
    with pytest.raises(MissingPathError, match="repository .*nope does not exist"):
        AdaptOptions(str(tmp_path / "nope")).check()
    with pytest.raises(UsageError, match="--minutes must be > 0, got 0"):
        AdaptOptions(str(tmp_path), minutes=0).check()
    with pytest.raises(UsageError, match="--llm qwen: give a litellm model name"):
        AdaptOptions(str(tmp_path), llm="qwen").check()
    AdaptOptions(str(tmp_path), llm="qwen", api_base=["http://127.0.0.1:8000/v1"]).check()  # a self-hosted server
    with pytest.raises(UsageError, match="--minutes must be > 0"):  # the run checks the same way
        adapt_repository(AdaptOptions(str(tmp_path), minutes=-1, out=str(tmp_path / "out")), log=lambda _: None)


def test_gate_decides_on_both_sides():
    def scores(**values):
        return {name: {"ndcg_at_10": v / 100} for name, v in values.items()}

    base = scores(r1=50, r2=60, g1=80)
    assert decide(base, scores(r1=55, r2=61, g1=79.5), ["r1", "r2"], ["g1"]).accepted
    worse_general = decide(base, scores(r1=70, r2=70, g1=78.5), ["r1", "r2"], ["g1"])
    assert not worse_general.accepted and "general" in worse_general.line()
    no_gain = decide(base, scores(r1=50, r2=60, g1=80), ["r1", "r2"], ["g1"])
    assert not no_gain.accepted and "no gain" in no_gain.reasons[0]


@pytest.mark.slow
def test_adapt_end_to_end_with_an_llm_installs_a_loadable_model_and_rebuilds_the_index(repo, tmp_path):
    """The whole command in one run (each adapt run costs a minute of the suite): --llm against the scripted
    OpenAI-compatible server on 127.0.0.1, so data_gen writes queries for the undocumented functions of the
    training files only and the curriculum trains on them beside the docs; the gate; the installed model
    loaded and searched with the rebuilt index."""
    from sentence_transformers import SentenceTransformer

    from st_code.search import CodeSearcher, build_index
    from st_code.search.index import read_manifest
    from tests.openai_stub import OpenAIStub
    from tests.test_data_gen import scripted

    index = tmp_path / "index"
    build_index(repo, index, log=lambda _: None, progress=False)
    lines: list[str] = []
    out = tmp_path / "out"
    with OpenAIStub(scripted) as server:
        result = adapt_repository(AdaptOptions(str(repo), out=str(out), max_steps=12, learning_rate=5e-5,
                                               index=str(index), rebuild_index=True, llm="openai/stub",
                                               api_base=[server.api_base], **QUICK), log=lines.append)
        prompts = list(server.requests)
    print(result.decision.line())
    report = json.loads((out / "report" / "report.json").read_text())
    assert set(report["base"]) == set(report["adapted"]) == set(report["repository_sets"]) | {"HumanEval-doc2code"}
    assert (out / "report" / "scores.png").is_file() and "per language" in (out / "report" / "report.md").read_text()
    assert result.accepted == report["decision"]["accepted"] == (out / "model").is_dir()
    assert report["details"]["plan"]["max_steps"] == 12
    # the split on disk is the one trained on: no held-out file in train.jsonl
    split = json.loads((out / "data" / "split.json").read_text())
    train_text = (out / "data" / "train.jsonl").read_text()
    assert split["heldout_files"] and not set(split["heldout_files"]) & set(split["train_files"])
    assert (out / "data" / "heldout" / "repo-go-doc2code" / "qrels" / "test.tsv").is_file()
    heldout_queries = [json.loads(line)["text"] for line in
                       (out / "data" / "heldout" / "repo-c-doc2code" / "queries.jsonl").read_text().splitlines()]
    assert heldout_queries and not any(json.dumps(q)[1:-1] in train_text for q in heldout_queries)
    # the LLM was asked about the training files' undocumented units only, and its queries were trained on
    corpus = [json.loads(line) for line in (out / "llm" / "corpus.jsonl").read_text().splitlines()]
    assert corpus and all(row["path"].split(":")[0] in split["train_files"] for row in corpus)
    assert prompts
    assert (out / "llm" / "data" / "triplets.jsonl").is_file()
    done = json.loads((out / "run" / "stages" / "1-repository" / "DONE.json").read_text())
    assert any("Web Query to Code Retrieval" in name for name in done["datasets"])
    assert any("Code Summary Retrieval" in name for name in done["datasets"])
    # what a user does next: load the chosen model and search with the rebuilt index
    model = SentenceTransformer(str(result.adapted))
    assert model.encode(["parse the configuration file"]).shape == (1, 384)
    if result.accepted:
        assert result.index_rebuilt and read_manifest(index)["model"] == str((out / "model").resolve())
        hits = CodeSearcher(index).search("merge two sorted lists", k=3)
        assert hits and hits[0].path.endswith((".py", ".go", ".c"))
    else:
        assert not result.index_rebuilt and any("refused" in line or "base" in line for line in lines)


@pytest.mark.slow
def test_adapt_resumes_after_a_kill_and_the_gate_refuses_a_bad_learning_rate(repo, tmp_path):
    """kill -9 after the first checkpoint, then the same command: the base's scores and the step plan are
    reused and training resumes from the checkpoint; the learning rate (0.05) ruins the model, so the
    gate keeps the base, which the command prints, and the refused model is kept for a look, not installed.
    (One adapt run serves both: each costs a minute of the suite.)"""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "st_code", "adapt", str(repo), "--out", str(out), "--max-steps", "10",
               "--learning-rate", "0.05", "--batch-size", "8", "--train-seq-length", "64", "--heldout-percent", "40",
               "--general-sets", "--keep-index"]  # no general set: the repository's alone decide here
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    checkpoint = out / "run" / "stages" / "1-repository" / "checkpoints" / "checkpoint-5"
    deadline = time.time() + 600
    while time.time() < deadline and first.poll() is None and not (checkpoint / "trainer_state.json").is_file():
        time.sleep(0.5)
    assert first.poll() is None, "the first run ended before its first checkpoint"
    time.sleep(1.0)
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert second.returncode == 1, second.stderr[-3000:]
    assert "scores of the same model on the same sets found" in second.stderr  # the base is not scored twice
    assert "the step plan of the first run of this command: 10 steps" in second.stderr
    assert "resuming" in second.stderr.lower() and "checkpoint-" in second.stderr
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["details"]["plan"]["max_steps"] == 10
    state = json.loads((out / "run" / "stages" / "1-repository" / "DONE.json").read_text())
    assert state["train"] and state["losses"]
    # the gate: worse on the repository's held-out sets, so the base stays
    assert second.stdout.strip() == "minilm"  # the base is what to use
    assert "kept the base model" in second.stderr
    assert not (out / "model").exists()
    assert report["decision"]["accepted"] is False
    assert report["decision"]["repository_adapted"] < report["decision"]["repository_base"]
    assert (out / "run" / "final").is_dir()  # the refused model is kept for a look, not installed
