"""Faults that must be recovered from, not reported: a crash mid-write, a killed run's lock, a
checkpoint cut short, an empty LLM answer, kill -9 at random moments. Each checks that finished work
is kept (file contents and row counts before and after) and that the rerun completes."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from st_code.locking import FolderLock
from tests.faults.cases import ROOT, Assets, tiny_config
from tests.openai_stub import OpenAIStub
from tests.test_data_gen import make_corpus, scripted

RECIPE = ROOT / "recipes" / "annealing.py"


def _assets(tiny_qwen_path: str) -> Assets:
    return Assets(tiny_qwen=tiny_qwen_path, saved_model="", scripted=scripted)


def test_a_torn_journal_line_is_cut_off_not_glued_to_the_next_record(tmp_path):
    from st_code.llm import Journal

    path = tmp_path / "journal.jsonl"
    path.write_text('{"key": "a", "stage": "x", "status": "ok", "value": 1}\n{"key": "b", "sta')
    journal = Journal(path)
    journal.write({"key": "c", "stage": "x", "status": "ok", "value": 3})
    journal.close()
    assert set(Journal(path).records) == {"a", "c"}  # b is asked again; a and c are intact
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from st_code.locking import FolderLock\n"
        f"lock = FolderLock({str(tmp_path / 'out')!r}, 'training run').__enter__()\n"
        "print('locked', flush=True); time.sleep(60)")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    from st_code.errors import RunConflictError

    with pytest.raises(RunConflictError, match=rf"in use by another training run \(pid {holder.pid} "):
        FolderLock(tmp_path / "out", "training run").__enter__()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    said: list[str] = []
    with FolderLock(tmp_path / "out", "training run", log=said.append):
        pass
    assert said and f"left by pid {holder.pid}" in said[0] and "no longer running" in said[0]


def test_an_empty_llm_answer_is_asked_again_not_kept_as_a_rejection(tmp_path):
    import asyncio

    from st_code.llm import LLMClient, LLMError

    seen: dict[str, int] = {}

    def flaky(prompt: str):
        seen[prompt] = seen.get(prompt, 0) + 1
        return "" if seen[prompt] == 1 or "never" in prompt else "a real answer"

    with OpenAIStub(flaky) as server:
        client = LLMClient("openai/stub", [server.api_base], retries=2, timeout=10)

        async def both():
            try:
                first = await client.complete("hello")
                with pytest.raises(LLMError, match="empty_answer"):
                    await client.complete("never answers")
                return first
            finally:
                await client.aclose()

        assert asyncio.run(both()) == "a real answer"
    assert seen == {"hello": 2, "never answers": 3}  # the second try answered; the other tried 1 + 2 retries


def test_a_diverged_stage_keeps_its_last_good_checkpoint_and_resumes_from_it(tiny_qwen_path, tmp_path):
    from st_code.errors import TrainingDiverged
    from st_code.training import CurriculumRunner, config_from_dict

    config = tiny_config(_assets(tiny_qwen_path), tmp_path / "run")
    config["model"].update(base="minilm", pooling="mean")
    config["stages"][0].update(learning_rate=1e6, max_steps=6)
    config["publish"] = {"keep_checkpoints": True}  # read the resumed run's trainer state below
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step \d+") as info:
        CurriculumRunner(config_from_dict(config), log=lambda _: None).run()
    step = int(re.search(r"at step (\d+)", str(info.value)).group(1))
    folder = tmp_path / "run" / "stages" / "1-s" / "checkpoints"
    # the nan came from the weights after step - 1: that checkpoint is set aside, the one before is kept
    assert (folder / f"diverged-checkpoint-{step - 1}").is_dir()
    good = sorted(folder.glob("checkpoint-*"))[-1]
    assert good.name == f"checkpoint-{step - 2}" and str(good) in str(info.value)
    assert not (tmp_path / "run" / "stages" / "1-s" / "DONE.json").exists()
    # a lower learning rate is another setup: refused unless asked, then resumed from that checkpoint
    config["stages"][0]["learning_rate"] = 1e-5
    from st_code.errors import RunConflictError

    with pytest.raises(RunConflictError, match=r"learning_rate: 1000000\.0 -> 1e-05"):
        CurriculumRunner(config_from_dict(config), log=lambda _: None).run()
    said: list[str] = []
    CurriculumRunner(config_from_dict(config), log=said.append, existing_run="resume").run()
    assert any("resuming stage 's' from" in line and line.endswith(good.name) for line in said)
    done = json.loads((tmp_path / "run" / "stages" / "1-s" / "DONE.json").read_text())
    newest = max(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    history = json.loads((newest / "trainer_state.json").read_text())["log_history"]
    assert max(e["learning_rate"] for e in history[-2:] if "learning_rate" in e) <= 1e-5  # the new rate, not 1e6
    assert all(loss == loss for _, loss in done["losses"]) and (tmp_path / "run" / "final" / "modules.json").is_file()


def test_overwrite_starts_fresh_and_resume_anyway_keeps_finished_stages(tiny_qwen_path, tmp_path):
    from st_code.training import CurriculumRunner, config_from_dict

    config = tiny_config(_assets(tiny_qwen_path), tmp_path / "run")
    CurriculumRunner(config_from_dict(config), log=lambda _: None).run()
    done = tmp_path / "run" / "stages" / "1-s" / "DONE.json"
    first = done.read_text()
    config["evaluation"]["max_queries"] = 3
    said: list[str] = []
    CurriculumRunner(config_from_dict(config), log=said.append, existing_run="resume").run()
    assert done.read_text() == first and any("already finished" in line for line in said)
    history = json.loads((tmp_path / "run" / "run.json").read_text())["history"]
    assert history[-1]["changes"] == ["evaluation.max_queries: 4 -> 3"]
    said.clear()
    CurriculumRunner(config_from_dict(config), log=said.append, existing_run="overwrite").run()
    assert any(line.startswith("--overwrite: removed") for line in said)
    assert not any("already finished" in line for line in said)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["history"] == []


def test_a_run_that_stopped_before_training_gives_way_to_its_corrected_rerun(tiny_qwen_path, tmp_path):
    """A run whose data could not be read had recorded its setup: the corrected rerun was refused as "a
    different setup" and needed --overwrite, though nothing had been trained. Once a stage has trained,
    a changed setup is refused again."""
    from st_code.data.readers import DataError
    from st_code.errors import RunConflictError
    from st_code.training import CurriculumRunner, config_from_dict

    extra = tmp_path / "extra.jsonl"
    rows = "".join(json.dumps({"query": f"q{i}", "positive": f"p{i}"}) + "\n" for i in range(8))
    extra.write_text(rows + "{not json\n")
    config = tiny_config(_assets(tiny_qwen_path), tmp_path / "run")
    config["data"]["sources"] = {"extra": {"path": str(extra)}}
    with pytest.raises(DataError, match="extra.jsonl:9: not valid JSON"):
        CurriculumRunner(config_from_dict(config), log=lambda _: None).run()
    assert (tmp_path / "run" / "run.json").is_file()  # its setup was recorded, nothing trained
    extra.write_text(rows)
    said: list[str] = []
    CurriculumRunner(config_from_dict(config), log=said.append).run()
    assert any(line.endswith("stopped before training anything; this run takes its place") for line in said)
    assert (tmp_path / "run" / "final" / "modules.json").is_file()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["history"] == []
    config["stages"][0]["learning_rate"] = 2e-3
    with pytest.raises(RunConflictError, match="holds a run started with a different setup"):
        CurriculumRunner(config_from_dict(config), log=lambda _: None).run()


def test_an_incomplete_checkpoint_is_set_aside_and_the_previous_one_resumed(tiny_qwen_path, tmp_path):
    """SIGKILL while the trainer wrote checkpoint-3 left it without trainer_state.json: every rerun failed."""
    import shutil

    from st_code.training import CurriculumRunner, config_from_dict

    config = tiny_config(_assets(tiny_qwen_path), tmp_path / "run")
    config["stages"][0]["max_steps"] = 3
    config["publish"] = {"keep_checkpoints": True}
    CurriculumRunner(config_from_dict(config), log=lambda _: None).run()
    stage = tmp_path / "run" / "stages" / "1-s"
    (stage / "DONE.json").unlink()
    shutil.rmtree(tmp_path / "run" / "final")
    (stage / "checkpoints" / "checkpoint-3" / "trainer_state.json").unlink()  # cut short while saving
    said: list[str] = []
    CurriculumRunner(config_from_dict(config), log=said.append).run()
    assert any("checkpoint-3 is incomplete (no trainer_state.json" in line for line in said)
    assert any("resuming stage 's' from" in line and line.endswith("checkpoint-2") for line in said)
    assert (stage / "checkpoints" / "incomplete-checkpoint-3").is_dir() and (stage / "DONE.json").is_file()


def test_the_corpus_reader_checks_size_before_reading_and_stays_inside_the_folder(tmp_path):
    from data_gen.corpus import read_corpus

    corpus = make_corpus(tmp_path)
    (corpus / "huge.py").write_bytes(b"x = 1\n" * 200_000)  # 1.2 MB: over the 200 kB limit
    outside = tmp_path / "secret.py"
    outside.write_text("PASSWORD = 'not for the corpus'\n" * 3)
    (corpus / "leak.py").symlink_to(outside)
    files, report = read_corpus([corpus])
    assert report.dropped["oversized"] == 1 and report.dropped["outside_corpus"] == 1
    assert not any("PASSWORD" in f.code for f in files)


def _data_gen_command(corpus: Path, out: Path, api_base: str) -> list[str]:
    return [sys.executable, "-m", "data_gen", "all", "--corpus", str(corpus), "--out", str(out), "--tasks",
            "Web Query to Code Retrieval", "Code Summary Retrieval", "--natural-languages", "English", "Chinese",
            "--model", "openai/stub", "--api-base", api_base, "--concurrency", "2", "--num-negatives", "2"]


@pytest.fixture(scope="module")
def data_gen_reference(tmp_path_factory):
    """An uninterrupted ``python -m data_gen all`` run, to compare the killed ones with."""
    root = tmp_path_factory.mktemp("kill_reference")
    corpus = make_corpus(root)
    with OpenAIStub(scripted) as server:
        result = subprocess.run(_data_gen_command(corpus, root / "out", server.api_base), cwd=ROOT,
                                capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return corpus, sorted((root / "out" / "triplets.jsonl").read_text().splitlines())


@pytest.mark.slow
def test_kill_9_twice_at_random_moments_of_data_gen_then_rerun(tmp_path, data_gen_reference):
    """``python -m data_gen all`` killed at a random moment, its rerun killed at another, then the same
    command once more: the same final rows as a run that never stopped, and no row or journal record
    twice. (Two kills in one test: a resumed run must survive a kill too, and each fresh start costs the
    suite its imports.)"""
    corpus, reference = data_gen_reference
    out = tmp_path / "out"
    moments = random.Random(0)
    with OpenAIStub(scripted, delay=0.05) as server:
        for window in ((3.0, 9.0), (3.0, 7.0)):  # imports take ~4 s, the run ~10 s, what is left of it less
            process = subprocess.Popen(_data_gen_command(corpus, out, server.api_base), cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(moments.uniform(*window))
            process.send_signal(signal.SIGKILL)
            process.wait()
        rerun = subprocess.run(_data_gen_command(corpus, out, server.api_base), cwd=ROOT, capture_output=True,
                               text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
    rows = sorted((out / "triplets.jsonl").read_text().splitlines())
    assert rows == reference and len(set(rows)) == len(rows) > 0
    keys = [json.loads(line)["key"] for line in (out / "journal.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys))


@pytest.mark.slow
def test_kill_9_twice_at_random_moments_of_the_recipe_then_rerun(tiny_qwen_path, tmp_path):
    """``recipes/annealing.py`` killed at a random moment (data building, a stage, a checkpoint write,
    saving), its rerun killed at another while it resumes, then the same command once more: it completes
    every stage, and the final model loads."""
    config = tiny_config(_assets(tiny_qwen_path), tmp_path / "run")
    config["stages"] = [{**config["stages"][0], "name": name, "max_steps": 4} for name in ("one", "two")]
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    command = [sys.executable, str(RECIPE), "--config", str(config_file)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    moments = random.Random(100)
    for window in ((12.0, 24.0), (11.0, 18.0)):  # imports ~10 s, the run ~20 s more, the resumed one less
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(moments.uniform(*window))
        process.send_signal(signal.SIGKILL)
        process.wait()
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    for name in ("1-one", "2-two"):
        done = json.loads((tmp_path / "run" / "stages" / name / "DONE.json").read_text())
        assert done["train"]["global_step"] == 4 or done["losses"]
    import st_code

    assert st_code.load_model(tmp_path / "run" / "final", device="cpu").encode(["x"]).shape[0] == 1
