"""The Annealing trainer end to end on a tiny decoder: stages, LoRA merge, filters, report, resume."""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

import st_code
from st_code.training import CurriculumRunner, config_from_dict

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def tiny_config(base: str, output_dir: Path) -> dict:
    stage = {"batch_size": 8, "mini_batch_size": 4, "num_negatives": 1, "learning_rate": 1e-3, "save_steps": 1,
             "temperature": 0.05}
    return {
        "model": {"base": base, "pooling": "pma", "embedding_dim": 32, "lora": {"r": 4, "alpha": 8},
                  "max_seq_length": 64},
        "data": {"offline": {"code_dirs": [str(STDLIB / "json"), str(STDLIB / "email")], "max_pairs_per_task": 40,
                             "heldout_percent": 30, "include_package_docs": False, "max_code_lines": 12},
                 "hard_negatives": {"num_negatives": 1, "batch_size": 16}},
        "stages": [
            {"name": "text", "datasets": ["offline:Text Retrieval"], "max_steps": 2, **stage},
            {"name": "mixed", "datasets": ["offline:Text Retrieval", "offline:Code Summary Retrieval"],
             "max_steps": 3, "merge_lora": True, "head_learning_rate": 1e-2, "pack_sequences": True,
             "mix": {"offline:Text Retrieval": 1, "offline:Code Summary Retrieval": 1}, **stage},
            {"name": "code", "datasets": ["offline:Code Summary Retrieval", "offline:Code Context Retrieval"],
             "max_steps": 2, "instructions": True, "filters": [{"type": "embedder_topk", "k": 1}], **stage},
        ],
        "evaluation": {"sets": ["stdlib-doc2code", "HumanEval-doc2code"], "max_queries": 15, "batch_size": 16},
        "output_dir": str(output_dir),
        "logging_steps": 1,
        "publish": {"keep_checkpoints": True},  # the rerun tests resume from them
        "packed_shape_multiple": [2, 32],  # the packed stage's shapes rounded up, as for CUDA graphs on a GPU
    }


@pytest.fixture(scope="module")
def finished_run(tiny_qwen_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    logs: list[str] = []
    result = CurriculumRunner(config_from_dict(tiny_config(tiny_qwen_path, out)), log=logs.append).run()
    return out, result, logs


def test_run_writes_stages_model_and_report(finished_run):
    out, result, logs = finished_run
    assert list(result["scores"]) == ["base", "text", "mixed", "code"]
    packed = [line for line in logs if "rows packed side by side" in line]
    assert len(packed) == 1 and "its shape rounded up to 2 rows x 32 tokens" in packed[0]  # the mixed stage
    for stage in ("1-text", "2-mixed", "3-code"):
        record = json.loads((out / "stages" / stage / "DONE.json").read_text())
        assert record["losses"] and "stdlib-doc2code" in record["scores"]
    filters = json.loads((out / "stages" / "3-code" / "DONE.json").read_text())["filters"]
    assert filters[0]["name"] == "embedder_topk(k=1)" and filters[0]["kept"] + filters[0]["dropped"] > 0
    for name in ("metrics.md", "metrics.json", "scores.png", "loss.png"):
        assert (out / "report" / name).stat().st_size > 0
    assert "| code |" in (out / "report" / "metrics.md").read_text()
    card = (out / "final" / "README.md").read_text()
    from st_code.training.sample_table import SampleTable

    saved = {json.loads(p.with_suffix(".json").read_text())["name"]: len(SampleTable(p))
             for p in (out / "data").glob("source-*.arrow")}
    code_rows = saved["offline:Code Summary Retrieval"] + saved["offline:Code Context Retrieval"]  # what stages use
    assert f"programming languages (training rows): Python ({code_rows:,})" in card
    assert any("mining 1 hard negative" in line for line in logs)
    plan = next(i for i, line in enumerate(logs) if line.startswith("stage 'mixed' plan (before filtering)"))
    assert "offline:Text Retrieval:" in logs[plan + 1] and "mix weight 1" in logs[plan + 1]  # rows x repeats
    # a raw decoder under a fresh PMA head embeds at random: the packaged MiniLM mines instead
    assert any(line.startswith("mining hard negatives with minilm (the base") for line in logs)


def test_stage_scores_are_the_saved_models_numbers(finished_run):
    """One evaluator: a stage's recorded score is the textbook NDCG@10 of its saved model on the held-out
    set, with the prompt that model carries for the set's task (stage 3 trained with instructions)."""
    from st_code.data.records import RetrievalSet
    from st_code.retrieval import resolve_prompts
    from tests.retrieval_check import ndcg_at_10

    out, _, _ = finished_run
    rs = RetrievalSet.from_json(json.loads((out / "data" / "heldout-stdlib-doc2code.json").read_text()))
    for stage in ("2-mixed", "3-code"):
        model = st_code.load_model(out / "stages" / stage / "model", device="cpu")
        prompts = resolve_prompts(model.prompts, rs.task)
        recorded = json.loads((out / "stages" / stage / "DONE.json").read_text())["scores"]["stdlib-doc2code"]
        assert recorded["ndcg_at_10"] == pytest.approx(ndcg_at_10(model, rs, prompts["query"], prompts["document"],
                                                                  max_queries=15), abs=1e-4)
    # stage 3 trained Code Summary / Code Context with instructions: those prompts are saved, and this set's
    # task (not trained) falls back to the model's default query instruction, as st_code.evaluation does
    assert model.prompts["Code Summary Retrieval-query"].startswith("<instruct>Given a piece of code, retrieve the doc")
    assert prompts["query"] == model.prompts["query"]


def test_final_model_is_merged_and_loads_both_ways(finished_run):
    out, _, _ = finished_run
    final = out / "final"
    assert not (final / "adapter_config.json").exists()  # self-contained, LoRA merged
    ours = st_code.load_model(final, device="cpu")
    plain = SentenceTransformer(str(final), trust_remote_code=True, device="cpu")
    texts = ["parse a json document", "def f(x):\n    return x"]
    np.testing.assert_allclose(ours.encode(texts), plain.encode(texts), atol=1e-6)
    assert ours.encode(texts).shape == (2, 32)


def test_rerun_skips_finished_stages_and_resumes_an_interrupted_one(finished_run, tmp_path):
    out, _, _ = finished_run
    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    # Simulate a crash during stage 3 after its second checkpoint: no DONE, no final model.
    stage3 = resumed / "stages" / "3-code"
    (stage3 / "DONE.json").unlink()
    shutil.rmtree(stage3 / "model")
    shutil.rmtree(resumed / "final")
    checkpoints = sorted((stage3 / "checkpoints").glob("checkpoint-*"))
    assert [c.name for c in checkpoints] == ["checkpoint-1", "checkpoint-2"]
    shutil.rmtree(checkpoints[-1])  # the crash happened before step 2 was saved

    logs: list[str] = []
    trainer = CurriculumRunner(config_from_dict(tiny_config(_base_of(out), resumed)), log=logs.append)
    result = trainer.run()
    assert any("stage 1 'text' already finished" in line for line in logs)
    assert any("stage 2 'mixed' already finished" in line for line in logs)
    assert any("resuming stage 'code' from" in line and "checkpoint-1" in line for line in logs)
    record = json.loads((stage3 / "DONE.json").read_text())
    original = json.loads((out / "stages" / "3-code" / "DONE.json").read_text())
    assert [step for step, _ in record["losses"]] == [1, 2]
    assert record["losses"][0] == original["losses"][0]  # step 1 restored from its checkpoint, not retrained
    assert (resumed / "final" / "modules.json").exists() and "code" in result["scores"]


def _base_of(run_dir: Path) -> str:
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["base"]


def continuous_config(base: str, output_dir: Path, optimizer: str = "continuous") -> dict:
    """Two CodeXEmbed-style stages: LoRA merged after stage 1, a fresh adapter in stage 2."""
    stage = {"batch_size": 8, "mini_batch_size": 4, "num_negatives": 1, "learning_rate": 2e-3, "save_steps": 1,
             "temperature": 0.05, "max_steps": 3, "warmup_steps": 1, "end_learning_rate": 2e-4, "merge_lora": True}
    config = tiny_config(base, output_dir)
    config["model"] = {"base": base, "pooling": "lasttoken", "lora": {"r": 4, "alpha": 8}, "max_seq_length": 64}
    config["stages"] = [{"name": "text", "datasets": ["offline:Text Retrieval"], **stage},
                        {"name": "code", "datasets": ["offline:Code Summary Retrieval"], **stage}]
    config["optimizer"] = optimizer
    config["evaluation"] = {"sets": ["stdlib-doc2code"], "max_queries": 5, "batch_size": 16}  # not what is tested
    return config


def test_continuous_optimizer_carries_adam_state_and_schedule_across_a_merge(tiny_qwen_path, tmp_path):
    """CodeXEmbed's continuous optimizer: after the LoRA merge, the fresh adapter takes over its
    predecessor's AdamW moments and step count, and the learning rate goes on down one schedule;
    with compile: true, whose layers are compiled again around the fresh adapter."""
    import torch

    from st_code.training.stage_trainer import LinearSchedule

    out = tmp_path / "continuous"
    config = continuous_config(tiny_qwen_path, out)
    # compiled too (TorchDynamo's eager backend: capture and guards without inductor's minutes of code
    # generation on a CPU): each stage compiles its layers, the second around its fresh adapter
    config.update(compile=True, compile_backend="eager")
    for stage in config["stages"]:  # packed, as on a GPU: fewer shapes to compile for
        stage["pack_sequences"] = True
    logs: list[str] = []
    CurriculumRunner(config_from_dict(config), log=logs.append).run()
    assert sum("compiled 2 layers in place (eager" in line for line in logs) == 2, logs
    schedule = LinearSchedule(**json.loads((out / "schedule.json").read_text())["schedule"])
    assert (schedule.warmup_steps, schedule.total_steps, schedule.peak, schedule.end) == (1, 6, 2e-3, 2e-4)
    first = json.loads((out / "stages" / "1-text" / "DONE.json").read_text())
    second = json.loads((out / "stages" / "2-code" / "DONE.json").read_text())
    trainable = sum(1 for name, p in st_code.build_model(tiny_qwen_path, pooling="lasttoken", lora={"r": 4, "alpha": 8})
                    .named_parameters() if p.requires_grad)
    assert second["train"]["carried_optimizer_parameters"] == trainable > 0
    state = torch.load(out / "stages" / "2-code" / "optimizer_state.pt", weights_only=False)
    assert state["global_step"] == 6
    assert {int(s["step"]) for s in state["states"].values()} == {6}  # Adam's step ran on through the boundary
    # the learning rate of stage 2's first update continues the curve (global update 3) instead of
    # warming up from 0 again as stage 1's first update did
    assert first["train"]["first_learning_rate"] == 0.0 == schedule.learning_rate(0)
    assert schedule.learning_rate(3) > 0
    assert second["train"]["first_learning_rate"] == pytest.approx(schedule.learning_rate(3))


def test_continuous_optimizer_resumes_after_a_kill_between_stages(tiny_qwen_path, tmp_path):
    """Stage 2 after a restart starts from stage 1's saved AdamW state: same losses, same model as a
    run that never stopped (and different from fresh per-stage optimizers, so the state matters)."""
    whole = tmp_path / "whole"
    CurriculumRunner(config_from_dict(continuous_config(tiny_qwen_path, whole)), log=lambda _: None).run()
    resumed = tmp_path / "resumed"
    shutil.copytree(whole, resumed)
    shutil.rmtree(resumed / "stages" / "2-code")  # killed after stage 1 was saved, before stage 2 trained
    shutil.rmtree(resumed / "final")
    logs: list[str] = []
    CurriculumRunner(config_from_dict(continuous_config(tiny_qwen_path, resumed)), log=logs.append).run()
    assert any("stage 1 'text' already finished" in line for line in logs)

    def stage2_losses(run: Path) -> list[float]:
        return [loss for _, loss in json.loads((run / "stages" / "2-code" / "DONE.json").read_text())["losses"]]

    np.testing.assert_allclose(stage2_losses(resumed), stage2_losses(whole), rtol=1e-5)
    texts = ["parse a json document", "def f(x):\n    return x"]
    np.testing.assert_allclose(st_code.load_model(resumed / "final").encode(texts),
                               st_code.load_model(whole / "final").encode(texts), atol=1e-5)
    fresh = tmp_path / "per_stage"
    CurriculumRunner(config_from_dict(continuous_config(tiny_qwen_path, fresh, "per_stage")), log=lambda _: None).run()
    assert not np.allclose(stage2_losses(fresh), stage2_losses(whole), rtol=1e-4)
    # per stage, each stage warms up and decays on its own: 0, peak, then linearly down to end_learning_rate
    for stage in ("1-text", "2-code"):
        state = json.loads((fresh / "stages" / stage / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
        rates = [e["learning_rate"] for e in state["log_history"] if "learning_rate" in e]
        assert rates == pytest.approx([0.0, 2e-3, 1.1e-3])


def test_the_fresh_adapter_and_head_come_from_the_configured_seed(tiny_qwen_path, tmp_path):
    """The same config builds the same starting weights whatever the process drew before (a second run
    in one process trained from other LoRA A matrices and PMA weights), and another seed other ones."""
    import torch

    config = tiny_config(tiny_qwen_path, tmp_path)

    def fresh(seed: int) -> dict:
        torch.rand(1000)  # whatever else the process did before
        runner = CurriculumRunner(config_from_dict({**config, "seed": seed}), log=lambda _: None)
        return {n: p.detach().clone() for n, p in runner.build_initial_model().named_parameters() if p.requires_grad}

    first, second, other = fresh(0), fresh(0), fresh(1)
    assert any(".lora_A." in n for n in first) and any(n.startswith("1.") for n in first)  # LoRA + PMA
    assert all(torch.equal(first[n], second[n]) for n in first)
    assert not all(torch.equal(first[n], other[n]) for n in first)


def test_trainable_weights_stay_float32_on_a_bf16_backbone(tiny_qwen_path, tmp_path):
    """LoRA and a fresh PMA head are the optimizer's master weights: float32 even when the backbone is
    loaded in bf16 (bf16 has 8 bits of mantissa: an update of 1e-4 x weight rounds away)."""
    import torch

    config = tiny_config(tiny_qwen_path, tmp_path)
    config["model"]["dtype"] = "bfloat16"
    runner = CurriculumRunner(config_from_dict(config), log=lambda _: None)
    model = runner.build_initial_model()
    trainable = {n: p.dtype for n, p in model.named_parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert trainable and set(trainable.values()) == {torch.float32}
    assert any(".lora_A." in n for n in trainable) and any(n.startswith("1.") for n in trainable)  # LoRA + PMA
    assert frozen == {torch.bfloat16}
    model.save(str(tmp_path / "saved"))
    reloaded = runner._load_stage_model(tmp_path / "saved")  # a resumed run trains the same way
    assert {p.dtype for p in reloaded.parameters() if p.requires_grad} == {torch.float32}


def test_worker_processes_feed_the_trainer_and_step_aside_for_recording(tiny_qwen_path, tmp_path, monkeypatch):
    """dataloader_workers: the collator (tokenization, prompts) runs in forked worker processes and the
    stage trains as usual; with record_batches set, batches are collated here so each is written once.
    The stage runs by epochs, a few steps, fewer than logging_steps: its loss is still logged, once, at
    its last step."""
    import os

    from st_code.training.batch_record import RecordingCollator

    collated_in = tmp_path / "collator-pids.txt"
    stock = RecordingCollator.__call__

    def noting_the_process(self, features):
        with collated_in.open("a") as handle:  # forked workers inherit this patch and append their pid
            handle.write(f"{os.getpid()}\n")
        return stock(self, features)

    monkeypatch.setattr(RecordingCollator, "__call__", noting_the_process)
    config = tiny_config(tiny_qwen_path, tmp_path / "workers")
    text = {**config["stages"][0], "epochs": 1}
    del text["max_steps"]  # by epochs: a few steps, fewer than logging_steps
    config.update(stages=[text], logging_steps=50)
    config["evaluation"] = {"sets": ["stdlib-doc2code"], "max_queries": 5, "batch_size": 16}
    config["dataloader_workers"] = 1
    logs: list[str] = []
    result = CurriculumRunner(config_from_dict(config), log=logs.append).run()
    assert "1 worker processes tokenize the next batches" in " ".join(logs)
    losses = json.loads((tmp_path / "workers" / "stages" / "1-text" / "DONE.json").read_text())["losses"]
    assert len(losses) == 1 and 1 < losses[0][0] < 50  # logged once, at the stage's last step
    assert list(result["scores"]) == ["base", "text"]
    pids = set(collated_in.read_text().split())
    assert pids and str(os.getpid()) not in pids  # every batch was collated in a worker process

    collated_in.unlink()
    config["output_dir"] = str(tmp_path / "recorded")
    config["record_batches"] = 2
    logs.clear()
    CurriculumRunner(config_from_dict(config), log=logs.append).run()
    assert any("record_batches is set, so batches are tokenized in this process" in line for line in logs)
    assert set(collated_in.read_text().split()) == {str(os.getpid())}
    from st_code.training.batch_record import read_batches

    assert [b["batch"] for b in read_batches(tmp_path / "recorded" / "stages" / "1-text" / "batches.jsonl")] == [0, 1]


def test_the_01_name_annealing_trainer_still_runs_the_curriculum_with_a_warning(tiny_qwen_path, tmp_path):
    from st_code.training import AnnealingTrainer

    config = config_from_dict(tiny_config(tiny_qwen_path, tmp_path / "run"))
    with pytest.warns(DeprecationWarning, match="AnnealingTrainer is now CurriculumRunner"):
        runner = AnnealingTrainer(config, log=lambda _: None)
    assert isinstance(runner, CurriculumRunner)
