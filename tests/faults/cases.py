"""Bad input and faults, one case each, as a user meets them: a command line (recipe, data_gen,
evaluation) or a few lines of Python API. Each case builds what it needs in a fresh folder, names
the files whose content must survive it, and the words the one-line error must contain.

Used by ``tests/faults/test_faults.py`` (in-process, fast) and by ``tests/faults/tally.py``
(subprocesses, so it can also measure an older checkout) to sort outcomes into clear / traceback /
silent / lost.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
STDLIB = Path(os.__file__).parent


@dataclass
class Setup:
    """What a case runs: ``argv`` for its tool's command line, or ``code`` (Python) for an API case;
    ``protect``: files or whole folders whose content must be the same afterwards (finished work, a
    user's own files); ``clean``: folders where no staging or temporary file may be left behind."""

    argv: list[str] | None = None
    code: str | None = None
    protect: list[Path] = field(default_factory=list)
    clean: list[Path] = field(default_factory=list)


class CaseSkipped(Exception):
    """This machine cannot stage the case (no permission to mount a small file system, a GPU present)."""


@dataclass
class Case:
    id: str
    tool: str  # recipe | data_gen | evaluation | cli (st-code) | api
    build: Callable[[Path, "Assets"], "contextmanager[Setup]"]
    expect: str  # a regular expression the error must match (with exit_code 0: the output)
    exit_code: int = 2
    timeout: int = 300  # seconds before the case counts as hung


@dataclass
class Assets:
    """Shared, read-only inputs: a tiny decoder, a saved tiny model, a finished tiny training run."""

    tiny_qwen: str
    saved_model: str
    scripted: Callable[[str], object]


CASES: list[Case] = []


def case(tool: str, expect: str, exit_code: int = 2, timeout: int = 300):
    def register(build):
        CASES.append(Case(build.__name__.removeprefix("case_").replace("_", "-"), tool, contextmanager(build),
                          expect, exit_code, timeout))
        return build
    return register


# -- helpers -------------------------------------------------------------------------------------
def tiny_config(assets: Assets, out: Path, **stage_changes) -> dict:
    """A one-stage curriculum on the tiny decoder and a little real stdlib code: a few seconds."""
    stage = {"name": "s", "datasets": ["offline:Code Summary Retrieval"], "max_steps": 2, "batch_size": 4,
             "mini_batch_size": 2, "num_negatives": 1, "learning_rate": 1e-3, "temperature": 0.05, "save_steps": 1}
    stage.update(stage_changes)
    return {"model": {"base": assets.tiny_qwen, "pooling": "lasttoken", "max_seq_length": 32},
            "data": {"offline": {"code_dirs": [str(STDLIB / "json"), str(STDLIB / "email")], "max_pairs_per_task": 16,
                                 "heldout_percent": 30,
                                 "include_package_docs": False},
                     "hard_negatives": {"num_negatives": 1, "batch_size": 8}},
            "stages": [stage], "evaluation": {"sets": ["stdlib-doc2code"], "max_queries": 4, "batch_size": 8},
            "output_dir": str(out), "logging_steps": 1}


def write_config(tmp: Path, config: dict, name: str = "config.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(config))
    return path


def recipe_with(tmp: Path, assets: Assets, change: Callable[[dict], None]) -> Setup:
    config = tiny_config(assets, tmp / "run")
    change(config)
    return Setup(argv=["--config", str(write_config(tmp, config))])


def dead_api_base() -> str:
    with socket.socket() as probe:  # bound then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/v1"


def code_corpus(tmp: Path) -> Path:
    corpus = tmp / "corpus"
    corpus.mkdir()
    (corpus / "a.py").write_text('def add_one(x):\n    """Add one to a number and return it."""\n    y = x + 1\n'
                                 '    return y\n')
    return corpus


def data_gen_argv(tmp: Path, stage: str, *extra: str, api_base: str | None = None) -> list[str]:
    return [stage, "--out", str(tmp / "out"), "--model", "openai/stub", "--api-base", api_base or dead_api_base(),
            "--tasks", "Code Summary Retrieval", *extra]


def finished_generate(tmp: Path) -> Path:
    """An out folder whose generate stage already finished (66 rows, as in the issue)."""
    out = tmp / "out"
    out.mkdir()
    (out / "corpus.jsonl").write_text(json.dumps({"id": "c1", "language": "Python", "code": "def f():\n    return 1\n",
                                                  "path": "a.py"}) + "\n")
    rows = [{"key": f"k{i}", "task": "Code Summary Retrieval", "major_type": "Code2Text", "language": "English",
             "code_language": "Python", "instruction": "Given a piece of code, retrieve the document string.",
             "query": f"def f{i}(): pass", "positive": f"summary {i}", "source_id": "c1"} for i in range(66)]
    (out / "generated.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out / "generated.jsonl"


# -- recipe: numbers that make no sense --------------------------------------------------------------
def _bad_number(path: str, value):
    def change(config: dict) -> None:
        node = config
        *parents, last = path.split(".")
        for key in parents:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        node[last] = value
    return change


for _id, _path, _value, _expect in [
    ("nan-learning-rate", "stages.0.learning_rate", float("nan"), r"learning_rate: must be a finite number"),
    ("inf-temperature", "stages.0.temperature", float("inf"), r"temperature: must be a finite number"),
    ("zero-max-steps", "stages.0.max_steps", 0, r"max_steps: must be >= 1"),
    ("negative-max-steps", "stages.0.max_steps", -5, r"max_steps: must be >= 1"),
    ("negative-epochs", "stages.0.epochs", -1, r"epochs: must be > 0"),
    ("warmup-ratio-5", "stages.0.warmup_ratio", 5, r"warmup_ratio: must be between 0 and 1"),
    ("filter-k-negative", "stages.0.filters", [{"type": "embedder_topk", "k": -3}], r"filters\[0\]\.k: must be >= 1"),
    ("embedding-dim-zero", "model.embedding_dim", 0, r"embedding_dim: must be >= 1"),
    ("embedding-dim-fraction", "model.embedding_dim", 3.5, r"embedding_dim: expected an integer"),
    ("pma-heads-zero", "model.pma_num_heads", 0, r"pma_num_heads: must be >= 1"),
    ("max-seq-length-zero", "model.max_seq_length", 0, r"max_seq_length: must be >= 1"),
    ("lora-rank-zero", "model.lora", {"r": 0}, r"lora\.r: the LoRA rank must be an integer >= 1"),
    ("zero-temperature", "stages.0.temperature", 0, r"learning_rate and temperature must be > 0"),
    ("end-lr-above-peak", "stages.0.end_learning_rate", 1.0, r"end_learning_rate: must be between 0 and"),
    ("heldout-percent-0", "data.offline.heldout_percent", 0, r"heldout_percent: must be between 1 and 99"),
    ("relative-margin-1", "data.hard_negatives.relative_margin", 1.0, r"relative_margin: must be between 0 and"),
    ("record-batches-negative", "record_batches", -1, r"record_batches: -1 must be >= 0"),
    ("unknown-instruction-set", "model.instruction_set", "gpt", r"instruction_set: 'gpt' is not one of"),
    ("unknown-optimizer", "optimizer", "sgd", r"optimizer: 'sgd'; use per_stage or continuous"),
    ("unknown-key", "stages.0.learning_rat", 1e-4, r"stages\[0\]\.learning_rat: unknown key"),
]:
    def _build(tmp, assets, _path=_path, _value=_value):
        yield recipe_with(tmp, assets, _bad_number(_path, _value))
    _build.__name__ = f"case_{_id.replace('-', '_')}"
    case("recipe", r"bad config: .*" + _expect)(_build)


@case("recipe", r"continuous runs one learning-rate schedule across all stages")
def case_continuous_optimizer_with_two_learning_rates(tmp, assets):
    def change(config):
        config["optimizer"] = "continuous"
        config["stages"].append({**config["stages"][0], "name": "t", "learning_rate": 2e-3})
    yield recipe_with(tmp, assets, change)


@case("recipe", r"mix: give each of this stage's datasets .* one weight")
def case_mix_without_every_dataset(tmp, assets):
    def change(config):
        config["stages"][0]["datasets"].append("offline:Code Context Retrieval")
        config["stages"][0]["mix"] = {"offline:Code Summary Retrieval": 1}
    yield recipe_with(tmp, assets, change)


@case("recipe", r"batch_size 4096 is larger than every one of its datasets")
def case_batch_larger_than_the_data(tmp, assets):
    yield recipe_with(tmp, assets, _bad_number("stages.0.batch_size", 4096))


# -- recipe: data, paths and files ---------------------------------------------------------------------
def _with_source(tmp: Path, assets: Assets, path: Path) -> Setup:
    def change(config):
        config["data"]["sources"] = {"mine": {"path": str(path)}}
        config["stages"][0]["datasets"] = ["mine"]
    return recipe_with(tmp, assets, change)


@case("recipe", r"data\.sources\.mine\.path: .*/nope\.jsonl does not exist")
def case_missing_source(tmp, assets):
    yield _with_source(tmp, assets, tmp / "nope.jsonl")


@case("recipe", r"empty\.jsonl: no usable \(query, positive\) rows")
def case_empty_jsonl_source(tmp, assets):
    (tmp / "empty.jsonl").write_text("")
    yield _with_source(tmp, assets, tmp / "empty.jsonl")


@case("recipe", r"bad\.jsonl:2: not valid JSON")
def case_malformed_jsonl_source(tmp, assets):
    (tmp / "bad.jsonl").write_text('{"query": "a", "positive": "b"}\n{oops\n')
    yield _with_source(tmp, assets, tmp / "bad.jsonl")


@case("recipe", r"latin\.jsonl: not UTF-8 text")
def case_non_utf8_jsonl_source(tmp, assets):
    (tmp / "latin.jsonl").write_bytes('{"query": "caf\xe9", "positive": "r\xe9sum\xe9"}\n'.encode("latin-1"))
    yield _with_source(tmp, assets, tmp / "latin.jsonl")


@case("recipe", r"neither a data_gen output")
def case_source_folder_without_data(tmp, assets):
    (tmp / "folder").mkdir()
    (tmp / "folder" / "notes.txt").write_text("no rows here")
    yield _with_source(tmp, assets, tmp / "folder")


@case("recipe", r"base model folder .*/no-such-model' does not exist")
def case_missing_base_folder(tmp, assets):
    yield recipe_with(tmp, assets, _bad_number("model.base", str(tmp / "no-such-model")))


@case("recipe", r"is a file; pass a folder")
def case_output_dir_is_a_file(tmp, assets):
    (tmp / "run").write_text("a file, not a folder")
    setup = recipe_with(tmp, assets, lambda config: None)
    setup.protect = [tmp / "run"]
    yield setup


@case("recipe", r"llm_judge: none of \d+ calls to openai/judge at http://127\.0\.0\.1:\d+/v1 got an answer")
def case_unreachable_llm_judge(tmp, assets):
    def change(config):
        config["stages"][0]["filters"] = [{"type": "llm_judge", "llm": "openai/judge", "api_base": dead_api_base(),
                                           "timeout": 5}]
    yield recipe_with(tmp, assets, change)


@case("recipe", r"not valid YAML")
def case_invalid_yaml(tmp, assets):
    (tmp / "config.yaml").write_text("stages: [\n")
    yield Setup(argv=["--config", str(tmp / "config.yaml")])


@case("recipe", r"config file .*/missing\.yaml does not exist")
def case_missing_config_file(tmp, assets):
    yield Setup(argv=["--config", str(tmp / "missing.yaml")])


@case("recipe", r"--set oops: expected KEY=VALUE")
def case_set_without_a_value(tmp, assets):
    yield Setup(argv=["--set", "oops", "--print-config"])


@case("recipe", r"--steps-scale must be > 0")
def case_zero_steps_scale(tmp, assets):
    yield Setup(argv=["--steps-scale", "0", "--output-dir", str(tmp / "run")])


# -- recipe: runs that meet an earlier run -------------------------------------------------------------
def _finished_run(tmp: Path, assets: Assets) -> tuple[dict, Path]:
    """Train the tiny config once (in this process) and return it with its output folder."""
    from st_code.training import CurriculumRunner, config_from_dict

    config = tiny_config(assets, tmp / "run")
    CurriculumRunner(config_from_dict(config), log=lambda _: None).run()
    return config, tmp / "run"


@case("recipe", r"holds a run started with a different setup.*\n.*stages\[0\]\.learning_rate: 0\.001 -> 0\.002")
def case_rerun_with_a_changed_config(tmp, assets):
    config, out = _finished_run(tmp, assets)
    config["stages"][0]["learning_rate"] = 2e-3
    yield Setup(argv=["--config", str(write_config(tmp, config))],
                protect=[out / "run.json", out / "config.yaml", out / "stages" / "1-s" / "DONE.json"])


@case("recipe", r"holds a run started with a different setup.*\n.*data\.sources\.extra: its content changed")
def case_rerun_with_changed_data(tmp, assets):
    from st_code.training import CurriculumRunner, config_from_dict

    extra = tmp / "extra.jsonl"
    extra.write_text("".join(json.dumps({"query": f"q{i}", "positive": f"p{i}"}) + "\n" for i in range(8)))
    config = tiny_config(assets, tmp / "run")
    config["data"]["sources"] = {"extra": {"path": str(extra)}}
    CurriculumRunner(config_from_dict(config), log=lambda _: None).run()
    extra.write_text("".join(json.dumps({"query": f"q{i}", "positive": f"changed {i}"}) + "\n" for i in range(8)))
    yield Setup(argv=["--config", str(write_config(tmp, config))],
                protect=[tmp / "run" / "run.json", tmp / "run" / "stages" / "1-s" / "DONE.json"])


@case("recipe", r"is in use by another training run \(pid \d+")
def case_second_run_on_the_same_folder(tmp, assets):
    from st_code.locking import FolderLock

    with FolderLock(tmp / "run", "training run", log=lambda _: None):  # the first run, still going
        yield recipe_with(tmp, assets, lambda config: None)


@case("recipe", r"the training loss became nan at step \d+ .*the last good checkpoint is", exit_code=3)
def case_diverging_learning_rate(tmp, assets):
    def change(config):  # the example: the packaged MiniLM at learning rate 1e6
        config["stages"][0].update(learning_rate=1e6, max_steps=6)
        config["model"].update(base="minilm", pooling="mean")
    yield recipe_with(tmp, assets, change)


# -- data_gen ---------------------------------------------------------------------------------------------
@case("data_gen", r"concurrency must be a whole number of calls in flight, >= 1 \(got 0\)")
def case_data_gen_concurrency_zero(tmp, assets):
    done = finished_generate(tmp)
    yield Setup(argv=data_gen_argv(tmp, "generate", "--concurrency", "0"), protect=[done])


@case("data_gen", r"--max-samples: expected a whole number >= 1 or 'all', got 0")
def case_data_gen_max_samples_zero(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "generate", "--max-samples", "0"), protect=[finished_generate(tmp)])


@case("data_gen", r"--max-samples: expected a whole number >= 1 or 'all', got -1")
def case_data_gen_max_samples_negative(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "generate", "--max-samples=-1"), protect=[finished_generate(tmp)])


@case("data_gen", r"retries must be a whole number >= 0 \(got -1\)")
def case_data_gen_retries_negative(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "generate", "--retries=-1"), protect=[finished_generate(tmp)])


@case("data_gen", r"timeout must be a positive number of seconds \(got 0.0\)")
def case_data_gen_timeout_zero(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "generate", "--timeout", "0"), protect=[finished_generate(tmp)])


@case("data_gen", r"num_negatives must be a whole number >= 1 \(got 0\)")
def case_data_gen_zero_negatives(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "mine", "--num-negatives", "0"))


@case("data_gen", r"litellm cannot call the model 'notaprovider/xyz'")
def case_data_gen_unknown_model_provider(tmp, assets):
    done = finished_generate(tmp)
    yield Setup(argv=["generate", "--out", str(tmp / "out"), "--model", "notaprovider/xyz", "--tasks",
                      "Code Summary Retrieval"], protect=[done])


@case("data_gen", r"generate: none of \d+ calls to openai/stub at http://127\.0\.0\.1:\d+/v1 succeeded \(connection")
def case_data_gen_server_down(tmp, assets):
    out = tmp / "out"
    out.mkdir()
    (out / "corpus.jsonl").write_text(json.dumps({"id": "c1", "language": "Python", "path": "a.py",
                                                  "code": "def f(x):\n    return x + 1\n"}) + "\n")
    yield Setup(argv=data_gen_argv(tmp, "generate", "--retries", "0"))


@case("data_gen", r"corpus source .*/nowhere does not exist")
def case_data_gen_missing_corpus(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "corpus", "--corpus", str(tmp / "nowhere")))


@case("data_gen", r"the corpus is empty after filtering")
def case_data_gen_corpus_without_code(tmp, assets):
    (tmp / "docs").mkdir()
    (tmp / "docs" / "README.md").write_text("# only prose here")
    yield Setup(argv=data_gen_argv(tmp, "corpus", "--corpus", str(tmp / "docs")))


@case("data_gen", r"unknown language\(s\) \['Klingon'\]")
def case_data_gen_unknown_language(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "corpus", "--corpus", str(code_corpus(tmp)), "--languages", "Klingon"))


@case("data_gen", r"unknown CodeR-Pile task 'Code Sumary Retrieval'; did you mean \['Code Summary Retrieval'")
def case_data_gen_unknown_task(tmp, assets):
    out = tmp / "out"
    out.mkdir()
    (out / "corpus.jsonl").write_text(json.dumps({"id": "c1", "language": "Python", "path": "a.py",
                                                  "code": "def f(x):\n    return x + 1\n"}) + "\n")
    yield Setup(argv=["generate", "--out", str(out), "--model", "openai/stub", "--api-base", dead_api_base(),
                      "--tasks", "Code Sumary Retrieval"])


@case("data_gen", r"--out .* is a file; pass a folder")
def case_data_gen_out_is_a_file(tmp, assets):
    (tmp / "out").write_text("a file")
    yield Setup(argv=data_gen_argv(tmp, "corpus", "--corpus", str(code_corpus(tmp))), protect=[tmp / "out"])


@case("data_gen", r"annotated\.jsonl does not exist: run the stage that writes it first")
def case_data_gen_stage_out_of_order(tmp, assets):
    (tmp / "out").mkdir()
    yield Setup(argv=data_gen_argv(tmp, "mine"))


@case("data_gen", r"is in use by another data_gen run \(pid \d+")
def case_data_gen_second_run_on_the_same_folder(tmp, assets):
    from st_code.locking import FolderLock

    done = finished_generate(tmp)
    with FolderLock(tmp / "out", "data_gen run", log=lambda _: None):
        yield Setup(argv=data_gen_argv(tmp, "generate"), protect=[done])


@case("data_gen", r"tasks\.yaml: expected a YAML list of task entries")
def case_data_gen_bad_task_file(tmp, assets):
    (tmp / "tasks.yaml").write_text("name: not a list\n")
    yield Setup(argv=data_gen_argv(tmp, "generate", "--task-file", str(tmp / "tasks.yaml")))


# -- evaluation --------------------------------------------------------------------------------------------
@case("evaluation", r"no saved model at '.*runs/anealing/final'")
def case_eval_typo_in_the_model_path(tmp, assets):
    (tmp / "runs").mkdir()
    yield Setup(argv=[str(tmp / "runs" / "anealing" / "final"), "--builtin", "HumanEval-doc2code",
                      "--output-dir", str(tmp / "eval")])


@case("evaluation", r"modules\.json is damaged")
def case_eval_corrupt_modules_json(tmp, assets):
    import shutil

    model = tmp / "model"
    shutil.copytree(assets.saved_model, model)
    (model / "modules.json").write_text("{ not json")
    yield Setup(argv=[str(model), "--builtin", "HumanEval-doc2code", "--output-dir", str(tmp / "eval")])


@case("evaluation", r"dataset .*/missing\.jsonl does not exist")
def case_eval_missing_local_set(tmp, assets):
    yield Setup(argv=[assets.saved_model, "--local", str(tmp / "missing.jsonl"), "--output-dir", str(tmp / "eval")])


@case("evaluation", r"qrels/test\.tsv:1: score 'yes' is not a number")
def case_eval_bad_qrels(tmp, assets):
    folder = tmp / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "def f(): pass"}\n')
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "nothing"}\n')
    (folder / "qrels" / "test.tsv").write_text("q1\td1\tyes\n")
    yield Setup(argv=[assets.saved_model, "--local", str(folder), "--output-dir", str(tmp / "eval")])


@case("evaluation", r"argument --builtin: invalid choice: 'HumanEval'")
def case_eval_unknown_builtin_set(tmp, assets):
    yield Setup(argv=[assets.saved_model, "--builtin", "HumanEval", "--output-dir", str(tmp / "eval")])


@case("evaluation", r"--output-dir .* is a file; pass a folder")
def case_eval_output_dir_is_a_file(tmp, assets):
    (tmp / "eval").write_text("a file")
    yield Setup(argv=[assets.saved_model, "--builtin", "HumanEval-doc2code", "--output-dir", str(tmp / "eval")],
                protect=[tmp / "eval"])


@case("evaluation", r"CosQAA")
def case_eval_unknown_mteb_task(tmp, assets):
    yield Setup(argv=[assets.saved_model, "--tasks", "CosQAA", "--output-dir", str(tmp / "eval")])


@case("evaluation", r"argument --batch-size: expected a whole number >= 1, got 0")
def case_eval_zero_batch_size(tmp, assets):
    yield Setup(argv=[assets.saved_model, "--builtin", "HumanEval-doc2code", "--batch-size", "0"])


@case("evaluation", r"nothing to evaluate: give a benchmark, task names, local sets or built-in sets")
def case_eval_nothing_to_evaluate(tmp, assets):
    yield Setup(argv=[assets.saved_model, "--output-dir", str(tmp / "eval")])


@case("evaluation", r"empty\.jsonl: no usable \(query, positive\) rows")
def case_eval_empty_local_set(tmp, assets):
    (tmp / "empty.jsonl").write_text("\n")
    yield Setup(argv=[assets.saved_model, "--local", str(tmp / "empty.jsonl"), "--output-dir", str(tmp / "eval")])


@case("evaluation", r"is in use by another evaluation run \(pid \d+")
def case_eval_second_run_on_the_same_folder(tmp, assets):
    from st_code.locking import FolderLock

    with FolderLock(tmp / "eval", "evaluation run", log=lambda _: None):
        yield Setup(argv=[assets.saved_model, "--builtin", "HumanEval-doc2code", "--output-dir", str(tmp / "eval")])


# -- Python API -----------------------------------------------------------------------------------------------
@case("api", r"no saved model at '.*runs/anealing/final'")
def case_api_load_model_typo(tmp, assets):
    (tmp / "runs").mkdir()
    yield Setup(code=f"import st_code\nst_code.load_model({str(tmp / 'runs' / 'anealing' / 'final')!r})")


@case("api", r"no saved model at 'runs/anealing/final'")
def case_api_load_model_relative_typo(tmp, assets):
    (tmp / "runs").mkdir()
    yield Setup(code=f"import os, st_code\nos.chdir({str(tmp)!r})\nst_code.load_model('runs/anealing/final')")


@case("api", r"unknown pooling 'max'")
def case_api_unknown_pooling(tmp, assets):
    yield Setup(code=f"import st_code\nst_code.build_model({assets.tiny_qwen!r}, pooling='max')")


@case("api", r"LoRA target\(s\) \['qkv'\] match no Linear layer")
def case_api_lora_target_missing(tmp, assets):
    yield Setup(code=f"import st_code\nst_code.build_model({assets.tiny_qwen!r}, lora={{'target_modules': ['qkv']}})")


@case("api", r"PMA embedding_dim=50 is not divisible by num_heads=32")
def case_api_pma_heads_do_not_divide(tmp, assets):
    yield Setup(code=f"import st_code\nst_code.build_model({assets.tiny_qwen!r}, pooling='pma', embedding_dim=50, "
                     "pma_num_heads=32)")


@case("api", r"concurrency must be a whole number of calls in flight, >= 1 \(got 0\)")
def case_api_llm_client_concurrency_zero(tmp, assets):
    yield Setup(code="from st_code.llm import LLMClient\nLLMClient('openai/x', ['http://127.0.0.1:9/v1'], concurrency=0)")


from tests.faults import user_cases  # noqa: E402,F401 - registers the cases of user's folders, flags and files

__all__ = ["CASES", "Case", "CaseSkipped", "Setup", "Assets", "tiny_config"]
