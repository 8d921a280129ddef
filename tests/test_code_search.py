"""st-code index / search / update on repositories written here, with the packaged MiniLM and real faiss."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from st_code.data.code_units import split_units
from st_code.errors import MissingPathError, UsageError
from st_code.search import CodeSearcher, build_index, read_manifest, update_index
from tests.test_code_units import SOURCES

STDLIB = Path(json.__file__).resolve().parents[1]


def write_repo(root: Path, sources: dict[str, str] = SOURCES) -> Path:
    for path, text in sources.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


@pytest.fixture(scope="module")
def minilm(minilm_path):
    from st_code.search.index import load_search_model

    return load_search_model(minilm_path)


@pytest.fixture
def repo(tmp_path):
    return write_repo(tmp_path / "repo")


def _stored(index: Path) -> dict[str, np.ndarray]:
    vectors = np.load(index / "vectors.npy")
    rows = [json.loads(line) for line in (index / "units.jsonl").read_text().splitlines()]
    return {row["hash"]: vectors[i] for i, row in enumerate(rows)}


def test_a_docstring_query_finds_its_function_first(repo, tmp_path, minilm):
    report = build_index(repo, tmp_path / "index", _loaded=minilm, log=lambda _: None, progress=False)
    assert report.units == report.embedded and report.walk["languages"]["Verilog"] == 1
    searcher = CodeSearcher(tmp_path / "index", model=minilm[0])
    queries = {"Parse a config file.": ("web/config.js", "parseConfig"),
               "Compute the square.": ("csrc/square.c", "square"),
               "Half adder.": ("rtl/adder.v", "half_adder"),
               "Sum adds numbers.": ("cmd/sum.go", "Sum")}
    for query, hits in zip(queries, searcher.search(list(queries), k=3)):
        path, name = queries[query]  # a function or the pack of small siblings it is in (sibling_packs)
        assert hits[0].path == path and name in hits[0].symbol.split(", "), (query, hits)
        assert hits[0].score >= hits[1].score
    first = searcher.search(["Increment it."], k=1)[0][0]
    assert (first.path, first.start_line, first.end_line) == ("src/Counter.java", 7, 10)


def test_update_re_embeds_only_what_changed_and_drops_deleted_files(repo, tmp_path, minilm):
    index = tmp_path / "index"
    build_index(repo, index, _loaded=minilm, log=lambda _: None, progress=False)
    before = _stored(index)
    (repo / "csrc" / "square.c").write_text(SOURCES["csrc/square.c"].replace("x * x", "x * x * 1"))  # edit
    (repo / "cmd" / "sum.go").unlink()  # delete
    (repo / "lib").mkdir()
    (repo / "lib" / "new.py").write_text('def brand_new():\n    """Say hello to the world."""\n    return "hi"\n')
    report = update_index(index, log=lambda _: None, progress=False)

    expected_new = {u.hash for u in split_units((repo / "csrc" / "square.c").read_text(), "C", "csrc/square.c")} | \
                   {u.hash for u in split_units((repo / "lib" / "new.py").read_text(), "Python", "lib/new.py")}
    expected_new -= set(before)
    assert report.embedded == len(expected_new) == 2  # the edited function and the new one, nothing else
    assert (report.files_added, report.files_changed, report.files_deleted) == (1, 1, 1)
    after = _stored(index)
    assert report.reused == len(after) - 2 and report.removed == 3  # square's old version, Sum, Point.Norm
    for unit_hash in set(after) & set(before):
        np.testing.assert_array_equal(after[unit_hash], before[unit_hash])  # kept, not re-embedded
    assert "cmd/sum.go" not in read_manifest(index)["files"]
    hits = CodeSearcher(index, model=minilm[0]).search(["Say hello to the world."], k=5)[0]
    assert hits[0].symbol == "brand_new" and not any(h.path == "cmd/sum.go" for h in hits)
    # back to the old content, as a branch switch back would: every unit was embedded before
    (repo / "csrc" / "square.c").write_text(SOURCES["csrc/square.c"])
    (repo / "cmd" / "sum.go").write_text(SOURCES["cmd/sum.go"])
    report = update_index(index, log=lambda _: None, progress=False)
    assert report.embedded == 0 and report.reused == len(before) + 1  # and brand_new
    for unit_hash, vector in before.items():
        np.testing.assert_array_equal(_stored(index)[unit_hash], vector)


def test_another_model_or_changed_weights_refuse_to_update(repo, tmp_path, minilm, minilm_path):
    import st_code

    index = tmp_path / "index"
    build_index(repo, index, _loaded=minilm, log=lambda _: None, progress=False)
    other = tmp_path / "other"
    st_code.build_model(minilm_path, pooling="cls", device="cpu").save(str(other))
    with pytest.raises(UsageError, match=r"was built with .*rebuild it with st-code index"):
        update_index(index, model=str(other), log=lambda _: None, progress=False)
    smaller = st_code.build_model(minilm_path, pooling="pma", embedding_dim=64, device="cpu")
    with pytest.raises(UsageError, match="64-dimensional vectors, the index .* holds 384"):
        CodeSearcher(index, model=smaller)


def test_quantized_indexes_keep_recall_of_the_float_one(tmp_path, minilm):
    """int8 and binary indexes of real code, rescored with float vectors: recall@10 against float search."""
    repo = STDLIB / "json"
    results = {}
    for precision in ("float32", "int8", "binary"):
        build_index(repo, tmp_path / precision, precision=precision, _loaded=minilm, log=lambda _: None,
                    progress=False)
    float_searcher = CodeSearcher(tmp_path / "float32", model=minilm[0])
    queries = [json.loads(line)["text"][:200] for line in (tmp_path / "float32" / "units.jsonl").read_text().splitlines()]
    embedded = float_searcher.embed_queries(queries)
    reference, _ = float_searcher.nearest(embedded, 10)
    for precision in ("int8", "binary"):
        rows, _ = CodeSearcher(tmp_path / precision, model=minilm[0]).nearest(embedded, 10)
        results[precision] = np.mean([len(set(a) & set(b)) / len(set(a)) for a, b in zip(reference, rows)])
    assert results["int8"] >= 0.95 and results["binary"] >= 0.8, results
    assert (tmp_path / "binary" / "index.binary.faiss").stat().st_size * 16 < \
        (tmp_path / "float32" / "index.faiss").stat().st_size  # 32x smaller to search


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_approximate_index_types_find_the_exact_neighbour(repo, tmp_path, minilm, index_type):
    build_index(STDLIB / "json", tmp_path / "index", index_type=index_type, _loaded=minilm, log=lambda _: None,
                progress=False)
    assert read_manifest(tmp_path / "index")["index_type"] == index_type
    hit = CodeSearcher(tmp_path / "index", model=minilm[0]).search(["Deserialize fp to a Python object"], k=1)[0][0]
    assert hit.symbol == "load"


def test_clear_errors(tmp_path, minilm):
    with pytest.raises(MissingPathError, match="no index at .* build one with st-code index"):
        CodeSearcher(tmp_path / "nowhere", model=minilm[0])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("# nothing to see\n")
    with pytest.raises(UsageError, match=r"no code found .*not_code 1"):
        build_index(tmp_path / "empty", tmp_path / "index", _loaded=minilm, log=lambda _: None, progress=False)
    with pytest.raises(MissingPathError, match="does not exist"):
        build_index(tmp_path / "missing", tmp_path / "index", _loaded=minilm, log=lambda _: None)
    repo = write_repo(tmp_path / "repo", {"a.py": "def f():\n    return 1\n"})
    (repo / "gone.py").symlink_to(repo / "missing-target.py")  # unreadable: skipped and counted, never fatal
    report = build_index(repo, tmp_path / "index", _loaded=minilm, log=lambda _: None, progress=False)
    assert report.walk["skipped"] == {"unreadable": 1} and report.units == 1
    with pytest.raises(UsageError, match="unknown task 'Nope'"):
        CodeSearcher(tmp_path / "index", model=minilm[0], task="Nope")


@pytest.mark.slow
def test_the_command_line_from_index_to_json_lines(repo, tmp_path, minilm_path, capsys):
    env_run = [sys.executable, "-m", "st_code"]
    index = tmp_path / "cli.index"
    done = subprocess.run([*env_run, "index", str(repo), "--out", str(index), "--model", minilm_path],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "skipped:" in done.stderr and "embedded" in done.stderr
    (tmp_path / "queries.txt").write_text("Parse a config file.\n\nHalf adder.\n")
    done = subprocess.run([*env_run, "search", str(index), "--queries", str(tmp_path / "queries.txt"), "-k", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["query"] for a in answers] == ["Parse a config file.", "Half adder."]
    assert "parseConfig" in answers[0]["hits"][0]["symbol"].split(", ") and len(answers[1]["hits"]) == 2
    # the other commands through the same entry point in this process: a new process would only add
    # the ~12 s of importing sentence-transformers again
    from st_code.cli import main

    capsys.readouterr()
    assert main(["search", str(index), "Compute the square.", "-k", "1"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(" 1. csrc/square.c:3  square") and "static int square" in shown
    assert main(["update", str(index)]) == 0
    assert "embedded 0" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "nope"), "x"]) != 0
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: no index at")


def test_a_saved_st_code_model_indexes_and_updates_from_another_folder(repo, tmp_path, tiny_qwen_path, monkeypatch):
    """The seam a user takes: a saved PMA model (custom code in its folder) -> index -> update elsewhere."""
    import st_code

    st_code.build_model(tiny_qwen_path, pooling="pma", embedding_dim=32, device="cpu").save(str(tmp_path / "pma"))
    monkeypatch.chdir(tmp_path)
    build_index(repo, tmp_path / "index", model="pma", log=lambda _: None, progress=False)
    assert read_manifest(tmp_path / "index")["model"] == str(tmp_path / "pma")
    monkeypatch.chdir(repo)
    (repo / "extra.py").write_text("def extra():\n    return 2\n")
    assert update_index(tmp_path / "index", log=lambda _: None, progress=False).embedded == 1
    assert CodeSearcher(tmp_path / "index").search(["extra"], k=1)[0][0].path


def test_a_moved_repository_still_updates_but_another_one_is_refused(repo, tmp_path, minilm):
    """update --path: the same files in a new place (a renamed checkout) keep their vectors; a repository
    sharing under half of the indexed files would replace the index whole, so it is refused untouched."""
    index = tmp_path / "index"
    build_index(repo, index, _loaded=minilm, log=lambda _: None, progress=False)
    moved = tmp_path / "moved"
    repo.rename(moved)
    report = update_index(index, root=moved, log=lambda _: None, progress=False)
    assert report.embedded == 0 and report.reused == report.units
    assert read_manifest(index)["root"] == str(moved.resolve())
    before = (index / "manifest.json").read_bytes()
    other = write_repo(tmp_path / "other", {"x.py": "def other():\n    return 2\n"})
    with pytest.raises(UsageError, match=r"shares 0 of the \d+ files .*another repository"):
        update_index(index, root=other, log=lambda _: None, progress=False)
    assert (index / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index", "moved", "other"]  # no staging left


def test_a_build_that_fails_on_a_full_disk_keeps_the_old_index_whole(repo, tmp_path, minilm):
    """A real full disk (a small tmpfs; root only) during a rebuild: the staging folder is removed and the
    earlier index stays searchable, byte for byte."""
    from tests.faults.cases import CaseSkipped
    from tests.faults.user_cases import small_disk

    try:
        disk_context = small_disk(tmp_path / "disk", "160k")
        disk = disk_context.__enter__()
    except CaseSkipped as exc:
        pytest.skip(str(exc))
    try:
        index = disk / "index"
        build_index(repo, index, _loaded=minilm, log=lambda _: None, progress=False)
        before = {str(p.relative_to(index)): p.read_bytes() for p in index.rglob("*") if p.is_file()}
        for i in range(60):
            (repo / f"more_{i}.py").write_text("".join(f'def f{i}_{j}(x):\n    """Step {j} of {i}."""\n    return x\n\n\n'
                                                       for j in range(5)))
        with pytest.raises(OSError, match="No space left"):
            build_index(repo, index, _loaded=minilm, log=lambda _: None, progress=False)
        assert {str(p.relative_to(index)): p.read_bytes() for p in index.rglob("*") if p.is_file()} == before
        assert sorted(p.name for p in disk.iterdir()) == ["index"]
        assert CodeSearcher(index, model=minilm[0]).search(["Compute the square."], k=1)[0][0].symbol == "square"
    finally:
        disk_context.__exit__(None, None, None)
