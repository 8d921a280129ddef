"""Run report: per-stage score table (markdown + JSON) and PNG plots of scores and training loss."""

from __future__ import annotations

import json
from pathlib import Path


def write_report(report_dir: Path, scores: dict[str, dict[str, dict[str, float]]],
                 losses: dict[str, list[tuple[int, float]]], metric: str = "ndcg@10") -> str:
    """Write ``metrics.json``, ``metrics.md``, ``scores.png`` and ``loss.png``; return the markdown table.

    ``scores`` is ``{row (e.g. "base", stage name): {set name: {metric: value}}}`` in run order.
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps({"scores": scores, "losses": losses}, indent=2))
    table = markdown_table(scores, metric)
    (report_dir / "metrics.md").write_text(table + "\n")
    _plot_scores(report_dir / "scores.png", scores, metric)
    _plot_losses(report_dir / "loss.png", losses)
    return table


def markdown_table(scores: dict[str, dict[str, dict[str, float]]], metric: str = "ndcg@10") -> str:
    sets = sorted({name for row in scores.values() for name in row})
    header = f"| {metric} | " + " | ".join(sets) + " | mean |"
    lines = [header, "|" + "---|" * (len(sets) + 2)]
    for row, results in scores.items():
        values = [results.get(s, {}).get(metric) for s in sets]
        present = [v for v in values if v is not None]
        mean = sum(present) / len(present) if present else float("nan")
        cells = " | ".join(f"{100 * v:.2f}" if v is not None else "-" for v in values)
        lines.append(f"| {row} | {cells} | {100 * mean:.2f} |")
    return "\n".join(lines)


def pyplot_agg():
    """matplotlib's pyplot on the file-only Agg backend (no display on servers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_scores(path: Path, scores: dict, metric: str) -> None:
    plt = pyplot_agg()
    rows = list(scores)
    sets = sorted({name for row in scores.values() for name in row})
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(rows)), 4))
    for name in sets:
        ax.plot(rows, [100 * scores[r].get(name, {}).get(metric, float("nan")) for r in rows], marker="o", label=name)
    ax.set_ylabel(f"{metric} (x100)")
    ax.set_title("Held-out retrieval after each stage")
    _save(plt, fig, ax, path)


def _save(plt, fig, ax, path: Path) -> None:
    """The finish both charts share: grid, legend, tight layout, PNG, figure closed."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_losses(path: Path, losses: dict[str, list[tuple[int, float]]]) -> None:
    plt = pyplot_agg()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    offset = 0
    for stage, points in losses.items():
        if not points:
            continue
        ax.plot([offset + s for s, _ in points], [v for _, v in points], label=stage)
        offset += points[-1][0]
    ax.set_xlabel("step (cumulative over stages)")
    ax.set_ylabel("training loss")
    _save(plt, fig, ax, path)
