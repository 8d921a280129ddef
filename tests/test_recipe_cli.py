"""recipes/annealing.py as a user runs it: --help, bad configs, and (slow) real end-to-end runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_curriculum import tiny_config

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "annealing.py"


def _run(*args: str, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RECIPE), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, **(env or {})})


def test_help_teaches():
    result = _run("--help")
    assert result.returncode == 0
    for words in ("--config", "--output-dir", "resumes", "text-only", "accelerate launch"):
        assert words in result.stdout


def test_st_code_train_is_the_recipe_for_an_installed_user(tmp_path):
    """``st-code train`` (no recipes/ folder needed) takes the same flags, finds the shipped configs by name,
    and prints the same default config as ``python recipes/annealing.py``."""
    train = subprocess.run([sys.executable, "-m", "st_code", "train", "--help"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=600)
    assert train.returncode == 0 and "usage: st-code train" in train.stdout and "--dry-run" in train.stdout
    listed = subprocess.run([sys.executable, "-m", "st_code", "--help"], capture_output=True, text=True, cwd=tmp_path,
                            timeout=600)
    assert "train" in listed.stdout
    printed = subprocess.run([sys.executable, "-m", "st_code", "train", "--print-config"], capture_output=True,
                             text=True, cwd=tmp_path, timeout=600)
    assert printed.returncode == 0 and printed.stdout == _run("--print-config").stdout
    by_name = subprocess.run([sys.executable, "-m", "st_code", "train", "--config", "c2llm-0.5b", "--print-config"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert by_name.returncode == 0 and "pooling: pma" in by_name.stdout


def test_bad_config_fails_before_training_naming_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"stages": [{"name": "s", "datasets": ["offline:Text Retrieval"],
                                                  "learning_rat": 1e-4}]}))
    result = _run("--config", str(config), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "stages[0].learning_rat: unknown key" in result.stderr
    assert not (tmp_path / "out").exists()


def test_print_config_round_trips(tmp_path):
    result = _run("--print-config")
    assert result.returncode == 0
    printed = tmp_path / "default.yaml"
    printed.write_text(result.stdout)
    from st_code.training import load_config

    config = load_config(printed)
    assert [s.name for s in config.stages] == ["text+code"]


@pytest.mark.slow
def test_two_process_ddp_run_on_cpu(tiny_qwen_path, tmp_path):
    """The multi-GPU code path (torchrun, DDP, gather_across_devices) with 2 CPU processes over gloo.

    Launched as a user would on a CPU-only machine: plain ``torchrun``, no ACCELERATE_USE_CPU; the
    recipe must see two ranks from the start, so the data is built by rank 0 alone (two ranks
    building it raced on the same files and failed CI once).
    """
    config = tiny_config(tiny_qwen_path, tmp_path / "ddp")
    for stage in config["stages"]:
        stage["max_steps"] = 2
    config["evaluation"] = {"sets": ["stdlib-doc2code"], "max_queries": 5, "batch_size": 16}  # rank 0's, not DDP's
    config_file = tmp_path / "ddp.yaml"
    config_file.write_text(yaml.safe_dump(config))
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    result = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_port", "29533", str(RECIPE), "--config", str(config_file)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k != "ACCELERATE_USE_CPU"}, "OMP_NUM_THREADS": "1"},
    )
    # on failure, each rank's own traceback (the launcher's tail only shows the rank that lost its peer), and
    # what the ranks printed last before the launcher's report (a C++ abort has no Python traceback)
    ranks = [line for line in result.stderr.splitlines() if line.startswith("[rank")][-80:]
    before_launcher = result.stderr.split("Traceback (most recent call last):")[0][-3000:]
    assert result.returncode == 0, "\n".join(ranks) + "\n...\n" + before_launcher + "\n...\n" + result.stderr[-2000:]
    assert result.stdout.count("building the offline data") == 1, result.stdout[-3000:]
    assert result.stdout.count("stage 1 'text':") == 1, result.stdout[-3000:]  # the progress once, not per rank
    # every rank reached the end and the process group was closed: one left to the interpreter's exit
    # aborted a rank now and then (SIGABRT) and failed a finished run
    assert result.stdout.count("every process finished (2 in all)") == 1, result.stdout[-3000:]
    done = json.loads((tmp_path / "ddp" / "stages" / "3-code" / "DONE.json").read_text())
    assert done["losses"]
    assert done["train"]["world_size"] == 2  # both processes trained, not one rank alone
    assert (tmp_path / "ddp" / "final" / "modules.json").exists()


def test_close_process_group_ends_a_real_gloo_group(tmp_path):
    """The recipe's last step under torchrun, on a real one-process gloo group; a no-op without one."""
    import torch.distributed as dist

    from st_code.training.process_group import close_process_group

    lines: list[str] = []
    assert close_process_group(log=lines.append) is False
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        assert close_process_group(log=lines.append) is True
        assert not dist.is_initialized()
        assert lines == ["every process finished (1 in all)"]
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
