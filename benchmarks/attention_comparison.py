"""The attention settings of one gpu_training_check.sh call side by side, each against the first.

    python benchmarks/attention_comparison.py runs/gpu-check/attention.json

Per setting (its packed run): s/step, samples/s, real tokens/s, MFU on real tokens, peak memory, the
ratios of s/step and real tokens/s to the first setting, and the largest gap between its loss curve and
the first's over the steps both ran (the maths must not change: bf16 noise only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _figure(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern.rstrip("%")) + ("%" if pattern.endswith("%") else "")


def comparison_lines(runs: dict[str, dict], asked: list[str] | None = None) -> list[str]:
    """The table's lines for ``{setting: train_throughput.py's JSON of a packed run}``; ``asked``: every
    setting the check ran, so those without figures are named."""
    packed = {name: result["packed"][0] for name, result in runs.items() if result.get("packed")}
    missing = [name for name in (asked or list(runs)) if name not in packed]
    if not packed:
        return ["no attention setting finished a packed run"]
    first_name, first = next(iter(packed.items()))
    lines = [f"{'setting':<14} {'s/step':>7} {'samples/s':>9} {'real tok/s':>10} {'MFU':>6} {'peak GB':>7} "
             f"{'s/step ratio':>12} {'tok/s ratio':>11} {'loss gap':>9}"]
    for name, run in packed.items():
        steps = min(len(run["losses"]), len(first["losses"]))
        gap = max((abs(a - b) for a, b in zip(run["losses"][:steps], first["losses"][:steps])), default=0.0)
        mfu = run.get("mfu")
        lines.append(
            f"{name:<14} {run['seconds_per_step']:>7.3f} {run['samples_per_s']:>9.1f} "
            f"{run['real_tokens_per_s']:>10.0f} "
            f"{_figure(None if mfu is None else 100 * mfu, '.1f%'):>6} {_figure(run.get('peak_memory_gb'), '.2f'):>7} "
            f"{run['seconds_per_step'] / first['seconds_per_step']:>11.2f}x "
            f"{run['real_tokens_per_s'] / first['real_tokens_per_s']:>10.2f}x {gap:>9.4f}")
    lines.append(f"ratios and loss gaps against {first_name}; loss gap: the largest |loss - {first_name}'s loss| over "
                 "the steps both ran")
    for name, run in packed.items():
        lines.append(f"loss curve, {name}: " + ", ".join(f"{x:.4f}" for x in run["losses"]))
    if missing:
        lines.append(f"no packed run finished for: {', '.join(missing)} (see attention.log)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, help="attention.json written by benchmarks/gpu_training_check.sh")
    parser.add_argument("--asked", default="", help="comma-separated: every setting the check ran")
    args = parser.parse_args()
    runs = json.loads(args.runs.read_text()) if args.runs.is_file() else {}
    print("\n".join(comparison_lines(runs, [a for a in args.asked.split(",") if a] or None)))


if __name__ == "__main__":
    main()
