"""Rows on disk: a source's rows in a memory-mapped Arrow file, stages as positions in it, and
training datasets cut from it without copying, all giving what the in-memory path gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from st_code.data.records import Sample
from st_code.training.config import StageConfig
from st_code.training.filters import blockwise_topk, difficulty_filter, embedder_topk_filter
from st_code.training.sample_table import LocatedSample, SampleTable, write_table
from st_code.training.stage_datasets import build_stage_datasets
from st_code.training.stage_rows import StageView, stage_rows


def _samples(n: int, name: str, task: str = "T") -> list[Sample]:
    return [Sample(f"{name} query {i}", f"def {name}_{i}(): return {i}", [f"{name} neg {i}.{j}" for j in range(i % 4)],
                   task, "English", ["Python", "Go"][i % 2], difficulty=["simple", "hard", None][i % 3],
                   difficulty_model="openai/judge" if i % 3 < 2 else None) for i in range(n)]


@pytest.fixture
def tables(tmp_path) -> dict[str, SampleTable]:
    result = {}
    for name, n in (("a", 50), ("b", 30)):
        write_table(_samples(n, name), tmp_path / f"{name}.arrow", num_negatives=3)
        result[name] = SampleTable(tmp_path / f"{name}.arrow")
    return result


def test_a_table_gives_back_its_rows_and_where_they_live(tables):
    table = tables["a"]
    original = _samples(50, "a")
    assert len(table) == 50 and table.max_negatives == 3
    for got, want in zip(table, original):
        assert isinstance(got, LocatedSample) and got.table is table
        assert (got.query, got.positive, got.negatives, got.group, got.difficulty, got.difficulty_model) == \
            (want.query, want.positive, want.negatives, want.group, want.difficulty, want.difficulty_model)
    assert table[7].row == 7 and table[-1].query == "a query 49" and [s.row for s in table[2:4]] == [2, 3]
    assert table.column("code_language")[:3] == ["Python", "Go", "Python"]


def test_training_datasets_cut_from_disk_equal_the_in_memory_ones(tables):
    """One stage over two tables: the same datasets, rows and repeats as from the same samples in lists,
    and each a view of the Arrow files (memory-mapped), not a copy in memory."""
    stage = StageConfig(name="s", datasets=["a", "b"], mix={"a": 1, "b": 1}, num_negatives=2, batch_size=4)
    lists = {name: list(table) for name, table in tables.items()}
    on_disk, in_memory = stage_rows(stage, tables, seed=0), stage_rows(stage, lists, seed=0)
    assert isinstance(on_disk.samples, StageView) and on_disk.repeats == in_memory.repeats
    disk = build_stage_datasets(on_disk.samples, 2, repeat_of=on_disk.repeat_of)
    memory = build_stage_datasets([Sample(**{f: getattr(s, f) for f in Sample.__dataclass_fields__})
                                   for s in in_memory.samples], 2, repeat_of=lambda s: 1.0)
    assert sorted(disk.datasets) == sorted(memory.datasets) == ["T | Go | English", "T | Python | English"]
    for key, dataset in disk.datasets.items():
        assert dataset.cache_files and all(f["filename"].endswith(".arrow") for f in dataset.cache_files)
        assert dataset.column_names == ["anchor", "positive", "negative_1", "negative_2"]
        assert sorted(map(json.dumps, dataset.to_list())) == sorted(map(json.dumps, memory.datasets[key].to_list()))
    # rows with 2 negatives: 24 of a's 50, 14 of b's 30; b is read 50/30 times per epoch to match a
    assert sum(len(d) for d in disk.datasets.values()) == 38
    assert sum(disk.rows_per_epoch.values()) == pytest.approx(24 + 14 * 50 / 30)


def test_filters_keep_a_stage_on_disk_and_agree_with_lists(tables, tiny_qwen_path):
    import st_code

    stage = StageConfig(name="s", datasets=["a", "b"], num_negatives=0, batch_size=4)
    view = stage_rows(stage, tables, seed=0).samples
    rows = list(view)
    kept_view, report_view = difficulty_filter(view, ("hard",), unlabeled="keep")
    kept_list, report_list = difficulty_filter(rows, ("hard",), unlabeled="keep")
    assert isinstance(kept_view, StageView) and report_view.detail == report_list.detail
    assert [s.query for s in kept_view] == [s.query for s in kept_list]
    model = st_code.build_model(tiny_qwen_path, pooling="mean", device="cpu", max_seq_length=24)
    kept_view, _ = embedder_topk_filter(view, model, k=2, chunk=16)
    kept_list, _ = embedder_topk_filter(rows, model, k=2, chunk=16)
    assert isinstance(kept_view, StageView) and [s.query for s in kept_view] == [s.query for s in kept_list]


def test_the_gpu_search_path_finds_the_same_top_k_as_faiss():
    """On a GPU the filter searches with blocks of matrix products; a GPU cannot exist here, so the
    same torch code runs on CPU tensors against faiss' exact index."""
    import faiss

    generator = torch.Generator().manual_seed(0)
    docs = torch.nn.functional.normalize(torch.randn(500, 16, generator=generator), dim=1)
    queries = torch.nn.functional.normalize(torch.randn(120, 16, generator=generator), dim=1)
    index = faiss.IndexFlatIP(16)
    index.add(docs.numpy())
    want_scores, want_rows = index.search(queries.numpy(), 5)
    scores, rows = blockwise_topk(queries, docs, 5, block_scores=500 * 7)  # blocks of 7 queries
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_a_source_streams_to_its_table(tmp_path):
    """prepare_data writes each source as it reads it; the table holds what load_samples reads."""
    from accelerate import PartialState

    from st_code.data.readers import load_samples
    from st_code.training import config_from_dict
    from st_code.training.data_cache import prepare_data

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"query": f"q{i}", "positive": f"p{i}", "negative_1": f"n{i}",
                                        "negative_2": f"m{i}", "task": "T", "code_language": "go"}) + "\n"
                            for i in range(3000)))
    config = config_from_dict({"data": {"offline": None, "sources": {"rows": {"path": str(path)}}},
                               "stages": [{"name": "s", "datasets": ["rows"], "num_negatives": 2}],
                               "evaluation": {"sets": []}})
    logs: list[str] = []
    sources, _ = prepare_data(tmp_path / "data", config, "fp", PartialState(cpu=True), lambda: None, logs.append)
    table = sources["rows"]
    assert isinstance(table, SampleTable) and table.path == tmp_path / "data" / "source-000.arrow"
    assert [(s.query, s.negatives, s.code_language) for s in table] == \
        [(s.query, s.negatives, s.code_language) for s in load_samples(path)]
    assert any("source rows: 3000 samples" in line and "Go 3000" in logs[logs.index(line) + 1] for line in logs)
