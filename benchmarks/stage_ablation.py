"""Does each stage of the embedded offline default earn its minutes? A stage-plan ablation.

    python benchmarks/stage_ablation.py [--output-dir runs/ablation] [--plans ...]

Runs the default recipe (recipes/configs/minilm-cpu.yaml: one ``text+code`` stage of 65 steps) once per
stage plan, and prints, per plan and per stage: the stage's minutes (its filters, training and saving:
``wall_seconds`` of the stage record), the held-out NDCG@10 mean after it, and the gain per minute over
the stage before. The plans are CodeR's Annealing at this scale and its variants, all built from the
default's ``text+code`` stage:

* "with stage 3": ``text`` (10 steps) -> ``text+code`` (55) -> ``code-filtered`` (30, code only, the
  samples the untrained base already ranks first dropped): CodeR's three stages;
* "text, text+code": the first two of them (the default until this ablation);
* "text+code only" (= "default"): stage 1's steps given to stage 2;
* "text, text+code long": stage 3's steps given to stage 2;
* "python-only": the three stages on the Python pairs alone (before st-code used other languages' code).

Plans share data where their stages name the same datasets (the data cache is keyed by them).
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


#: CodeR's stage 1 at this scale: text retrieval only, 10 steps.
TEXT = {"name": "text", "datasets": ["offline:Text Retrieval"], "learning_rate": 3.0e-5, "max_steps": 10,
        "batch_size": 32, "num_negatives": 1, "temperature": 0.05, "gradcache": False}
#: CodeR's stage 3 at this scale: code-only, 30 steps, the samples the untrained base already ranks first
#: dropped (k=1), 500 a dataset.
CODE_FILTERED = {
    "name": "code-filtered", "learning_rate": 1.0e-5, "max_steps": 30, "max_samples_per_dataset": 500,
    "batch_size": 32, "num_negatives": 1, "temperature": 0.05, "gradcache": False,
    "datasets": ["offline:Code Explanation to Implementation Retrieval", "offline:Code Summary Retrieval",
                 "offline:Code Context Retrieval"],
    "filters": [{"type": "embedder_topk", "k": 1, "model": "minilm"}],
}
#: Steps of CodeR's stage 2 at this scale, with stage 1 before it.
CODE_STEPS = 55


def plan(name: str) -> dict:
    """The default config with the stage plan ``name``."""
    config = default_config()
    code = _stage(config, "text+code")
    code["max_steps"] = CODE_STEPS

    def steps(stage: dict, count: int) -> dict:
        return {**stage, "max_steps": count}

    if name in ("default", "text+code only"):
        return config
    if name == "with stage 3":
        config["stages"] = [copy.deepcopy(TEXT), code, copy.deepcopy(CODE_FILTERED)]
    elif name == "text, text+code":
        config["stages"] = [copy.deepcopy(TEXT), code]
    elif name == "text, text+code long":
        config["stages"] = [copy.deepcopy(TEXT), steps(code, CODE_STEPS + CODE_FILTERED["max_steps"])]
    elif name == "python-only":
        config["data"]["offline"]["other_languages"] = False
        config["stages"] = [copy.deepcopy(TEXT), code, copy.deepcopy(CODE_FILTERED)]
    else:
        raise SystemExit(f"unknown plan {name!r}")
    return config


PLANS = ["with stage 3", "text, text+code", "default", "text, text+code long", "python-only"]
#: Accepted too: the name the default had in the ablation that chose it.
ALIASES = ["text+code only"]


def mean(scores: dict) -> float:
    values = [100 * v["ndcg_at_10"] for v in scores.values()]
    return sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="runs/ablation")
    parser.add_argument("--plans", nargs="*", default=PLANS, choices=PLANS + ALIASES)
    args = parser.parse_args()

    from st_code.training import CurriculumRunner, config_from_dict
    from st_code.training.run_report import markdown_table

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
