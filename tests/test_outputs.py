"""st_code.outputs: an output folder is checked before any work, built beside its destination, and
swapped in only when whole; a user's files are never taken."""

from __future__ import annotations

import os

import pytest

from st_code.errors import UsageError
from st_code.outputs import check_output_folder, remove_owned, staged_files, staged_folder


def _owned(folder):
    return (folder / "manifest.json").is_file()


def test_check_output_folder_refuses_what_is_not_the_commands(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("x = 1\n")
    check = dict(flag="--out", what="thing", owned=_owned, inputs=[repo])
    assert check_output_folder(tmp_path / "new", **check) == tmp_path / "new"  # new: fine, not created
    assert not (tmp_path / "new").exists()
    assert check_output_folder(repo / ".index", **check)  # inside the input: fine
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty", **check)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "manifest.json").write_text("{}")
    check_output_folder(tmp_path / "mine", **check)  # its own earlier output
    with pytest.raises(UsageError, match="is the input"):
        check_output_folder(repo, **check)
    with pytest.raises(UsageError, match="contains the input"):
        check_output_folder(tmp_path, **check)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("mine")
    with pytest.raises(UsageError, match=r"holds files that are not an st-code thing \(notes\.md\)"):
        check_output_folder(tmp_path / "docs", **check)
    check_output_folder(tmp_path / "docs", **{**check, "owned": lambda _: False}, ignore=("notes.md",))
    with pytest.raises(UsageError, match="is a file"):
        check_output_folder(repo / "a.py", **check)
    with pytest.raises(UsageError, match="lies under .*a.py, which is a file"):
        check_output_folder(repo / "a.py" / "sub", **check)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UsageError, match="is a file"):  # anything that is not a folder
        check_output_folder(tmp_path / "pipe", **check)


def test_staged_folder_swaps_in_whole_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    with staged_folder(out) as staging:
        (staging / "v1").write_text("first")
    assert sorted(p.name for p in out.iterdir()) == ["v1"]
    with pytest.raises(RuntimeError):
        with staged_folder(out) as staging:
            (staging / "v2").write_text("half")
            raise RuntimeError("disk full, say")
    assert sorted(p.name for p in out.iterdir()) == ["v1"] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with staged_folder(out) as staging:
        (staging / "v2").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == ["v2"] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staged_files_replace_their_namesakes_and_nothing_else(tmp_path):
    (tmp_path / "model.safetensors").write_text("weights")
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_text("old graph")
    with pytest.raises(OSError):
        with staged_files(tmp_path) as staging:
            (staging / "onnx").mkdir()
            (staging / "onnx" / "model.onnx").write_text("trunc")
            raise OSError(28, "No space left on device")
    assert (tmp_path / "onnx" / "model.onnx").read_text() == "old graph"
    with staged_files(tmp_path) as staging:
        (staging / "onnx").mkdir()
        (staging / "onnx" / "model.onnx").write_text("new graph")
    assert (tmp_path / "onnx" / "model.onnx").read_text() == "new graph"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "onnx"]


def test_remove_owned_leaves_everything_else(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "ckpt").write_text("x")
    (tmp_path / "plan.json").write_text("{}")
    (tmp_path / "notes.md").write_text("mine")
    assert remove_owned(tmp_path, ["run", "plan.json", "model"]) == ["run", "plan.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.md"]


def test_a_one_step_run_trains_at_a_nonzero_learning_rate():
    """Warmup starts at 0: a run no longer than its warmup (adapt --max-steps 1) would train nothing."""
    from st_code.training.stage_trainer import stage_schedule, warmup_steps_of

    assert stage_schedule(1e-3, 0.0, None, 0.1, 1).learning_rate(0) == pytest.approx(1e-3)
    assert warmup_steps_of(5, 0.1, 3) == 2 and stage_schedule(1e-3, 0.0, 5, 0.1, 3).learning_rate(2) > 0
    assert warmup_steps_of(None, 0.1, 100) == 10  # longer runs keep their warmup as configured
