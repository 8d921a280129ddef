"""Score tables and charts, one way for the curriculum's report and the evaluation report.

Scores are ``{row (a model or a stage): {set: {metric: value}}}`` with values as fractions (mteb's
``ndcg_at_10``...); tables show them x100 with a mean column. Reference rows (papers' scores,
already x100) are appended where they cover the table's sets.
"""

from __future__ import annotations

from pathlib import Path

#: Metric keys, as mteb names them, in the order reports show them.
METRICS = ("ndcg_at_10", "mrr_at_10", "recall_at_10", "map_at_100")
#: How st-code 0.1 reports spelled them (read when resuming an old run).
LEGACY_KEYS = {"ndcg_at_10": "ndcg@10", "mrr_at_10": "mrr@10", "recall_at_10": "recall@10"}


def metric_of(results: dict[str, float] | None, metric: str) -> float | None:
    if not results:
        return None
    value = results.get(metric)
    return results.get(LEGACY_KEYS.get(metric, ""), None) if value is None else value


def markdown_table(scores: dict[str, dict[str, dict[str, float]]], metric: str = "ndcg_at_10",
                   references: dict[str, dict[str, float]] | None = None) -> str:
    """A markdown table: one row per model or stage (and per reference), one column per set, and the mean."""
    sets = sorted({name for row in scores.values() for name in (row or {})})
    lines = [f"| {metric} | " + " | ".join(sets) + " | mean |", "|" + "---|" * (len(sets) + 2)]
    rows = [(label, {name: metric_of(per_set.get(name), metric) for name in sets})
            for label, per_set in scores.items() if per_set is not None]
    for label, reference in (references or {}).items():
        if any(name in reference for name in sets):
            rows.append((label, {name: reference[name] / 100 for name in sets if name in reference}))
    for label, values in rows:
        cells = [values.get(name) for name in sets]
        present = [v for v in cells if v is not None]
        mean = f"{100 * sum(present) / len(present):.2f}" if present else "-"
        lines.append(f"| {label} | " + " | ".join(f"{100 * v:.2f}" if v is not None else "-" for v in cells)
                     + f" | {mean} |")
    return "\n".join(lines)


def pyplot_agg():
    """matplotlib's pyplot on the file-only Agg backend (no display on servers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_chart(plt, fig, ax, path: Path, legend: bool = True) -> None:
    """The finish every chart shares: grid, legend, tight layout, PNG, figure closed."""
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["METRICS", "markdown_table", "metric_of", "pyplot_agg", "save_chart"]
