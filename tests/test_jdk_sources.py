"""Java from a JDK's own sources: the offline default's training packages, never the held-out ones."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from st_code.data import jdk_sources
from st_code.data.jdk_sources import HELDOUT_PACKAGES, TRAIN_PACKAGES, extract_packages, find_jdk_sources
from st_code.data.offline_pairs import build_offline_data
from st_code.data.python_functions import stdlib_dir
from st_code.data.repo_pairs import CODE2TEXT, CODE_CONTEXT, TEXT2CODE
from st_code.errors import MissingPathError, UsageError
from tests.small_repos import java_class

VERBS = ["copy", "merge", "split", "sort", "count", "flush", "parse", "print", "clear", "shrink", "grow", "scan"]


def _src_zip(path: Path) -> Path:
    """A JDK src.zip in miniature: classes in two training packages, one held-out and one in neither."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("java.base/java/lang/Ledger.java", java_class("Ledger", package="java.lang", verbs=VERBS))
        archive.writestr("java.sql/java/sql/Roster.java", java_class("Roster", package="java.sql", verbs=VERBS[:6]))
        archive.writestr("java.base/java/util/Journal.java", java_class("Journal", package="java.util", verbs=VERBS))
        archive.writestr("jdk.jshell/jdk/jshell/Shell.java", java_class("Shell", package="jdk.jshell", verbs=VERBS))
        archive.writestr("java.base/java/lang/package-info.txt", "not java")
    return path


def test_training_and_heldout_packages_never_overlap():
    """No training package lies inside a held-out one, or holds one: the split is by package."""
    overlap = [(a, b) for a in TRAIN_PACKAGES for b in HELDOUT_PACKAGES if a.startswith(b) or b.startswith(a)]
    assert not overlap
    assert all(p.endswith("/") for p in TRAIN_PACKAGES + HELDOUT_PACKAGES)  # java/net/ is not java/nethttp/


def test_extract_takes_only_the_named_packages(tmp_path):
    source = _src_zip(tmp_path / "src.zip")
    assert extract_packages(source, TRAIN_PACKAGES, tmp_path / "train") == 2
    assert sorted(p.name for p in (tmp_path / "train").rglob("*") if p.is_file()) == ["Ledger.java", "Roster.java"]
    assert extract_packages(source, HELDOUT_PACKAGES, tmp_path / "held") == 1
    with pytest.raises(MissingPathError, match="lib/src.zip"):
        extract_packages(tmp_path / "missing.zip", TRAIN_PACKAGES, tmp_path / "x")
    (tmp_path / "notes.txt").write_text("not a zip")
    with pytest.raises(UsageError, match="notes.txt: not a zip archive"):
        extract_packages(tmp_path / "notes.txt", TRAIN_PACKAGES, tmp_path / "x")


def test_offline_data_adds_java_from_the_training_packages_only(tmp_path):
    """``jdk_sources`` gives Java rows for the three code tasks, capped per task, from the training packages:
    no row comes from the held-out java.util class or from a package in neither list."""
    source = _src_zip(tmp_path / "src.zip")
    data = build_offline_data([stdlib_dir() / "json"], heldout_percent=30, include_package_docs=False,
                              jdk_sources=source, max_pairs_per_task=100)
    java = {task: [row for row in rows if row[2] == "Java"] for task, rows in data.other_languages.items()}
    assert set(java) == {TEXT2CODE, CODE2TEXT, CODE_CONTEXT}
    assert len(java[TEXT2CODE]) == len(VERBS) + 6  # every documented method of Ledger and Roster, once
    queries = {query for query, _, _ in java[TEXT2CODE]}
    assert any("ledger" in q for q in queries) and any("roster" in q for q in queries)
    everything = " ".join(q + p for rows in java.values() for q, p, _ in rows)
    assert "journal" not in everything.lower() and "shell" not in everything.lower()
    assert not [name for name in data.heldout if "java" in name.lower()]  # training only: the benchmark holds out
    capped = build_offline_data([stdlib_dir() / "json"], heldout_percent=30, include_package_docs=False,
                                jdk_sources=source, max_pairs_per_task=5)
    assert [len(capped.other_languages[task]) for task in (TEXT2CODE, CODE2TEXT)] == [5, 5]
    assert len(capped.other_languages[CODE_CONTEXT]) <= 5
    again = build_offline_data([stdlib_dir() / "json"], heldout_percent=30, include_package_docs=False,
                               jdk_sources=source, max_pairs_per_task=5)
    assert again.other_languages == capped.other_languages  # seeded


def test_no_jdk_on_the_machine_is_a_note_not_a_failure(monkeypatch):
    """``jdk_sources: true`` on a machine without a JDK builds the rest and says so in the summary (the
    machine without a JDK is simulated: this one has one)."""
    monkeypatch.setattr(jdk_sources, "find_jdk_sources", lambda: None)
    data = build_offline_data([stdlib_dir() / "json"], heldout_percent=30, include_package_docs=False,
                              jdk_sources=True, max_pairs_per_task=20)
    assert not data.other_languages
    assert "no JDK sources found" in data.summary()


def test_a_src_zip_without_the_training_packages_says_so(tmp_path):
    """A JDK 8 src.zip (java/lang/..., no module folders) holds none of the training packages: a note, no Java."""
    old_layout = tmp_path / "src.zip"
    with zipfile.ZipFile(old_layout, "w") as archive:
        archive.writestr("java/lang/Ledger.java", java_class("Ledger", package="java.lang", verbs=VERBS))
    data = build_offline_data([stdlib_dir() / "json"], heldout_percent=30, include_package_docs=False,
                              jdk_sources=old_layout, max_pairs_per_task=20)
    assert not data.other_languages
    assert "no training packages in" in data.summary() and "module/package" in data.summary()


def test_this_machine_kind_has_jdk_sources_with_both_sides():
    """The offline default's Java needs an installed JDK with its src.zip; this machine kind has one."""
    source = find_jdk_sources()
    if source is None:
        pytest.skip("no JDK with lib/src.zip installed here")
    with zipfile.ZipFile(source) as archive:
        names = [n for n in archive.namelist() if n.endswith(".java")]
    for packages in (TRAIN_PACKAGES, HELDOUT_PACKAGES):
        assert all(any(n.startswith(p) for n in names) for p in packages), packages


def test_the_run_fingerprint_follows_the_jdk_sources(tmp_path):
    """A run or data cache built with one JDK's sources is not reused for another's, or for none."""
    from st_code.training import config_from_dict
    from st_code.training.run_state import data_fingerprints

    def fingerprint(jdk):
        offline = {"code_dirs": [str(stdlib_dir() / "json")], "include_package_docs": False, "jdk_sources": jdk}
        return data_fingerprints(config_from_dict({"data": {"offline": offline},
                                                   "stages": [{"name": "s", "datasets": ["offline:Text Retrieval"]}]}))
    source = _src_zip(tmp_path / "src.zip")
    first = fingerprint(str(source))
    assert first == fingerprint(str(source)) and first != fingerprint(False)
    with zipfile.ZipFile(source, "a") as archive:
        archive.writestr("java.base/java/lang/Extra.java", java_class("Extra", package="java.lang", verbs=VERBS[:2]))
    assert fingerprint(str(source)) != first


def test_a_config_with_only_jdk_sources_trains_on_java(tmp_path):
    """The seam to training: a config asking for the JDK's Java (and no other languages) gets Java samples,
    each row labelled with its language so batches stay one language each."""
    from st_code.training import config_from_dict
    from st_code.training.sources import read_sources

    source = _src_zip(tmp_path / "src.zip")
    offline = {"code_dirs": [str(stdlib_dir() / "json")], "include_package_docs": False, "jdk_sources": str(source),
               "max_pairs_per_task": 50}
    config = config_from_dict({"data": {"offline": offline}, "evaluation": {"sets": []},
                               "stages": [{"name": "s", "datasets": [f"offline:{TEXT2CODE}"]}]})
    logged: list[str] = []
    sources, _ = read_sources(config, logged.append)
    java = [s for s in sources[f"offline:{TEXT2CODE}"] if s.code_language == "Java"]
    assert len(java) == len(VERBS) + 6 and all(s.task == TEXT2CODE for s in java)
    assert {s.group for s in java}.isdisjoint({s.group for s in sources[f"offline:{TEXT2CODE}"] if s.code_language == "Python"})
    assert "other languages" in " ".join(logged)
