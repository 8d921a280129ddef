"""Fault cases from a user's own folders, flags and files (issue 34) for the commands that write models,
scores and data: ``st-code adapt``, ``st-code export``, evaluation, data_gen and the recipe. The search
commands' cases and the helpers are in ``tests/faults/user_cases.py``, which registers these after its own.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.faults.cases import STDLIB, Setup, case, one_function_corpus
from tests.faults.user_cases import repository, small_disk, user_folder


# -- st-code adapt ------------------------------------------------------------------------------------------
def _adapt(tmp: Path, *flags: str) -> list[str]:
    return ["adapt", str(repository(tmp / "repo")), "--out", str(tmp / "adapted"), *flags]


for _id, _flags, _expect in [
    ("max-general-loss-negative", ["--max-general-loss=-5"], r"--max-general-loss must be a number >= 0"),
    ("heldout-percent-150", ["--heldout-percent", "150"], r"--heldout-percent must be between 0 and 100"),
    ("heldout-percent-100", ["--heldout-percent", "100"], r"--heldout-percent must be between 0 and 100"),
    ("batch-size-zero", ["--batch-size", "0"], r"argument --batch-size: expected a whole number >= 1, got 0"),
    ("batch-size-one", ["--batch-size", "1"], r"--batch-size must be a whole number >= 2 \(in-batch negatives"),
    ("learning-rate-negative", ["--learning-rate=-1"], r"--learning-rate must be > 0, got -1"),
    ("learning-rate-nan", ["--learning-rate", "nan"], r"--learning-rate must be > 0, got nan"),
    ("max-steps-zero", ["--max-steps", "0"], r"argument --max-steps: expected a whole number >= 1"),
    ("unknown-language", ["--languages", "Klingon"], r"--languages: unknown language\(s\) \['Klingon'\]"),
    ("unknown-general-set", ["--general-sets", "MyBench"], r"--general-sets: unknown built-in set\(s\) \['MyBench'\]"),
    ("minutes-zero", ["--minutes", "0"], r"--minutes must be > 0, got 0"),
]:
    def _build(tmp, assets, _flags=_flags):
        yield Setup(argv=_adapt(tmp, *_flags), clean=[tmp])
        assert not (tmp / "adapted").exists(), "a refused adapt created its output folder"
    _build.__name__ = f"case_adapt_{_id.replace('-', '_')}"
    case("cli", _expect)(_build)


@case("cli", r"--out .*adapted holds files that are not an st-code adapt output \(model, notes\.md\)")
def case_adapt_out_with_user_files(tmp, assets):
    out = user_folder(tmp / "adapted", **{"notes.md": "mine", "model/weights.bin": "my own model"})
    yield Setup(argv=_adapt(tmp), protect=[out])


@case("cli", r"--out .*repo is the input .*repo")
def case_adapt_out_is_the_repository(tmp, assets):
    repo = repository(tmp / "repo")
    yield Setup(argv=["adapt", str(repo), "--out", str(repo)], protect=[repo])


@case("cli", r"adapt needs at least 20")
def case_adapt_overwrite_keeps_the_users_files(tmp, assets):
    """An earlier adapt output (0.2's layout) with the user's notes in it: --overwrite removes adapt's own
    files only (the run then stops: two documented functions are too few)."""
    out = user_folder(tmp / "adapted", **{"plan.json": "{}", "report/report.md": "old report",
                                          "report/notes.md": "my reading of the old report",
                                          "decisions.txt": "why we adapted"})
    yield Setup(argv=_adapt(tmp, "--overwrite"), protect=[out / "report" / "notes.md", out / "decisions.txt"])
    assert not (out / "plan.json").exists() and not (out / "report" / "report.md").exists()


@case("cli", r"error: No space left on device")
def case_adapt_disk_full(tmp, assets):
    repo = repository(tmp / "repo", functions=120, per_file=2)
    with small_disk(tmp / "disk", "16k") as disk:
        yield Setup(argv=["adapt", str(repo), "--out", str(disk / "adapted")], clean=[disk])


# -- st-code export -----------------------------------------------------------------------------------------
@case("cli", r"--out .*exports holds files that are not an st-code export \(notes\.md\)")
def case_export_out_with_user_files(tmp, assets):
    out = user_folder(tmp / "exports")
    yield Setup(argv=["export", assets.saved_model, "--out", str(out)], protect=[out])


@case("cli", r"error: No space left on device")
def case_export_disk_full(tmp, assets):
    with small_disk(tmp / "disk", "1m") as disk:
        (disk / "export").mkdir()
        yield Setup(argv=["export", assets.saved_model, "--out", str(disk / "export")], protect=[disk / "export"],
                    clean=[disk])


# -- evaluation -----------------------------------------------------------------------------------------------
def _beir(folder: Path, corpus: list[tuple[str, str]], queries: list[tuple[str, str]]) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries))
    (folder / "qrels" / "test.tsv").write_text("".join(f"{q}\t{corpus[0][0]}\t1\n" for q, _ in queries))
    return folder


@case("evaluation", r"--output-dir .*results holds files that are not an st-code evaluation report \(paper\.tex\)")
def case_eval_output_dir_with_user_files(tmp, assets):
    out = user_folder(tmp / "results", **{"paper.tex": "my paper"})
    yield Setup(argv=[assets.saved_model, "--builtin", "HumanEval-doc2code", "--output-dir", str(out)], protect=[out])


@case("evaluation", r"corpus\.jsonl: document id 'd1' appears twice \(record 2\)")
def case_eval_duplicate_document_ids(tmp, assets):
    folder = _beir(tmp / "set", [("d1", "def f(): pass"), ("d1", "def g(): pass")], [("q1", "f")])
    yield Setup(argv=[assets.saved_model, "--local", str(folder), "--output-dir", str(tmp / "eval")])


@case("evaluation", r"queries\.jsonl: query id 'q1' appears twice")
def case_eval_duplicate_query_ids(tmp, assets):
    folder = _beir(tmp / "set", [("d1", "def f(): pass")], [("q1", "f"), ("q1", "g")])
    yield Setup(argv=[assets.saved_model, "--local", str(folder), "--output-dir", str(tmp / "eval")])


@case("evaluation", r"corpus\.jsonl: no documents; a BEIR folder needs at least one")
def case_eval_empty_corpus(tmp, assets):
    folder = _beir(tmp / "set", [("d1", "def f(): pass")], [("q1", "f")])
    (folder / "corpus.jsonl").write_text("")
    yield Setup(argv=[assets.saved_model, "--local", str(folder), "--output-dir", str(tmp / "eval")])


@case("evaluation", r"error: No space left on device")
def case_eval_disk_full(tmp, assets):
    with small_disk(tmp / "disk", "8k") as disk:
        yield Setup(argv=[assets.saved_model, "--builtin", "HumanEval-doc2code", "--output-dir", str(disk / "eval")],
                    clean=[disk])


# -- data_gen ---------------------------------------------------------------------------------------------------
def _corpus_argv(out: Path, corpus: Path) -> list[str]:
    return ["corpus", "--out", str(out), "--corpus", str(corpus), "--model", "openai/stub", "--tasks",
            "Code Summary Retrieval"]


@case("data_gen", r"dropped .*not_a_regular_file: 1", exit_code=0, timeout=120)
def case_data_gen_corpus_skips_a_named_pipe(tmp, assets):
    corpus = repository(tmp / "corpus")
    os.mkfifo(corpus / "stream.py")
    yield Setup(argv=_corpus_argv(tmp / "out", corpus))


@case("data_gen", r"--out .*mine holds files that are not an st-code data_gen output \(notes\.md\)")
def case_data_gen_out_with_user_files(tmp, assets):
    out = user_folder(tmp / "mine")
    yield Setup(argv=_corpus_argv(out, repository(tmp / "corpus")), protect=[out])


@case("data_gen", r"--out .*corpus is the input .*corpus")
def case_data_gen_out_is_the_corpus(tmp, assets):
    corpus = repository(tmp / "corpus")
    yield Setup(argv=_corpus_argv(corpus, corpus), protect=[corpus])


@case("data_gen", r"unknown CodeR-Pile task 'Bananas'; the \d+ tasks are: ")
def case_data_gen_unknown_task_near_no_name(tmp, assets):
    out = one_function_corpus(tmp)
    yield Setup(argv=["generate", "--out", str(out), "--model", "openai/stub", "--api-base", "http://127.0.0.1:9/v1",
                      "--tasks", "Bananas"])


@case("data_gen", r"error: No space left on device")
def case_data_gen_disk_full(tmp, assets):
    corpus = tmp / "corpus"
    shutil.copytree(STDLIB / "json", corpus)
    with small_disk(tmp / "disk", "8k") as disk:
        yield Setup(argv=_corpus_argv(disk / "out", corpus), clean=[disk])


# -- the recipe --------------------------------------------------------------------------------------------------
@case("recipe", r"--config .*configs is a folder; pass the YAML file itself")
def case_recipe_config_is_a_folder(tmp, assets):
    (tmp / "configs").mkdir()
    yield Setup(argv=["--config", str(tmp / "configs"), "--print-config"])


@case("recipe", r"--set stages\.0\.datasets=\[a, b: the value is not valid YAML")
def case_recipe_set_an_unclosed_list(tmp, assets):
    yield Setup(argv=["--set", "stages.0.datasets=[a, b", "--print-config"])


@case("recipe", r"model\.lora\.alpha: expected a number, got 'big'")
def case_recipe_set_lora_alpha_not_a_number(tmp, assets):
    yield Setup(argv=["--set", "model.lora={r: 8, alpha: big}", "--print-config"])


@case("recipe", r"stages\[0\]\.max_steps: expected an integer, got 'ten'")
def case_recipe_dry_run_checks_the_real_config(tmp, assets):
    yield Setup(argv=["--dry-run", "--set", "stages.0.max_steps=ten", "--output-dir", str(tmp / "run")])


@case("recipe", r"--output-dir .*work holds files that are not an st-code training run \(data, notes\.md\)")
def case_recipe_output_dir_with_user_files(tmp, assets):
    from tests.faults.cases import recipe_with

    work = user_folder(tmp / "work", **{"notes.md": "mine", "data/train.csv": "my data"})
    setup = recipe_with(tmp, assets, lambda config: config.update(output_dir=str(work)))
    setup.protect = [work]
    yield setup


@case("recipe", r"--output-dir .*work holds files that are not an st-code training run")
def case_recipe_overwrite_output_dir_with_user_files(tmp, assets):
    from tests.faults.cases import recipe_with

    work = user_folder(tmp / "work", **{"notes.md": "mine", "data/train.csv": "my data", "report/a.md": "mine"})
    setup = recipe_with(tmp, assets, lambda config: config.update(output_dir=str(work)))
    setup.argv.append("--overwrite")
    setup.protect = [work]
    yield setup


@case("cli", r"--index .*mydocs is not a code-search index")
def case_adapt_index_is_a_folder_of_other_files(tmp, assets):
    docs = user_folder(tmp / "mydocs")
    yield Setup(argv=_adapt(tmp, "--index", str(docs)), protect=[docs])
