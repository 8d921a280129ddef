"""Data loaders (JSONL, datasets folder, BEIR), grouping, and the offline default builder."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from st_code.data import build_offline_data, humaneval_retrieval
from st_code.data.offline_pairs import CODE_CONTEXT, TEXT2CODE, split_code_context
from st_code.data.readers import DataError, load_samples, read_beir
from st_code.training.stage_datasets import group_samples


def test_jsonl_in_data_gen_layout(tmp_path):
    path = tmp_path / "triplets.jsonl"
    rows = [{"query": f"q{i}", "positive": f"p{i}", "negative_1": f"n{i}", "negative_2": f"m{i}",
             "task": "Code Summary Retrieval", "code_language": "Go"} for i in range(3)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    samples = load_samples(path)
    assert samples[0].negatives == ["n0", "m0"] and samples[0].task == "Code Summary Retrieval"
    assert (samples[0].code_language, samples[0].language) == ("Go", None)
    groups = group_samples(samples, num_negatives=2)
    assert list(groups) == ["Code Summary Retrieval | Go"]
    assert groups["Code Summary Retrieval | Go"].column_names == ["anchor", "positive", "negative_1", "negative_2"]


def test_a_data_gen_output_folder_loads_with_every_column(tmp_path):
    """data_gen's --out folder, as the shipped configs name it, keeps each row's task, languages,
    instruction and difficulty (the source name is only the task of last resort)."""
    from data_gen.pairs import Pair
    from data_gen.write import write_dataset

    pairs = [Pair(key=f"k{i}", task=task, major_type="Code2Code", language=lang, code_language=code, instruction=inst,
                  query=f"q{i}", positive=f"p{i}", source_id="s", negatives=[f"n{i}", f"m{i}"], difficulty=label)
             for i, (task, lang, code, inst, label) in enumerate([
                 ("Code Translation Retrieval", "English", "Python",
                  "Given a piece of Python code, retrieve Go code that is semantically equivalent to the input code.",
                  "hard"),
                 ("Code Summary Retrieval", "Chinese", "Go", "Given a piece of code, retrieve the document string "
                  "that summarizes the code.", "simple")])]
    write_dataset(pairs, tmp_path / "coder-pile", num_negatives=2)
    for source in (tmp_path / "coder-pile", tmp_path / "coder-pile" / "triplets.jsonl"):
        samples = sorted(load_samples(source), key=lambda s: s.query)
        assert [(s.task, s.language, s.code_language, s.difficulty) for s in samples] == [
            ("Code Translation Retrieval", "English", "Python", "hard"),
            ("Code Summary Retrieval", "Chinese", "Go", "simple")]
        assert samples[0].instruction.startswith("Given a piece of Python code, retrieve Go code")
        assert samples[0].negatives == ["n0", "m0"]
    assert load_samples(tmp_path / "coder-pile", task="Mine")[0].task == "Mine"  # an explicit task wins
    with pytest.raises(DataError, match="neither a data_gen output"):
        (tmp_path / "empty").mkdir()
        load_samples(tmp_path / "empty")


def test_csn_style_columns_and_datasets_folder(tmp_path):
    Dataset.from_dict({"docstring": ["adds"], "code": ["def add(a, b): return a + b"]}).save_to_disk(str(tmp_path / "ds"))
    samples = load_samples(tmp_path / "ds", task="CSN", code_language="python")
    assert (samples[0].query, samples[0].positive, samples[0].task) == ("adds", "def add(a, b): return a + b", "CSN")
    assert samples[0].code_language == "Python"  # one spelling, whoever names it
    Dataset.from_dict({"comment": ["adds"], "code": ["x"], "language": ["go"]}).save_to_disk(str(tmp_path / "csn"))
    csn = load_samples(tmp_path / "csn", columns={"anchor": "comment", "positive": "code"})
    assert (csn[0].code_language, csn[0].language) == ("Go", None)  # CodeSearchNet's language is the code's
    with pytest.raises(DataError, match="column 'summary'"):
        load_samples(tmp_path / "ds", columns={"anchor": "summary"})


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"query": "a", "positive": "b"}\n{not json}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not valid JSON"):
        load_samples(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="no usable"):
        load_samples(empty)


def _beir(tmp_path, qrels: str):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "def f(): pass"}\n'
                                         '{"_id": "d2", "text": "def g(): return 1"}\n')
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "a function doing nothing"}\n')
    (folder / "qrels" / "test.tsv").write_text(qrels)
    return folder


def test_beir_folder(tmp_path):
    folder = _beir(tmp_path, "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
    rs = read_beir(folder)
    assert rs.relevant == {"q1": {"d1"}} and len(rs.corpus) == 2
    samples = load_samples(folder, split="test")
    assert samples[0].positive == "def f(): pass"


@pytest.mark.parametrize(("qrels", "message"), [
    ("query-id\tcorpus-id\tscore\nq1\td1\n", "expected 'query-id"),
    ("q1\td1\tyes\n", "is not a number"),
    ("q1\td9\t1\n", "not in the folder"),
])
def test_corrupt_qrels_give_clear_errors(tmp_path, qrels, message):
    with pytest.raises(DataError, match=message):
        read_beir(_beir(tmp_path, qrels))


def test_code_context_split_is_within_40_to_70_percent():
    import random

    code = "\n".join(f"line_{i} = {i}" for i in range(20))
    head, tail = split_code_context(code, random.Random(0))
    assert 8 <= len(head.splitlines()) <= 14 and head + "\n" + tail == code


def test_offline_builder_is_deterministic_deduplicated_and_split_by_module(tmp_path):
    import sysconfig
    from pathlib import Path

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dirs = [stdlib / "json", stdlib / "email", stdlib / "logging"]
    first = build_offline_data(dirs, seed=1, heldout_percent=30, include_package_docs=False)
    second = build_offline_data(dirs, seed=1, heldout_percent=30, include_package_docs=False)
    assert first.train == second.train
    assert first.train[TEXT2CODE] and first.train[CODE_CONTEXT]
    codes = [code for _, code in first.train[TEXT2CODE]]
    assert len(codes) == len(set(codes))
    heldout_codes = set(first.heldout["stdlib-doc2code"].corpus.values())
    assert heldout_codes and not heldout_codes & set(codes)  # no held-out function is trained on


def test_humaneval_set():
    rs = humaneval_retrieval()
    assert len(rs.queries) >= 160
    query, doc = rs.queries["q0"], rs.corpus["d0"]
    assert ">>>" not in query and "def has_close_elements" in doc and '"""' not in doc


def test_a_beir_shaped_hub_dataset_is_joined_into_pairs(tmp_path, monkeypatch):
    """``hf://datasets/CoIR-Retrieval/<set>`` holds corpus, queries and qrels subsets. The hub cannot be
    reached here, so (only) datasets' hub functions are replaced by local tables of that layout."""
    import datasets

    corpus = Dataset.from_dict({"_id": ["d1", "d2"], "title": ["", ""], "text": ["def f(): pass", "def g(): return 1"]})
    queries = Dataset.from_dict({"_id": ["q1", "q2"], "text": ["do nothing", "return one"]})
    qrels = Dataset.from_dict({"query-id": ["q1", "q2", "q2"], "corpus-id": ["d1", "d2", "d1"], "score": [1, 1, 0]})

    def load_dataset(name, config=None, split=None):
        assert name == "CoIR-Retrieval/cosqa"
        tables = {"corpus": datasets.DatasetDict({"corpus": corpus}),
                  "queries": datasets.DatasetDict({"queries": queries})}
        return qrels if config == "default" and split == "train" else tables[config]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(datasets, "get_dataset_config_names", lambda name: ["corpus", "default", "queries"])
    samples = load_samples("hf://datasets/CoIR-Retrieval/cosqa", task="CosQA")
    assert [(s.query, s.positive, s.task) for s in samples] == [("do nothing", "def f(): pass", "CosQA"),
                                                              ("return one", "def g(): return 1", "CosQA")]


def test_other_languages_come_from_installed_packages_split_by_file(tmp_path):
    """The default's multi-language data: documented C/C++ (or whatever installed packages ship) beside the
    Python pairs, each language its own rows, and held-out ``packages-*`` sets whose queries never train."""
    from st_code.data.offline_pairs import PACKAGE_SET_NAMES

    from st_code.data.python_functions import stdlib_dir

    stdlib_part = [stdlib_dir() / "json"]
    data = build_offline_data(stdlib_part, heldout_percent=30, include_package_docs=False, other_languages=True,
                              max_pairs_per_task=200)
    languages = {lang for rows in data.other_languages.values() for _, _, lang in rows}
    assert languages and "Python" not in languages
    assert set(data.other_languages) >= {TEXT2CODE, CODE_CONTEXT}
    for task, rows in data.other_languages.items():
        for language in languages:
            assert sum(1 for row in rows if row[2] == language) <= 200
    assert set(PACKAGE_SET_NAMES) & set(data.heldout)
    trained = {q for rows in data.other_languages.values() for q, _, _ in rows}
    held = data.heldout["packages-doc2code"]
    assert not trained & set(held.queries.values())


def test_package_docs_leave_out_st_codes_own_readme():
    """The text task's README sections come from the installed packages but st-code itself: its METADATA is
    this README as of the install, so the default's data (and its figures) would drift with every doc edit."""
    from st_code.data.offline_pairs import TEXT_ONLY, _metadata_files, _package_roots, _readme_sections
    from st_code.data.python_functions import stdlib_dir

    files = _metadata_files()
    assert files and not [f for f in files if f.parent.name.startswith("st_code-")]
    # st-code is installed (setup.sh: pip install -e .), so its README would be found without the rule
    [installed] = [p for root in _package_roots() for p in root.glob("st_code-*.dist-info/METADATA")]
    own = set(_readme_sections(installed.read_text(encoding="utf-8")))
    assert own
    data = build_offline_data([stdlib_dir() / "json"], heldout_percent=30)
    sections = set(data.train[TEXT_ONLY])
    assert len(sections) > 20 and not own & sections
