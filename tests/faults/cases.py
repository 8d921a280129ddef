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


def one_function_corpus(tmp: Path) -> Path:
    """A data_gen output folder holding only a read corpus of one Python function (what generate reads)."""
    out = tmp / "out"
    out.mkdir()
    (out / "corpus.jsonl").write_text(json.dumps({"id": "c1", "language": "Python", "path": "a.py",
                                                  "code": "def f(x):\n    return x + 1\n"}) + "\n")
    return out


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


from tests.faults import data_gen_cases  # noqa: E402,F401 - registers data_gen's cases
from tests.faults import eval_api_cases  # noqa: E402,F401 - registers evaluation and API cases
from tests.faults import user_cases  # noqa: E402,F401 - registers the cases of user's folders, flags and files

__all__ = ["CASES", "Case", "CaseSkipped", "Setup", "Assets", "tiny_config"]
