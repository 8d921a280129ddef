"""Curriculum config: bad input fails before training, naming the key or path."""

from __future__ import annotations

import copy

import pytest

from st_code.training import ConfigError, config_from_dict, load_config

BASE = {
    "data": {"offline": {"max_pairs_per_task": 10}},
    "stages": [{"name": "s1", "datasets": ["offline:Text Retrieval"]}],
}


def _with(**changes):
    config = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = config
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        node[keys[-1]] = value
    return config


def test_valid_minimal_config():
    config = config_from_dict(BASE)
    assert config.stages[0].temperature == 0.02 and config.model.base == "minilm"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model__poolng": "pma"}, r"model\.poolng: unknown key"),
        ({"stages__0__learning_rat": 1e-4}, r"stages\[0\]\.learning_rat: unknown key"),
        ({"model__pooling": "max"}, r"model\.pooling: 'max' is not one of"),
        ({"stages__0__datasets": []}, r"a stage with no data"),
        ({"stages__0__datasets": ["nope"]}, r"unknown dataset 'nope'"),
        ({"stages__0__batch_size": "big"}, r"stages\[0\]\.batch_size: expected an integer"),
        ({"stages__0__learning_rate": "fast"}, r"learning_rate: expected a number"),
        ({"data__sources": {"mine": {"path": "/definitely/not/here.jsonl"}}}, r"data\.sources\.mine\.path: /definitely/not/here\.jsonl does not exist"),
        ({"stages__0__merge_lora": True}, r"merge_lora: true needs model\.lora"),
        ({"stages__0__filters": [{"type": "llm_judge"}]}, r"needs a litellm model name"),
        ({"evaluation": {"sets": ["MyBench"]}}, r"unknown set 'MyBench'"),
        ({"data__offline__code_dirs": ["/no/such/code"]}, r"code_dirs\[0\]: folder /no/such/code does not exist"),
        ({"data__offline__jdk_sources": "/no/src.zip"}, r"data\.offline\.jdk_sources: /no/src\.zip is no file"),
        ({"data__offline__jdk_sources": 3}, r"data\.offline\.jdk_sources: expected a string"),
        ({"dataloader_workers": -1}, r"dataloader_workers: a whole number >= 0 or auto, got -1"),
        ({"dataloader_workers": "many"}, r"dataloader_workers: a whole number >= 0 or auto, got 'many'"),
        ({"stages__0__mix": {"offline:Text Retrieval+nope": 1}}, r"give each of this stage's datasets .* one weight"),
        ({"stages__0__mix": {"offline:Text Retrieval": 1}, "stages__0__sampler": "round_robin"},
         r"stages\[0\] \(s1\)\.mix sets each dataset's share of the batches, which round_robin overrides"),
    ],
)
def test_bad_configs_name_the_problem(changes, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(_with(**changes))


def test_no_stages_is_an_error():
    with pytest.raises(ConfigError, match="at least one stage"):
        config_from_dict({"stages": []})


def test_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_shipped_gpu_configs_validate_and_name_a_missing_data_gen_folder(tmp_path, monkeypatch):
    """Run from a folder without data/coder-pile: configs that read data_gen's output say so by key;
    the others (hub sources only) validate. The full dry runs are in test_shipped_configs.py."""
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "recipes" / "configs").glob("*.yaml"))
    assert [p.name for p in configs] == ["c2llm-0.5b.yaml", "coder-1.5b.yaml", "codexembed-2stage.yaml",
                                         "minilm-cpu.yaml"]
    monkeypatch.chdir(tmp_path)
    for path in configs:
        if "data/coder-pile" in path.read_text():
            with pytest.raises(ConfigError, match=r"data\.sources\.coder_pile\.path: data/coder-pile does not exist"):
                load_config(path)
        else:
            assert load_config(path).stages


def test_dataloader_workers_auto_tokenizes_ahead_on_gpus_only():
    config = config_from_dict(BASE)
    assert config.dataloader_workers == "auto"
    assert config.loader_workers(on_gpu=True) == 2 and config.loader_workers(on_gpu=False) == 0
    assert config_from_dict(_with(dataloader_workers=3)).loader_workers(on_gpu=False) == 3
    assert config.loader_arguments(on_gpu=True) == {"dataloader_num_workers": 2, "dataloader_persistent_workers": True}
    assert config.loader_arguments(on_gpu=False) == {"dataloader_num_workers": 0, "dataloader_persistent_workers": False}
