"""File outlines (a file's path and the names it defines, one vector per file) in a real index with the
packaged MiniLM: built, reused by updates, blended into hybrid search, and absent from older indexes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from st_code.errors import UsageError
from st_code.search import CodeSearcher, build_index, update_index
from st_code.search.file_outlines import NAMES_CHARS, FileOutlines, outline_text, outlines
from st_code.search.ranking import RankingWeights, rank
from tests.test_code_search import write_repo


def _quiet(**kwargs) -> dict:
    return {"log": lambda _: None, "progress": False, **kwargs}


def test_an_outline_is_the_path_then_each_name_once_in_order():
    rows = [{"path": "a.py", "symbol": "Box"}, {"path": "a.py", "symbol": "Box.get"}, {"path": "a.py", "symbol": ""},
            {"path": "a.py", "symbol": "Box"}, {"path": "b/c.go", "symbol": "Sum"}]
    assert list(outlines(rows)) == [("a.py", "a.py\nBox, Box.get"), ("b/c.go", "b/c.go\nSum")]
    long = outline_text("big.py", [f"name{i}" for i in range(500)])
    assert len(long.split("\n", 1)[1]) == NAMES_CHARS
    with pytest.raises(ValueError, match="not together"):
        list(outlines(rows + [{"path": "a.py", "symbol": "late"}]))


def test_an_index_embeds_one_outline_per_file_and_an_update_only_the_changed_ones(tmp_path, search_minilm):
    repo = write_repo(tmp_path / "repo")
    index = tmp_path / "index"
    report = build_index(repo, index, _loaded=search_minilm, **_quiet())
    stored = FileOutlines.open(index)
    manifest = json.loads((index / "manifest.json").read_text())
    assert sorted(stored.paths) == sorted(manifest["files"]) and manifest["file_outlines"] == len(stored.paths)
    assert report.outlines_embedded == len(stored.paths)
    rows = [json.loads(line) for line in (index / "units.jsonl").read_text().splitlines()]
    row = stored.row["pkg/util.py"]
    expected = search_minilm[0].encode(dict(outlines(rows))["pkg/util.py"], normalize_embeddings=True)
    assert np.allclose(stored.vectors[row], expected, atol=1e-5)

    source = (repo / "pkg/util.py").read_text()
    (repo / "pkg/util.py").write_text(source.replace("return a + b", "return b + a"))  # same names: same outline
    assert update_index(index, **_quiet()).outlines_embedded == 0
    (repo / "pkg/util.py").write_text(source + "\n\ndef scale(x):\n    return 2 * x\n")  # a new name
    assert update_index(index, **_quiet()).outlines_embedded == 1
    after = FileOutlines.open(index)
    assert "scale" in dict(outlines(json.loads(line) for line in (index / "units.jsonl").read_text().splitlines())
                           )["pkg/util.py"]
    assert np.allclose(after.vectors[after.row["web/config.js"]], stored.vectors[stored.row["web/config.js"]])
    (repo / "pkg/util.py").write_text(source)  # a branch switch back: the old outline is in the cache
    assert update_index(index, **_quiet()).outlines_embedded == 0
    back = FileOutlines.open(index)
    assert np.allclose(back.vectors[back.row["pkg/util.py"]], stored.vectors[stored.row["pkg/util.py"]])


def test_hybrid_search_blends_the_outline_cosine_into_its_candidates(tmp_path, search_minilm):
    index = tmp_path / "index"
    build_index(write_repo(tmp_path / "repo"), index, _loaded=search_minilm, **_quiet())
    searcher = CodeSearcher(index, model=search_minilm[0])
    query = "stack push"
    embedding = searcher.embed_queries([query])[0]
    units = searcher.units(range(len(searcher.offsets)))
    dense = np.asarray(searcher.vectors) @ embedding
    files = searcher.outlines.cosines([unit["path"] for unit in units], embedding, dense)
    assert not np.allclose(files, dense)
    lexical = searcher.lexical.scores(query)
    with_files = rank(query, units, dense, lexical, RankingWeights(), files)
    blended = rank(query, units, 0.8 * dense + 0.2 * files, lexical, RankingWeights(file_outline=0.0))
    assert [i for i, _ in with_files] == [i for i, _ in blended]  # the outline's share is the weight's
    assert np.allclose([score for _, score in with_files], [score for _, score in blended])
    assert rank(query, units, dense, lexical, RankingWeights(file_outline=0.0), files) == rank(
        query, units, dense, lexical, RankingWeights(file_outline=0.0))
    ranked = searcher._ranked(query, embedding, 10, per_file=False)  # every unit is a candidate here
    assert len(ranked) == len(units)
    assert np.allclose([score for _, score, _ in ranked], [score for _, score in with_files])
    hits = searcher.search([query], k=3)[0]
    assert hits[0].path == "web/stack.ts"
    assert hits[0].similarity == pytest.approx(float(dense[[u["path"] == hits[0].path and u["symbol"] == hits[0].symbol
                                                            for u in units].index(True)]), abs=1e-5)


def _strip_outlines(index: Path) -> None:
    manifest = json.loads((index / "manifest.json").read_text())
    del manifest["file_outlines"]
    (index / "manifest.json").write_text(json.dumps(manifest))
    for name in ("file_outlines.json", "file_outlines.npy"):
        (index / name).unlink()


def test_an_index_built_before_outlines_searches_without_them_and_an_update_adds_them(tmp_path, search_minilm,
                                                                                      capsys):
    repo = write_repo(tmp_path / "repo")
    index = tmp_path / "index"
    build_index(repo, index, _loaded=search_minilm, **_quiet())
    before = CodeSearcher(index, model=search_minilm[0]).search(["Parse a config file."], k=3)[0]
    _strip_outlines(index)
    old = CodeSearcher(index, model=search_minilm[0])
    assert old.outlines is None
    assert old.search(["Parse a config file."], k=3)[0][0].symbol == before[0].symbol == "parseConfig, add"
    from st_code.cli import main

    assert main(["search", str(index), "Parse a config file.", "-k", "1"]) == 0
    assert f"st-code update {index} adds them" in capsys.readouterr().err
    report = update_index(index, **_quiet())
    assert report.embedded == 0 and report.outlines_embedded == len(json.loads(
        (index / "manifest.json").read_text())["files"])
    assert CodeSearcher(index, model=search_minilm[0]).outlines is not None
    assert main(["search", str(index), "Parse a config file.", "-k", "1"]) == 0
    assert "file outlines" not in capsys.readouterr().err


def test_a_missing_or_garbled_outline_file_is_a_damaged_index_with_its_rebuild_command(tmp_path, search_minilm):
    repo = write_repo(tmp_path / "repo")
    index = tmp_path / "index"
    build_index(repo, index, _loaded=search_minilm, **_quiet())
    (index / "file_outlines.json").write_text('{"paths": ["a.py"], "hashes": []}')
    with pytest.raises(UsageError, match=r"damaged \(its file outlines.*st-code index .*repo --out"):
        CodeSearcher(index, model=search_minilm[0])
    (index / "file_outlines.npy").unlink()
    with pytest.raises(UsageError, match=r"damaged \(its file outlines cannot be read"):
        CodeSearcher(index, model=search_minilm[0])
    assert update_index(index, **_quiet()).outlines_embedded > 0  # an update writes them anew
    assert CodeSearcher(index, model=search_minilm[0]).outlines is not None
