"""A few real SentenceTransformerTrainer steps with GradCache InfoNCE move the loss."""

from __future__ import annotations

import pytest
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

import st_code


def test_trainer_with_cached_mnrl_moves_the_loss(tiny_qwen_path, tmp_path):
    model = st_code.build_model(tiny_qwen_path, pooling="pma", lora={"r": 8, "alpha": 16}, device="cpu")
    pairs = [(f"how to compute item {i}", f"def item_{i}(x):\n    return x * {i}") for i in range(16)]
    dataset = Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    loss = CachedMultipleNegativesRankingLoss(model, scale=1 / 0.05, mini_batch_size=4)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=6, per_device_train_batch_size=8, learning_rate=5e-3,
        logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0, disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses


class _OtherRankArguments(SentenceTransformerTrainingArguments):
    """The arguments as rank 1 of a DDP run sees them. A second process cannot exist in a unit test;
    tests/test_recipe_cli.py::test_two_process_ddp_run_on_cpu runs the real two ranks."""

    @property
    def should_save(self) -> bool:
        return False


@pytest.mark.parametrize("saving_rank", [True, False])
def test_only_the_saving_rank_writes_checkpoint_models(tiny_qwen_path, tmp_path, saving_rank):
    """Every rank reaches the trainer's ``_save``; the others writing too raced on the same files."""
    from st_code.training.stage_trainer import StageTrainer, stage_schedule

    model = st_code.build_model(tiny_qwen_path, pooling="lasttoken", device="cpu")
    dataset = Dataset.from_dict({"anchor": [f"item {i}" for i in range(8)],
                                 "positive": [f"def item_{i}(): pass" for i in range(8)]})
    arguments = SentenceTransformerTrainingArguments if saving_rank else _OtherRankArguments
    args = arguments(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=4, save_steps=1,
                     save_strategy="steps", report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = StageTrainer(model=model, args=args, train_dataset=dataset,
                           loss=CachedMultipleNegativesRankingLoss(model, mini_batch_size=2),
                           schedule=lambda steps: stage_schedule(1e-4, 0.0, 0, 0.0, steps))
    trainer.train()
    checkpoints = sorted((tmp_path / "out").glob("checkpoint-*"))
    assert len(checkpoints) == 2  # the folders exist on every rank (each keeps its own RNG state there)
    written = [c.name for c in checkpoints if (c / "modules.json").exists() or any(c.glob("**/*.safetensors"))]
    assert written == ([c.name for c in checkpoints] if saving_rank else [])


def test_activation_checkpointing_is_enabled_without_the_deprecated_alias(tiny_qwen_path):
    """``gradient_checkpointing: true``: the backbone checkpoints its layers (same outputs), and no
    FutureWarning about transformers' deprecated ``gradient_checkpointing_enable`` is raised."""
    import warnings

    import torch

    import st_code
    from st_code.training.models import enable_activation_checkpointing

    torch.manual_seed(0)
    model = st_code.build_model(tiny_qwen_path, pooling="pma", lora={"r": 4, "alpha": 8, "dropout": 0.0},
                                device="cpu")
    model.train()
    features = model.preprocess(["def add(a, b): return a + b", "read a file"])
    before = model(dict(features))["sentence_embedding"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        enable_activation_checkpointing(model)
    backbone = model[0].auto_model
    assert backbone.is_activation_checkpointing
    after = model(dict(features))["sentence_embedding"]
    torch.testing.assert_close(after, before)
    after.sum().backward()
    assert any(p.grad is not None for n, p in model.named_parameters() if "lora_" in n)
