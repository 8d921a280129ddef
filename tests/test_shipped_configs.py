"""Every shipped GPU config, loaded, validated and dry-run through ``recipes/annealing.py --dry-run``:
its data really read (data_gen's output folder stands in for each source, since the hub cannot be
reached here), hard negatives mined, its filters run, at least one optimizer step per stage, the
model saved. Only what cannot exist here is swapped: the base (a tiny decoder for the hub model),
hub datasets and hub embedders (the packaged MiniLM), and the judge LLM (the local test server)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from tests.openai_stub import OpenAIStub
from tests.real_path import ROOT

pytestmark = pytest.mark.slow
#: The papers' GPU configs (the CPU default, minilm-cpu.yaml, is what the main job runs, end to end)
CONFIGS = sorted(p for p in (ROOT / "recipes" / "configs").glob("*.yaml") if p.name != "minilm-cpu.yaml")


def _recipe():
    spec = importlib.util.spec_from_file_location("annealing_recipe", ROOT / "recipes" / "annealing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _overrides(config: dict, base: str, coder_pile: Path, judge_api: str) -> list[str]:
    sets = [f"model.base={base}", "data.hard_negatives.model=minilm",
            "data.offline={code_dirs: [" + str(ROOT / "tests") + "], include_package_docs: false}"]
    for name, source in config["data"]["sources"].items():
        sets.append(f"data.sources.{name}.path={coder_pile}")
        if source.get("columns"):  # the hub set's own column names; data_gen's rows use the standard ones
            sets.append(f"data.sources.{name}.columns={{}}")
    for i, stage in enumerate(config["stages"]):
        sets.append(f"stages.{i}.batch_size=4")
        for j, flt in enumerate(stage.get("filters", [])):
            if flt.get("model"):  # the model being trained, as it is when the stage starts: minilm took 12 s
                sets.append(f"stages.{i}.filters.{j}.model=null")
            if flt["type"] == "llm_judge":
                sets += [f"stages.{i}.filters.{j}.llm=openai/judge", f"stages.{i}.filters.{j}.api_base={judge_api}"]
    return sets


def test_all_three_paper_configs_ship():
    assert [p.name for p in CONFIGS] == ["c2llm-0.5b.yaml", "coder-1.5b.yaml", "codexembed-2stage.yaml"]


def test_the_recipe_configs_are_the_packaged_ones():
    """recipes/configs/ links to st_code/configs/ (what `--config NAME` reads in an installed package), so
    an edit to one is an edit to both; an editor that replaced a link with a copy would split them."""
    for path in sorted((ROOT / "recipes" / "configs").glob("*.yaml")):
        assert path.is_symlink() and path.resolve() == (ROOT / "st_code" / "configs" / path.name).resolve(), path


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_dry_runs_end_to_end(path, tiny_qwen_path, coder_pile, tmp_path, capsys):
    config = yaml.safe_load(path.read_text())
    out = tmp_path / "run"
    with OpenAIStub(lambda prompt: "Yes, hard") as judge:
        argv = ["--config", str(path), "--dry-run", "--output-dir", str(out),
                "--set", *_overrides(config, tiny_qwen_path, coder_pile, judge.api_base)]
        assert _recipe().main(argv) == 0
        asked = len(judge.requests)
    effective = yaml.safe_load((out / "config.yaml").read_text())
    for key in ("pooling", "lora", "instruction_set", "instruction_format", "max_seq_length", "dtype", "bidirectional"):
        assert effective["model"][key] == config["model"].get(key, effective["model"][key]), key  # as shipped
    for index, stage in enumerate(config["stages"]):
        done = json.loads((out / "stages" / f"{index + 1}-{stage['name']}" / "DONE.json").read_text())
        assert done["train"]["global_step"] == 1, stage["name"]  # one optimizer step per stage
        assert done["losses"] and all(loss == loss for _, loss in done["losses"])
        assert set(done["datasets"]) and all(n > 0 for n in done["datasets"].values())
        if stage.get("instructions"):
            assert done["instructions"], f"stage {stage['name']} trains with instructions but recorded none"
        filter_types = [f["type"] for f in stage.get("filters", [])]
        assert [r["name"].split("(")[0] for r in done["filters"]] == filter_types
    judges = [f for s in config["stages"] for f in s.get("filters", []) if f["type"] == "llm_judge"]
    if judges:  # data_gen labelled every row: asked again only where the config re-judges (coder-1.5b, as CodeR)
        assert (asked > 0) if any(f.get("rejudge") for f in judges) else asked == 0
    printed = capsys.readouterr().out
    for stage in config["stages"]:  # --dry-run says what each stage reads, repeats and steps
        assert f"stage '{stage['name']}' plan (before filtering)" in printed
    assert (out / "final" / "modules.json").is_file()
    prompts = json.loads((out / "final" / "config_sentence_transformers.json").read_text())["prompts"]
    if effective["model"]["instruction_set"] == "c2llm":  # C2LLM Table 1: documents are prefixed too
        assert prompts["document"] == "Retrieved Answer: " and prompts["CosQA-document"] == "Retrieved Answer: "
        assert prompts["CosQA-query"].startswith("Instruct: Given a query from a web search, retrieve code")
    if effective["model"]["instruction_set"] == "codexembed":  # one generic instruction for every query
        assert prompts["query"] == "Instruct: Given Code or Text, retrieve relevant content.\nQuery: "
        assert {p for n, p in prompts.items() if n.endswith("-query")} == {prompts["query"]}
    if effective["optimizer"] == "continuous":
        second = json.loads((out / "stages" / f"2-{config['stages'][1]['name']}" / "DONE.json").read_text())
        assert second["train"]["carried_optimizer_parameters"] > 0  # AdamW state crossed the stage boundary


def test_config_validation_reads_the_data_not_only_the_path(tmp_path):
    """A folder that exists but holds no training rows fails validation, naming the source."""
    from st_code.training import ConfigError, config_from_dict

    (tmp_path / "not-data").mkdir()
    (tmp_path / "not-data" / "README.txt").write_text("hello")
    bad_rows = tmp_path / "rows.jsonl"
    bad_rows.write_text('{"title": "no query or positive here"}\n')
    for path, message in ((tmp_path / "not-data", "neither a data_gen output"), (bad_rows, "no anchor column")):
        config = {"data": {"offline": None, "sources": {"mine": {"path": str(path)}}},
                  "stages": [{"name": "s", "datasets": ["mine"]}], "evaluation": {"sets": []}}
        with pytest.raises(ConfigError, match=rf"data\.sources\.mine\.path: .*{message}"):
            config_from_dict(config)
