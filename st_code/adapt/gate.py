"""The gate an adapted model passes before it replaces its base, and the report that says why.

An adapted model is kept only if it is better where it was meant to be (the repository's held-out
files) and not worse elsewhere (the built-in general sets): a model that learnt the repository by
forgetting code search in general is not an improvement a team should deploy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from st_code.reporting import markdown_table, metric_of, pyplot_agg, save_chart

#: The built-in sets the gate guards (st_code.evaluation's offline sets): docstring <-> code in Python
#: (held-out standard-library modules, HumanEval) and in the other languages installed packages ship.
GENERAL_SETS = ("HumanEval-doc2code", "stdlib-doc2code", "stdlib-code2doc", "packages-doc2code", "packages-code2doc")

METRIC = "ndcg_at_10"
#: The most the mean NDCG@10 (x100) on the general sets may drop.
MAX_GENERAL_LOSS = 1.0
#: The least the mean NDCG@10 (x100) on the repository's held-out sets must rise.
MIN_REPOSITORY_GAIN = 0.0


def mean_score(scores: dict[str, dict[str, float]], names: list[str]) -> float | None:
    """Mean NDCG@10 x100 over the sets in ``names`` that have a score."""
    values = [metric_of(scores.get(name), METRIC) for name in names]
    values = [v for v in values if v is not None]
    return 100 * sum(values) / len(values) if values else None


@dataclass
class GateDecision:
    """Base and adapted means on each side of the gate, and the verdict."""

    repository_base: float
    repository_adapted: float
    general_base: float | None
    general_adapted: float | None
    accepted: bool
    reasons: list[str] = field(default_factory=list)
    max_general_loss: float = MAX_GENERAL_LOSS
    min_repository_gain: float = MIN_REPOSITORY_GAIN

    @property
    def repository_gain(self) -> float:
        return self.repository_adapted - self.repository_base

    @property
    def general_change(self) -> float | None:
        if self.general_base is None or self.general_adapted is None:
            return None
        return self.general_adapted - self.general_base

    def line(self) -> str:
        general = (f"general sets {self.general_base:.2f} -> {self.general_adapted:.2f} "
                   f"({self.general_change:+.2f}, at most -{self.max_general_loss:g} allowed)"
                   if self.general_change is not None else "no general sets")
        verdict = "kept the adapted model" if self.accepted else "kept the base model"
        return (f"{verdict}: repository held-out {self.repository_base:.2f} -> {self.repository_adapted:.2f} "
                f"({self.repository_gain:+.2f}); {general}" + ("" if self.accepted else f" ({'; '.join(self.reasons)})"))


def decide(base: dict, adapted: dict, repository_sets: list[str], general_sets: list[str],
           max_general_loss: float = MAX_GENERAL_LOSS, min_repository_gain: float = MIN_REPOSITORY_GAIN) -> GateDecision:
    """Accept when the repository mean rises by more than ``min_repository_gain`` and the general mean
    falls by at most ``max_general_loss`` (NDCG@10 x100)."""
    repo_base, repo_adapted = mean_score(base, repository_sets), mean_score(adapted, repository_sets)
    if repo_base is None or repo_adapted is None:
        raise ValueError("no repository held-out set has a score: nothing to gate on")
    general_base, general_adapted = mean_score(base, general_sets), mean_score(adapted, general_sets)
    reasons = []
    if not repo_adapted - repo_base > min_repository_gain:
        reasons.append(f"no gain on the repository's held-out files ({repo_adapted - repo_base:+.2f})")
    if general_base is not None and general_adapted is not None and general_base - general_adapted > max_general_loss:
        reasons.append(f"lost {general_base - general_adapted:.2f} NDCG@10 on the general sets "
                       f"(at most {max_general_loss:g} allowed)")
    return GateDecision(repo_base, repo_adapted, general_base, general_adapted, not reasons, reasons,
                        max_general_loss, min_repository_gain)


def language_of_set(name: str, prefix: str = "repo") -> str | None:
    """``repo-cpp-doc2code`` -> ``cpp``; ``None`` for sets that are not the repository's."""
    if not name.startswith(prefix + "-"):
        return None
    rest = name[len(prefix) + 1:]
    for suffix in ("-doc2code", "-code2doc", "-code-context"):
        if rest.endswith(suffix):
            return rest[: -len(suffix)]
    return None


def write_report(folder: Path, base: dict, adapted: dict, decision: GateDecision, repository_sets: list[str],
                 general_sets: list[str], details: dict) -> Path:
    """``report.md`` (verdict, per language, per set), ``report.json`` and ``scores.png`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    languages: dict[str, list[str]] = {}
    for name in repository_sets:
        languages.setdefault(language_of_set(name) or name, []).append(name)
    rows = []
    for language, names in sorted(languages.items()):
        before, after = mean_score(base, names), mean_score(adapted, names)
        rows.append(f"| {language} | {len(names)} | {before:.2f} | {after:.2f} | {after - before:+.2f} |")
    sizes = details.get("repository_sets", {})
    set_rows = [f"| {name} | {size['queries']} | {size['documents']} |" for name, size in sizes.items()]
    general_rows = []
    for name in general_sets:
        before, after = metric_of(base.get(name), METRIC), metric_of(adapted.get(name), METRIC)
        if before is not None and after is not None:
            general_rows.append(f"| {name} | {100 * before:.2f} | {100 * after:.2f} | {100 * (after - before):+.2f} |")
    text = [f"# st-code adapt: {details.get('repository', '')}", "", f"**{decision.line()}**", "",
            f"Base: `{details.get('model')}`. Adapted model: `{details.get('adapted_model')}`"
            + ("" if decision.accepted else " (not installed: the gate refused it)") + ".", "",
            "## Repository held-out files, per language (mean NDCG@10 x100 over its sets)", "",
            "| language | sets | base | adapted | change |", "|---|---|---|---|---|", *rows, "",
            *(["| held-out set | queries | documents searched |", "|---|---|---|", *set_rows, ""]
              if set_rows else []),
            "## General sets (built-in, NDCG@10 x100)", "",
            "| set | base | adapted | change |", "|---|---|---|---|", *general_rows, "",
            "## Every set", "", markdown_table({"base": base, "adapted": adapted}), "",
            "## Data and time", "", "```json", json.dumps(details, indent=2, default=str), "```", ""]
    (folder / "report.md").write_text("\n".join(text), encoding="utf-8")
    (folder / "report.json").write_text(json.dumps({"decision": asdict(decision), "base": base, "adapted": adapted,
                                                    "repository_sets": repository_sets, "general_sets": general_sets,
                                                    "details": details}, indent=2, default=str), encoding="utf-8")
    _plot(folder / "scores.png", base, adapted, repository_sets + general_sets)
    return folder / "report.md"


def _plot(path: Path, base: dict, adapted: dict, names: list[str]) -> None:
    plt = pyplot_agg()
    names = [n for n in names if metric_of(base.get(n), METRIC) is not None and metric_of(adapted.get(n), METRIC) is not None]
    if not names:
        return
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(names) + 2), 4))
    positions = range(len(names))
    ax.bar([p - 0.2 for p in positions], [100 * metric_of(base[n], METRIC) for n in names], width=0.4, label="base")
    ax.bar([p + 0.2 for p in positions], [100 * metric_of(adapted[n], METRIC) for n in names], width=0.4,
           label="adapted")
    ax.set_xticks(list(positions))
    ax.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("NDCG@10 x100")
    ax.set_title("base vs adapted")
    save_chart(plt, fig, ax, path)


__all__ = ["GateDecision", "decide", "write_report", "mean_score", "MAX_GENERAL_LOSS", "MIN_REPOSITORY_GAIN"]
