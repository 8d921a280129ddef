"""Which pooling (and full fine-tuning vs LoRA) to use for the embedded offline default?

    python benchmarks/pooling_comparison.py [--steps-scale 0.4] [--output-dir runs/pooling]

Runs the default Annealing recipe (recipes/annealing.py) with shortened stages for each variant on the
same data (built once, then shared), and prints held-out NDCG@10 after the last stage, side by side.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = {
    "mean, full fine-tune": {"pooling": "mean", "lora": None},
    "mean, LoRA r=32": {"pooling": "mean", "lora": {"r": 32, "alpha": 64}},
    "PMA (384-d), LoRA r=32": {"pooling": "pma", "lora": {"r": 32, "alpha": 64}},
    "last-token, full fine-tune": {"pooling": "lasttoken", "lora": None},
}
LORA_LR_FACTOR = 4.0  # LoRA adapters start at zero and want a larger step than full fine-tuning


def default_config() -> dict:
    """The recipe's embedded offline default, read from its config file."""
    return yaml.safe_load((ROOT / "recipes" / "configs" / "minilm-cpu.yaml").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps-scale", type=float, default=0.4)
    parser.add_argument("--output-dir", default="runs/pooling")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()

    from st_code.training import CurriculumRunner, config_from_dict
    from st_code.training.run_report import markdown_table

    out = Path(args.output_dir)
    shared_data = None
    finals = {}
    for name in args.variants:
        config = default_config()
        config["model"].update(VARIANTS[name])
        for stage in config["stages"]:
            stage["max_steps"] = max(1, round(stage["max_steps"] * args.steps_scale))
            if VARIANTS[name]["lora"]:
                stage["learning_rate"] *= LORA_LR_FACTOR
            if VARIANTS[name]["pooling"] == "pma":
                stage["head_learning_rate"] = 1e-3
        run_dir = out / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "").replace("=", "")
        config["output_dir"] = str(run_dir)
        if shared_data is not None and not (run_dir / "data").exists():
            shutil.copytree(shared_data, run_dir / "data")  # same base and data config: no re-mining
        # the copied data cache is checked against this config by its own fingerprint; "resume" lets the run
        # start in a folder that already holds it
        result = CurriculumRunner(config_from_dict(config), log=lambda line: None, existing_run="resume").run()
        shared_data = shared_data or run_dir / "data"
        scores = result["scores"]
        finals.setdefault("base (all-MiniLM-L6-v2 as shipped)", scores["base"])
        finals[name] = scores[list(scores)[-1]]
        print(markdown_table({name: finals[name]}).splitlines()[-1], flush=True)
    print(f"\nheld-out NDCG@10 after all stages (steps x{args.steps_scale}):")
    print(markdown_table(finals))
    (out / "comparison.json").write_text(json.dumps(finals, indent=2))


if __name__ == "__main__":
    main()
