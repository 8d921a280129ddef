"""What the curriculum adds over a bare SentenceTransformerTrainer, and GradCache memory.

    python benchmarks/trainer_overhead.py [--steps 12] [--rounds 2]

1. Throughput: the same model (packaged all-MiniLM-L6-v2, mean pooling), loss (GradCache InfoNCE),
   data (standard-library docstring -> code triplets) and arguments, trained once through
   ``CurriculumRunner`` (one stage) and once through a bare ``SentenceTransformerTrainer``, in
   alternating rounds; prints samples/s of each and their ratio. Target (issue #3): ratio >= 0.95.
2. Memory: peak resident memory added by training with CachedMultipleNegativesRankingLoss
   (mini-batch 8) at batch 64 vs batch 8, each in a fresh subprocess. Target: within 1.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def make_data(path: Path, n: int = 600) -> None:
    from st_code.data import build_offline_data
    from st_code.data.offline_pairs import TEXT2CODE

    data = build_offline_data([STDLIB / "email", STDLIB / "logging", STDLIB / "json", STDLIB / "http"],
                              heldout_percent=0, include_package_docs=False, max_code_lines=20)
    pairs = data.train[TEXT2CODE][:n]
    with path.open("w") as handle:
        for i, (query, code) in enumerate(pairs):
            negative = pairs[(i + 7) % len(pairs)][1]
            handle.write(json.dumps({"query": query, "positive": code, "negative_1": negative}) + "\n")


def via_curriculum(data: Path, out: Path, steps: int, batch: int) -> float:
    from st_code.training import CurriculumRunner, config_from_dict

    config = config_from_dict({
        "model": {"base": "minilm", "pooling": "mean", "max_seq_length": 128},
        "data": {"offline": None, "sources": {"pairs": {"path": str(data), "task": TEXT2CODE_TASK, "language": "python"}},
                 "hard_negatives": {"enabled": False}},
        "stages": [{"name": "s", "datasets": ["pairs"], "max_steps": steps, "batch_size": batch, "mini_batch_size": 16,
                    "learning_rate": 2e-5, "temperature": 0.05, "save_steps": 10_000}],
        "evaluation": {"sets": []}, "output_dir": str(out), "logging_steps": 1000,
    })
    CurriculumRunner(config, log=lambda _: None).run()
    record = json.loads((out / "stages" / "1-s" / "DONE.json").read_text())
    return record["train"]["train_samples_per_second"]


def bare(data: Path, out: Path, steps: int, batch: int) -> float:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    import st_code
    from st_code.assets import minilm_path

    rows = [json.loads(line) for line in data.read_text().splitlines()]
    dataset = Dataset.from_dict({"anchor": [r["query"] for r in rows], "positive": [r["positive"] for r in rows],
                                 "negative_1": [r["negative_1"] for r in rows]})
    model = st_code.build_model(minilm_path(), pooling="mean", max_seq_length=128)
    loss = CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=16)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch, learning_rate=2e-5,
        warmup_steps=0.1, save_strategy="no", report_to=[], logging_steps=1000, dataloader_drop_last=True, seed=0,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset={"pairs": dataset}, loss=loss)
    trainer.train()
    return next(e for e in reversed(trainer.state.log_history) if "train_samples_per_second" in e)["train_samples_per_second"]


TEXT2CODE_TASK = "Code Explanation to Implementation Retrieval"

MEMORY_CHILD = r"""
import json, os, resource, sys
os.environ["HF_HUB_OFFLINE"] = "1"
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
import st_code
from st_code.assets import minilm_path
data, batch, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = [json.loads(l) for l in open(data)]
ds = Dataset.from_dict({"anchor": [r["query"] for r in rows], "positive": [r["positive"] for r in rows]})
model = st_code.build_model(minilm_path(), pooling="mean", max_seq_length=128)
model.encode(["warm up"] * 8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
loss = CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=8)
args = SentenceTransformerTrainingArguments(output_dir=out, max_steps=3, per_device_train_batch_size=batch,
    save_strategy="no", report_to=[], logging_steps=1000, dataloader_drop_last=True)
SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, loss=loss).train()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_mb": before / 1024, "after_mb": after / 1024}))
"""


def peak_memory(data: Path, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(data), str(batch), out],
                                capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-throughput", action="store_true", help="only the GradCache memory measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "pairs.jsonl"
        make_data(data)
        curriculum, plain = [], []
        for r in range(0 if args.skip_throughput else args.rounds):
            curriculum.append(via_curriculum(data, tmp / f"c{r}", args.steps, args.batch_size))
            plain.append(bare(data, tmp / f"b{r}", args.steps, args.batch_size))
        if curriculum:
            c, b = statistics.median(curriculum), statistics.median(plain)
            print(f"steps={args.steps} batch={args.batch_size} rounds={args.rounds}")
            print(f"curriculum trainer   {c:8.2f} samples/s   (rounds: {', '.join(f'{x:.2f}' for x in curriculum)})")
            print(f"bare ST trainer      {b:8.2f} samples/s   (rounds: {', '.join(f'{x:.2f}' for x in plain)})")
            print(f"throughput ratio curriculum/bare: {c / b:.3f}  (target >= 0.95)")
        small, large = peak_memory(data, 8), peak_memory(data, 64)
        grow_small = small["after_mb"] - small["before_mb"]
        grow_large = large["after_mb"] - large["before_mb"]
        print(f"GradCache (mini-batch 8) peak RSS: batch 8 {small['after_mb']:.0f} MB (+{grow_small:.0f} MB for training), "
              f"batch 64 {large['after_mb']:.0f} MB (+{grow_large:.0f} MB)")
        print(f"peak memory ratio batch 64 / batch 8: {large['after_mb'] / small['after_mb']:.3f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
