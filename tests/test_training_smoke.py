"""A few real SentenceTransformerTrainer steps with GradCache InfoNCE move the loss."""

from __future__ import annotations

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
