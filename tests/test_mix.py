"""A stage's ``mix``: each dataset's share of the batches, met by reading small datasets again (in a
fresh shuffle, never a row twice in a batch), with nothing thrown away."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from sentence_transformers import SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch.utils.data import ConcatDataset, RandomSampler

import st_code
from st_code.data.records import Sample
from st_code.training.config import StageConfig
from st_code.training.mix_sampler import QuotaBatchSampler
from st_code.training.stage_rows import mix_repeats, stage_rows
from st_code.training.stage_datasets import build_stage_datasets
from st_code.training.stage_plan import plan_lines, planned_steps


def _rows(name: str, n: int, task: str) -> list[Sample]:
    return [Sample(f"{name} query {i}", f"{name} doc {i}", [f"{name} neg {i}"], task, "English", None) for i in range(n)]


def _sampler(sizes: list[int], quota: list[int], batch_size: int, seed: int = 0) -> QuotaBatchSampler:
    from sentence_transformers.base.sampler import DefaultBatchSampler

    datasets = [list(range(n)) for n in sizes]
    generator = torch.Generator().manual_seed(seed)
    samplers = [DefaultBatchSampler(RandomSampler(d, generator=generator), batch_size=batch_size, drop_last=True)
                for d in datasets]
    return QuotaBatchSampler(ConcatDataset(datasets), samplers, generator=generator, seed=seed, quota=quota)


def test_repeats_meet_the_share_and_keep_every_row():
    assert mix_repeats({"a": 1, "b": 1}, {"a": 100, "b": 100_000}) == {"a": 1000.0, "b": 1.0}
    assert mix_repeats({"text": 1, "code": 3}, {"text": 600, "code": 900}) == {"text": 1.0, "code": 2.0}
    assert mix_repeats(None, {"a": 5, "b": 7}) == {"a": 1.0, "b": 1.0}
    # a share of several sets: text:code 1:3 between kinds, each set in its kind in proportion to its rows
    shared = mix_repeats({"msmarco+nq": 1, "csn+apps": 3}, {"msmarco": 500, "nq": 100, "csn": 900, "apps": 30})
    assert shared == pytest.approx({"msmarco": 1.0, "nq": 1.0, "csn": 1800 / 930, "apps": 1800 / 930})
    sources = {"small": _rows("small", 100, "T1"), "large": _rows("large", 100_000, "T2")}
    stage = StageConfig(name="s", datasets=["small", "large"], mix={"small": 1, "large": 1}, batch_size=50,
                        num_negatives=1)
    rows = stage_rows(stage, sources, seed=0)
    assert rows.rows == {"small": 100, "large": 100_000} and len(rows.samples) == 100_100
    assert rows.repeat_of(sources["small"][3]) == 1000.0 and rows.repeat_of(sources["large"][3]) == 1.0


def test_a_one_to_one_mix_of_100_and_100000_rows_draws_from_all_100000():
    """The 100-row set gets half the batches by being read 1000 times; every one of the 100,000 rows
    of the other is drawn, and no batch holds a row twice."""
    sampler = _sampler([100, 100_000], quota=[10_000, 10_000], batch_size=10)
    seen = Counter()
    per_dataset = Counter()
    for batch in sampler:
        assert len(set(batch)) == len(batch) == 10
        owners = {0 if i < 100 else 1 for i in batch}
        assert len(owners) == 1  # one dataset per batch (C2LLM's grouping)
        per_dataset[owners.pop()] += 1
        seen.update(batch)
    assert len(sampler) == 20_000 and per_dataset == {0: 10_000, 1: 10_000}
    assert all(seen[100 + i] == 1 for i in range(100_000))  # all of the large set, once
    assert all(seen[i] == 1000 for i in range(100))  # the small one, 1000 passes


def test_quota_sampler_is_seeded_by_epoch_and_skips_a_dataset_too_small_for_a_batch():
    first = list(_sampler([30, 40], quota=[5, 4], batch_size=8, seed=3))
    assert first == list(_sampler([30, 40], quota=[5, 4], batch_size=8, seed=3))
    shifted = _sampler([30, 40], quota=[5, 4], batch_size=8, seed=3)
    shifted.set_epoch(1)
    assert list(shifted) != first
    tiny = _sampler([5, 40], quota=[3, 4], batch_size=8)
    assert len(tiny) == 4 and all(min(batch) >= 5 for batch in tiny)
    with pytest.raises(ValueError, match="one quota per dataset"):
        _sampler([5, 40], quota=[3], batch_size=8)


def test_plan_reports_rows_repeats_and_steps():
    sources = {"text": _rows("text", 60, "T1"), "code": _rows("code", 900, "T2")}
    stage = StageConfig(name="two", datasets=["text", "code"], mix={"text": 1, "code": 3}, batch_size=10,
                        num_negatives=1)
    lines = plan_lines(stage, sources, seed=0, num_processes=1)
    assert "text: 60 rows x 5.00 repeats = 300 rows per epoch, mix weight 1" in lines[1]
    assert "code: 900 rows x 1.00 repeats = 900 rows per epoch, mix weight 3" in lines[2]
    assert "120 batches per epoch, 120 step(s)" in lines[0]
    assert planned_steps(stage, sources, seed=0, num_processes=2) == 60
    loud = plan_lines(StageConfig(name="s", datasets=["text", "code"], mix={"text": 1, "code": 1}, batch_size=10,
                                  num_negatives=1), sources, seed=0, num_processes=1)
    assert not any("note:" in line for line in loud)  # text read 15 times: under the warning's 20
    many = {"text": _rows("text", 20, "T1"), "code": _rows("code", 900, "T2")}
    loud = plan_lines(StageConfig(name="s", datasets=["text", "code"], mix={"text": 1, "code": 1}, batch_size=10,
                                  num_negatives=1), many, seed=0, num_processes=1)
    assert any("note: text is read 45 times per epoch" in line for line in loud)


def test_the_stage_trainer_draws_the_mix_through_its_real_data_loader(tiny_qwen_path, tmp_path):
    """The trainer's own loader takes the quotas: 1:1 between 16 and 64 rows gives 8 batches of each."""
    from st_code.training.stage_trainer import StageTrainer, stage_schedule

    sources = {"small": _rows("small", 16, "T1"), "large": _rows("large", 64, "T2")}
    stage = StageConfig(name="s", datasets=["small", "large"], mix={"small": 1, "large": 1}, batch_size=8,
                        num_negatives=1)
    rows = stage_rows(stage, sources, seed=0)
    sets = build_stage_datasets(rows.samples, 1, repeat_of=rows.repeat_of)
    quota = sets.batches_per_epoch(8)
    assert sorted(quota.values()) == [8, 8]
    model = st_code.build_model(tiny_qwen_path, pooling="lasttoken", device="cpu")
    args = SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8,
                                                report_to=[], use_cpu=True, disable_tqdm=True, save_strategy="no",
                                                dataloader_drop_last=True)
    trainer = StageTrainer(model=model, args=args, train_dataset=sets.datasets, loss=MultipleNegativesRankingLoss(model),
                           schedule=lambda steps: stage_schedule(1e-4, 0.0, 0, 0.0, steps), batch_quota=quota)
    loader = trainer.get_train_dataloader()
    assert len(loader) == 16
    plain = StageTrainer(model=model, args=args, train_dataset=sets.datasets, loss=MultipleNegativesRankingLoss(model),
                         schedule=lambda steps: stage_schedule(1e-4, 0.0, 0, 0.0, steps))
    assert len(plain.get_train_dataloader()) == 2 + 8  # proportional: each read once
