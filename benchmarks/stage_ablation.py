"""Does each stage of the embedded offline default earn its minutes? A stage-plan ablation.

    python benchmarks/stage_ablation.py [--output-dir runs/ablation] [--plans ...]

Runs the default recipe (recipes/configs/minilm-cpu.yaml) once per stage plan on the same data (built and
mined once, then shared), and prints, per plan and per stage: the stage's minutes (its filters,
training and saving: ``wall_seconds`` of the stage record), the held-out NDCG@10 mean after it, and
the gain per minute over the stage before. "with stage 3" is CodeR's third stage (code-only, filtered by
the untrained base) on top of the default; "python-only" is the default before st-code used other
languages' code (three stages, Python pairs only), for the packages-* sets. Plans with other stage names
mine their own data (the data cache is keyed by the stages' datasets).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def default_config() -> dict:
    return yaml.safe_load((ROOT / "recipes" / "configs" / "minilm-cpu.yaml").read_text())


def _stage(config: dict, name: str) -> dict:
    return copy.deepcopy(next(s for s in config["stages"] if s["name"] == name))


#: CodeR's stage 3 as the default had it until this ablation: code-only, 30 steps, the samples the untrained
#: base already ranks first dropped (k=1), 500 a dataset.
CODE_FILTERED = {
    "name": "code-filtered", "learning_rate": 1.0e-5, "max_steps": 30, "max_samples_per_dataset": 500,
    "batch_size": 32, "num_negatives": 1, "temperature": 0.05, "gradcache": False,
    "datasets": ["offline:Code Explanation to Implementation Retrieval", "offline:Code Summary Retrieval",
                 "offline:Code Context Retrieval"],
    "filters": [{"type": "embedder_topk", "k": 1, "model": "minilm"}],
}


def plan(name: str) -> dict:
    """The default config with the stage plan ``name``."""
    config = default_config()
    stages = {s["name"]: s for s in config["stages"]}
    if name == "default":
        return config
    if name == "with stage 3":  # the three stages of CodeR's Annealing
        config["stages"].append(copy.deepcopy(CODE_FILTERED))
        return config
    if name == "python-only":  # the default data before other languages (with the three stages it had then)
        config["data"]["offline"]["other_languages"] = False
        config["stages"].append(copy.deepcopy(CODE_FILTERED))
        return config
    if name == "text+code only":  # stage 2 alone, given stage 1's steps too
        code = _stage(config, "text+code")
        code["max_steps"] += stages["text"]["max_steps"]
        config["stages"] = [code]
        return config
    if name == "text, text+code long":  # stage 3's steps given to stage 2 instead
        code = _stage(config, "text+code")
        code["max_steps"] += CODE_FILTERED["max_steps"]
        config["stages"] = [_stage(config, "text"), code]
        return config
    raise SystemExit(f"unknown plan {name!r}")


PLANS = ["with stage 3", "default", "text+code only", "text, text+code long", "python-only"]


def mean(scores: dict) -> float:
    values = [100 * v["ndcg_at_10"] for v in scores.values()]
    return sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="runs/ablation")
    parser.add_argument("--plans", nargs="*", default=PLANS, choices=PLANS)
    args = parser.parse_args()

    from st_code.training import CurriculumRunner, config_from_dict
    from st_code.training.report import markdown_table

    out = Path(args.output_dir)
    shared: dict[bool, Path] = {}
    rows, finals = [], {}
    for name in args.plans:
        config = plan(name)
        run_dir = out / name.replace(" ", "_").replace(",", "").replace("+", "p")
        config["output_dir"] = str(run_dir)
        key = config["data"]["offline"]["other_languages"]
        if key in shared and not (run_dir / "data").exists():
            shutil.copytree(shared[key] / "data", run_dir / "data")  # same data config: no re-mining
            shutil.copy(shared[key] / "base_scores.json", run_dir / "base_scores.json")
        start = time.time()
        result = CurriculumRunner(config_from_dict(config), log=lambda line: None, existing_run="resume").run()
        wall = time.time() - start
        shared.setdefault(key, run_dir)
        scores = result["scores"]
        finals.setdefault(f"base ({'all languages' if key else 'python-only'} sets)", scores["base"])
        previous = mean(scores["base"])
        for stage in config["stages"]:
            record = json.loads((run_dir / "stages" / f"{config['stages'].index(stage) + 1}-{stage['name']}"
                                 / "DONE.json").read_text())
            minutes = record.get("wall_seconds", record["train"].get("train_runtime", 0.0)) / 60
            after = mean(scores[stage["name"]])
            rows.append((name, stage["name"], stage["max_steps"], minutes, after, (after - previous) / max(minutes, 1e-9)))
            previous = after
        finals[name] = scores[list(scores)[-1]]
        print(f"{name}: mean {mean(finals[name]):.2f} after {wall / 60:.1f} min wall", flush=True)
    print("\n| plan | stage | steps | stage min | mean NDCG@10 after | gain per min |\n|---|---|---|---|---|---|")
    for name, stage, steps, minutes, after, rate in rows:
        print(f"| {name} | {stage} | {steps} | {minutes:.1f} | {after:.2f} | {rate:+.2f} |")
    print("\nheld-out NDCG@10 after the last stage of each plan:")
    print(markdown_table(finals))
    (out / "ablation.json").write_text(json.dumps({"rows": rows, "finals": finals}, indent=2))


if __name__ == "__main__":
    main()
