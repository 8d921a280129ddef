"""Public multi-language sets keep their programming language, so C2LLM's batches stay one language."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset, DatasetDict

from st_code.data.code_languages import canonical_code_language, detect_code_language
from st_code.data.readers import load_samples
from st_code.training import config_from_dict
from st_code.training.sources import read_sources
from st_code.training.stage_datasets import build_stage_datasets

CSN_CODE = {
    "python": "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    return a + b\n",
    "go": "func (s *Server) Start(addr string) error {\n\tif err != nil {\n\t\treturn err\n\t}\n\treturn nil\n}",
    "java": "public static int add(int a, int b) {\n    return a + b;\n}",
    "javascript": "function add(a, b) {\n  const c = a + b;\n  return c;\n}",
    "php": "public function getName($id)\n{\n    return $this->name;\n}",
    "ruby": "def add(a, b)\n  a + b\nend\n",
}


def test_spellings_map_to_one_name_and_the_detector_knows_the_csn_six():
    assert [canonical_code_language(n) for n in ("python", "Py", "golang", "c++", "JS", "English", None)] == \
        ["Python", "Python", "Go", "C++", "JavaScript", None, None]
    expected = {"python": "Python", "go": "Go", "java": "Java", "javascript": "JavaScript", "php": "PHP", "ruby": "Ruby"}
    assert {lang: detect_code_language(code) for lang, code in CSN_CODE.items()} == expected
    assert detect_code_language("the quick brown fox") is None


def test_coir_per_language_hub_layout_gives_each_row_its_language(monkeypatch):
    """CoIR's CodeSearchNet keeps one ``<lang>-corpus/-queries/-qrels`` triple per language. The hub
    cannot be reached here, so (only) datasets' hub functions are replaced by local tables of that layout."""
    import datasets

    def tables(lang: str) -> dict:
        corpus = Dataset.from_dict({"_id": [f"{lang}-d{i}" for i in range(3)], "title": [""] * 3,
                                    "text": [f"summary {lang} {i}" for i in range(3)]})
        queries = Dataset.from_dict({"_id": [f"{lang}-q{i}" for i in range(3)],
                                     "text": [CSN_CODE[lang] + f"# {i}" for i in range(3)]})
        qrels = Dataset.from_dict({"query-id": [f"{lang}-q{i}" for i in range(3)],
                                   "corpus-id": [f"{lang}-d{i}" for i in range(3)], "score": [1] * 3})
        return {"corpus": DatasetDict({"corpus": corpus}), "queries": DatasetDict({"queries": queries}), "qrels": qrels}

    def load_dataset(name, config=None, split=None):
        lang, _, part = config.rpartition("-")
        return tables(lang)[part]

    configs = [f"{lang}-{part}" for lang in ("go", "python", "ruby") for part in ("corpus", "queries", "qrels")]
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(datasets, "get_dataset_config_names", lambda name: configs)
    samples = load_samples("hf://datasets/CoIR-Retrieval/CodeSearchNet", task="COIRCodeSearchNetRetrieval")
    assert sorted({s.code_language for s in samples}) == ["Go", "Python", "Ruby"] and len(samples) == 9
    assert all(s.language is None for s in samples)
    grouped = build_stage_datasets(samples, 0).datasets
    assert sorted(grouped) == ["COIRCodeSearchNetRetrieval | Go", "COIRCodeSearchNetRetrieval | Python",
                               "COIRCodeSearchNetRetrieval | Ruby"]


def test_a_csn_shaped_set_without_languages_is_detected_and_reported(tmp_path):
    rows = [{"comment": f"add numbers {lang} {i}", "code": code + f"\n// {i}"} for lang, code in CSN_CODE.items()
            for i in range(4)]
    path = tmp_path / "csn.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = {"path": str(path), "task": "CodeSearchNetRetrieval", "columns": {"anchor": "comment", "positive": "code"}}
    config = config_from_dict({"data": {"offline": None, "sources": {"plain": source,
                                                                   "detected": {**source, "code_language": "detect"}}},
                               "stages": [{"name": "s", "datasets": ["plain", "detected"]}],
                               "evaluation": {"sets": []}})
    logs: list[str] = []
    sources, _ = read_sources(config, logs.append)
    assert {s.code_language for s in sources["plain"]} == {None}  # nothing guessed unless asked
    assert sorted({s.code_language for s in sources["detected"]}) == ["Go", "Java", "JavaScript", "PHP", "Python", "Ruby"]
    assert any("programming languages (each its own batches): " in line and "Go 4" in line for line in logs)


@pytest.mark.parametrize(("row", "expected"), [({"language": "python"}, "Python"), ({"code_language": "golang"}, "Go"),
                                               ({"code_language": "Elixir"}, "Elixir")])
def test_a_rows_own_language_column_is_kept_in_one_spelling(tmp_path, row, expected):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"query": "q", "positive": "def f(): pass", **row}) + "\n")
    assert load_samples(path)[0].code_language == expected
