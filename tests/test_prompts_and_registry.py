"""Task registry integrity and prompt resolution through mteb's own lookup."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import mteb
import pytest
from mteb.models.abs_encoder import get_prompt_name
from mteb.types import PromptType

import st_code
from st_code.prompts import build_prompts, format_instruction
from st_code.tasks import (
    MTEB_CODE_TASK_NAMES, RegistryError, coder_pile_tasks, evaluation_tasks, get_task, load_registry,
)


def test_coder_pile_has_the_papers_47_tasks():
    tasks = coder_pile_tasks()
    assert len(tasks) == 47
    assert Counter(t.major_type for t in tasks.values()) == {"Text2Code": 10, "Code2Text": 10, "Code2Code": 18, "Hybrid": 9}
    assert all(t.generation_instruction and t.annotation_instruction and t.query_type and t.doc_type for t in tasks.values())
    assert get_task("Code Translation Retrieval").format_instruction(src_code_language="Python", tgt_code_language="C++") == (
        "Given a piece of Python code, retrieve C++ code that is semantically equivalent to the input code."
    )
    assert get_task("Bug Description to Code Retrieval").is_two_step
    assert {t.input_role for t in tasks.values() if t.major_type == "Text2Code"} == {"positive"}
    with pytest.raises(KeyError, match="did you mean"):
        get_task("Code Sumary Retrieval")


def test_registry_rejects_malformed_entries(tmp_path):
    bad = tmp_path / "tasks.yaml"
    bad.write_text("- name: X\n  major_type: Text2Code\n  instruction: i\n  colour: red\n")
    with pytest.raises(RegistryError, match="unknown field"):
        load_registry(bad)
    bad.write_text("- name: X\n  major_type: Prose\n")
    with pytest.raises(RegistryError, match="misses field"):
        load_registry(bad)


def test_mteb_code_benchmark_tasks_are_all_registered():
    benchmark = mteb.get_benchmark("MTEB(Code, v1)")
    names = {task.metadata.name for task in benchmark.tasks}
    assert names == set(MTEB_CODE_TASK_NAMES)
    assert names <= set(evaluation_tasks())


@pytest.mark.parametrize("instruction_format", ["bge", "qwen"])
def test_prompts_resolve_for_all_12_mteb_code_tasks(instruction_format):
    prompts = build_prompts(instruction_format)
    for task in mteb.get_benchmark("MTEB(Code, v1)").tasks:
        name = get_prompt_name(prompts, task.metadata, PromptType.query)
        assert name == f"{task.metadata.name}-query"
        assert evaluation_tasks()[task.metadata.name].instruction in prompts[name]
        # documents get no instruction (CodeR and C2LLM encode documents as they are)
        assert get_prompt_name(prompts, task.metadata, PromptType.document) is None


def test_instruction_formats():
    assert format_instruction("Find code.", "bge") == "<instruct>Find code.\n<query>"
    assert format_instruction("Find code.", "qwen") == "Instruct: Find code.\nQuery: "
    assert format_instruction("Find code.", "Task: {instruction} | ") == "Task: Find code. | "
    assert build_prompts("none") == {}
    c2llm = build_prompts("bge", instruction_set="c2llm")
    assert "programming contest" in c2llm["AppsRetrieval-query"]


def test_model_applies_the_prompt(tiny_qwen_path):
    model = st_code.build_model(tiny_qwen_path, pooling="lasttoken", device="cpu")
    with_prompt = model.encode_query(["sort a list"], prompt_name="CosQA-query")
    explicit = model.encode([model.prompts["CosQA-query"] + "sort a list"])
    bare = model.encode(["sort a list"])
    assert abs(with_prompt - explicit).max() < 1e-5
    assert abs(with_prompt - bare).max() > 1e-4


def test_light_imports_do_not_load_torch():
    """The registry and data_gen's CLI start fast: st_code's model names resolve only when first used."""
    import subprocess
    import sys

    code = ("import sys, st_code, st_code.tasks, data_gen, data_gen.generate; "
            "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'heavy import'; "
            "from st_code import build_model, PMAPooling; assert callable(build_model) and 'torch' in sys.modules; "
            "assert 'load_model' in dir(st_code)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


LIGHT_COMMANDS = """
import runpy, sys
bad_config = sys.argv[1]
def run(argv, module=None, path=None):
    sys.argv = argv
    try:
        runpy.run_module(module, run_name="__main__") if module else runpy.run_path(path, run_name="__main__")
    except SystemExit as stop:
        assert stop.code == (0 if "--help" in argv else 2), (argv, stop.code)
    assert "sentence_transformers" not in sys.modules and "mteb" not in sys.modules, f"heavy import: {argv}"
run(["st-code", "--help"], module="st_code")
run(["st-code", "adapt", "--help"], module="st_code")
run(["st-code", "search", "--help"], module="st_code")
run(["eval", "--help"], module="st_code.evaluation")
run(["eval", "some-model", "--local", "no/such/set.jsonl"], module="st_code.evaluation")
run(["st-code", "adapt", "no/such/repository"], module="st_code")
run(["annealing.py", "--help"], path="recipes/annealing.py")
run(["annealing.py", "--config", bad_config], path="recipes/annealing.py")
"""


def test_help_and_a_bad_config_answer_without_loading_the_ml_stack(tmp_path):
    """``--help``, a refused config and a mistyped evaluation set or repository come in well under a second,
    not after importing sentence-transformers and mteb (10-15 s on these machines)."""
    import subprocess
    import sys

    import yaml

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"stages": [{"name": "s", "datasets": ["offline:Text Retrieval"], "learning_rat": 1}]}))
    result = subprocess.run([sys.executable, "-c", LIGHT_COMMANDS, str(bad)], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stages[0].learning_rat: unknown key" in result.stderr
    assert "error: dataset no/such/set.jsonl does not exist" in result.stderr
    assert "error: repository no/such/repository does not exist" in result.stderr


def test_importing_st_code_sets_no_process_wide_environment_variables():
    """Importing the library leaves os.environ alone; litellm's local price table is asked for only
    where litellm is imported (st_code.llm.client.import_litellm), and an explicit value is kept."""
    import os
    import subprocess
    import sys

    code = ("import os, st_code, st_code.llm, st_code.training.curriculum, st_code.evaluation.runner, data_gen, "
            "data_gen.pipeline\n"
            "assert 'LITELLM_LOCAL_MODEL_COST_MAP' not in os.environ, 'set at import'\n"
            "from st_code.llm.client import import_litellm\nimport_litellm()\n"
            "assert os.environ['LITELLM_LOCAL_MODEL_COST_MAP'] == 'True'")
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_generation_flow_the_registry_names_is_implemented_by_data_gen():
    """Per-task generation behaviour lives in the registry (one entry per task); data_gen implements
    each named flow once, and no task name appears in its code."""
    from pathlib import Path

    from data_gen.generate import Generator
    from st_code.tasks import GENERATION_FLOWS, coder_pile_tasks

    assert all(hasattr(Generator, f"_flow_{flow}") for flow in GENERATION_FLOWS)
    assert {task.flow for task in coder_pile_tasks().values()} == set(GENERATION_FLOWS)
    assert [t.name for t in coder_pile_tasks().values() if t.needs_target_language] == ["Code Translation Retrieval"]
    source = (Path(__file__).resolve().parents[1] / "data_gen" / "generate.py").read_text()
    assert not [name for name in coder_pile_tasks() if name in source]
