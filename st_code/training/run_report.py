"""Run report: per-stage score table (markdown + JSON) and PNG plots of scores and training loss."""

from __future__ import annotations

import json
from pathlib import Path

from st_code.reporting import markdown_table, metric_of, pyplot_agg, save_chart


def write_report(report_dir: Path, scores: dict[str, dict[str, dict[str, float]]],
                 losses: dict[str, list[tuple[int, float]]], metric: str = "ndcg_at_10") -> str:
    """Write ``metrics.json``, ``metrics.md``, ``scores.png`` and ``loss.png``; return the markdown table.

    ``scores`` is ``{row (e.g. "base", stage name): {set name: {metric: value}}}`` in run order.
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps({"scores": scores, "losses": losses}, indent=2))
    if not any(scores.values()):  # a run configured without evaluation sets (st-code adapt scores on its own)
        table = "no evaluation sets were configured (evaluation.sets is empty)"
    else:
        table = markdown_table(scores, metric)
        _plot_scores(report_dir / "scores.png", scores, metric)
    (report_dir / "metrics.md").write_text(table + "\n")
    _plot_losses(report_dir / "loss.png", losses)
    return table


def _plot_scores(path: Path, scores: dict, metric: str) -> None:
    plt = pyplot_agg()
    rows = [row for row in scores if scores[row] is not None and " @" not in row]  # "stage @dim": table only
    sets = sorted({name for row in rows for name in scores[row]})
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(rows)), 4))
    for name in sets:
        values = [metric_of(scores[r].get(name), metric) for r in rows]
        ax.plot(rows, [100 * v if v is not None else float("nan") for v in values], marker="o", label=name)
    ax.set_ylabel(f"{metric} (x100)")
    ax.set_title("Held-out retrieval after each stage")
    save_chart(plt, fig, ax, path)


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
    save_chart(plt, fig, ax, path)


__all__ = ["write_report", "markdown_table", "pyplot_agg"]
