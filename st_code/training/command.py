"""``st-code train`` (and ``python recipes/annealing.py``, a thin wrapper): the Annealing curriculum from
a YAML config, with overrides (``--set``), a dry run, config printing and the one-line errors."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HELP = """CodeR's Annealing curriculum, end to end: data -> stages -> before/after evaluation -> saved model.

With no --config it runs the embedded offline default on CPU (under 20 minutes on 2 cores): the packaged
all-MiniLM-L6-v2 trained on retrieval pairs built from the Python standard library, installed packages'
READMEs and documented C/C++ code, and Java from the installed JDK's sources, evaluated before and after
on held-out modules, package files and HumanEval. Nothing is downloaded. CodeR's stages (section 4):
1) text-only, 2) text + code, 3) code-only, filtered to the samples a reference embedder finds hard;
the CPU default runs one text + code stage, the GPU configs all three.

Examples:
    st-code train                                                  # offline default -> runs/annealing
    st-code train --output-dir /tmp/run                            # elsewhere
    st-code train --config coder-1.5b                              # a shipped GPU config, by name (hub access)
    accelerate launch -m st_code train --config c2llm-0.5b         # multi-GPU
    st-code train --print-config > my.yaml                         # start your own config
    st-code train --config c2llm-0.5b --dry-run                    # check a config in minutes
    st-code train --config my.yaml --set stages.0.max_steps=100 model.dtype=null   # override keys

Shipped configs: minilm-cpu (the default), coder-1.5b (CodeR), c2llm-0.5b (C2LLM), codexembed-2stage
(CodeXEmbed). Re-running the same command resumes: finished stages are skipped, an interrupted stage
continues from its last checkpoint. Outputs: DIR/final (load with SentenceTransformer(DIR/final), adding
trust_remote_code=True for PMA or bidirectional models, or with st_code.load_model), DIR/stages/*,
DIR/report/{metrics.md,metrics.json,scores.png,loss.png}. ``python recipes/annealing.py`` is the same
command.
"""
#: The shipped configs, by name.
SHIPPED = ("minilm-cpu", "c2llm-0.5b", "coder-1.5b", "codexembed-2stage")
#: The configs st-code ships (package data; ``recipes/configs/`` in a checkout links to them).
CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"
#: The embedded offline default (a config file like the others): run when no --config is given.
DEFAULT_CONFIG_FILE = CONFIGS_DIR / "minilm-cpu.yaml"


def build_parser(prog: str = "st-code train") -> argparse.ArgumentParser:
    """The training command's arguments (``st-code train`` and ``python recipes/annealing.py`` alike)."""
    parser = argparse.ArgumentParser(prog=prog, description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a YAML curriculum, or the name of a shipped one (" + ", ".join(SHIPPED) +
                                         "); default: the embedded offline one, minilm-cpu")
    parser.add_argument("--output-dir", help="where DIR/final, DIR/stages and DIR/report go (overrides the config)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override config keys, dotted paths with list indices, values in YAML: "
                             "--set model.base=/models/qwen stages.0.max_steps=100 data.sources.csn.path=csn.jsonl")
    parser.add_argument("--print-config", action="store_true", help="print the effective config as YAML and exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="check a config end to end in minutes: read every source (its first "
                             f"{DRY_RUN_ROWS} rows), mine, filter, take one optimizer step per stage at a batch of at "
                             f"most {DRY_RUN_BATCH}, evaluate on {DRY_RUN_QUERIES} queries, save; output goes to "
                             "<output_dir>-dry-run unless --output-dir is given")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true",
                          help="the output folder holds a run started with another config, data or st-code version: "
                               "remove that run's outputs and start fresh")
    existing.add_argument("--resume-anyway", action="store_true",
                          help="the output folder holds a run started with another setup: keep its finished stages "
                               "and go on with this one (the change is noted in DIR/run.json)")
    parser.add_argument("--push-to-hub", metavar="OWNER/NAME",
                        help="upload the final model (its folder as saved, model card included) to this hub "
                             "repository when the run ends; sets publish.hub_model_id (private unless "
                             "publish.private is false); needs a write token (huggingface-cli login or HF_TOKEN)")
    parser.add_argument("--steps-scale", type=float, default=1.0,
                        help="multiply every stage's max_steps (e.g. 0.1 for a smoke run); default 1")
    return parser


def parse_args(argv: list[str] | None = None, prog: str = "st-code train") -> argparse.Namespace:
    return build_parser(prog).parse_args(argv)


DRY_RUN_ROWS, DRY_RUN_BATCH, DRY_RUN_QUERIES = 256, 8, 20


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["a.b.0.c=value", ...]`` -> ``data`` with those keys set (values parsed as YAML)."""
    import yaml

    from st_code.training import ConfigError

    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. stages.0.max_steps=100")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"--set {item}: the value is not valid YAML ({problem}); quote it, e.g. "
                              f"--set '{key}=[1, 2]' or '{key}={{r: 8, alpha: 16}}'") from None
        node, parts = data, key.split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {key}: {where} is not an index of a list of {len(node)}")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
                    if node is None:
                        node = {}
            else:
                raise ConfigError(f"--set {key}: {'.'.join(parts[:depth])} is not a mapping or a list")
    return data


def _whole(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def dry_run(data: dict) -> dict:
    """The same config, shrunk so every part runs once: few rows, one step per stage, tiny evaluation."""
    for source in (data.get("data") or {}).get("sources", {}).values():
        if isinstance(source, dict):
            source["max_samples"] = min(source.get("max_samples") or DRY_RUN_ROWS, DRY_RUN_ROWS)
    offline = (data.get("data") or {}).get("offline")
    if isinstance(offline, dict):
        offline["max_pairs_per_task"] = min(offline.get("max_pairs_per_task") or 64, 64)
    for stage in data.get("stages") or []:
        if isinstance(stage, dict):
            stage.update(max_steps=1, save_steps=1, warmup_steps=0,
                         batch_size=min(stage.get("batch_size", 32), DRY_RUN_BATCH),
                         mini_batch_size=min(_whole(stage.get("mini_batch_size")) or DRY_RUN_BATCH, DRY_RUN_BATCH) // 2)
            stage.pop("epochs", None)
    evaluation = data.setdefault("evaluation", {}) or {}
    evaluation["max_queries"] = min(evaluation.get("max_queries") or DRY_RUN_QUERIES, DRY_RUN_QUERIES)
    data["evaluation"] = evaluation
    data["output_dir"] = str(data.get("output_dir") or "runs/annealing") + "-dry-run"
    publish = data.get("publish")
    if isinstance(publish, dict) and publish.pop("hub_model_id", None):
        print("dry run: the final model is not pushed to the hub", file=sys.stderr)
    return data


def load_raw(path: str | None) -> dict:
    import yaml

    from st_code.training import ConfigError

    path = path or DEFAULT_CONFIG_FILE
    if not Path(path).exists() and path in SHIPPED:  # a shipped config by name: st-code train --config c2llm-0.5b
        path = CONFIGS_DIR / f"{path}.yaml"
    if Path(path).is_dir():
        raise ConfigError(f"--config {path} is a folder; pass the YAML file itself (e.g. recipes/configs/minilm-cpu.yaml)")
    if not Path(path).is_file():
        raise ConfigError(f"config file {path} does not exist" if not Path(path).exists()
                          else f"config file {path} is not a regular file; pass a YAML file")
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config as UTF-8") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping of config keys")
    return data


def main(argv: list[str] | None = None, prog: str = "st-code train") -> int:
    args = parse_args(argv, prog)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # training owns its process: no tokenizer fork warnings
    from st_code.errors import run_command

    return run_command(lambda: run(args))


def run(args: argparse.Namespace) -> int:
    """The recipe for parsed arguments (``main`` adds the one-line errors)."""
    import copy

    import yaml

    from st_code.training import ConfigError, config_from_dict

    try:
        data = apply_overrides(load_raw(args.config), args.overrides)
        if args.push_to_hub:
            data.setdefault("publish", {})["hub_model_id"] = args.push_to_hub
        if args.dry_run:  # the dry run checks the config the real run would get, then shrinks it
            config_from_dict(copy.deepcopy(data))
            data = dry_run(data)
        config = config_from_dict(data)
    except ConfigError as exc:
        print(f"error: bad config: {exc}", file=sys.stderr)
        return 2
    if args.output_dir:
        config.output_dir = args.output_dir
    if not args.steps_scale > 0:
        print(f"error: --steps-scale must be > 0, got {args.steps_scale}", file=sys.stderr)
        return 2
    if args.steps_scale != 1.0:
        for stage in config.stages:
            if stage.max_steps is not None:
                stage.max_steps = max(1, round(stage.max_steps * args.steps_scale))
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False))
        return 0

    from st_code.training import CurriculumRunner
    from st_code.training.process_group import close_process_group

    start = time.time()
    existing = "overwrite" if args.overwrite else "resume" if args.resume_anyway else "refuse"
    try:
        result = CurriculumRunner(config, existing_run=existing).run()
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume (finished stages and checkpoints are kept)",
              file=sys.stderr)
        return 130
    if "table" in result:
        print(f"\nbefore (base) / after (last stage) NDCG@10 on held-out sets; total time {time.time() - start:.0f}s")
    close_process_group()  # launched by torchrun / accelerate: every rank ends together, cleanly
    return 0


__all__ = ["main", "run", "build_parser", "parse_args", "apply_overrides", "dry_run", "load_raw", "DEFAULT_CONFIG_FILE",
           "CONFIGS_DIR", "SHIPPED", "DRY_RUN_ROWS", "DRY_RUN_BATCH", "DRY_RUN_QUERIES"]
