"""Reference NDCG@10 scores from the papers, for comparison tables.

C2LLM Table 2 (MTEB-Code leaderboard, 2025-12-25; mteb harness, each model with its own
instructions). Scores are percentages, keyed by mteb task name.
"""

from __future__ import annotations

_ORDER = ("AppsRetrieval", "CodeSearchNetRetrieval", "CodeSearchNetCCRetrieval", "COIRCodeSearchNetRetrieval",
          "CodeEditSearchRetrieval", "CodeFeedbackMT", "CodeFeedbackST", "CodeTransOceanContest", "CodeTransOceanDL",
          "CosQA", "StackOverflowQA", "SyntheticText2SQL")


def _row(*values: float) -> dict[str, float]:
    return dict(zip(_ORDER, values))


#: ``{model label: {task: ndcg@10 (x100)}}``; source and harness in each label.
REFERENCE_SCORES: dict[str, dict[str, float]] = {
    "C2LLM-7B (C2LLM Tab. 2, mteb)": _row(86.71, 91.07, 97.90, 89.79, 81.49, 94.32, 90.66, 92.51, 34.13, 39.76, 94.85, 75.75),
    "C2LLM-0.5B (C2LLM Tab. 2, mteb)": _row(61.02, 89.20, 96.29, 86.71, 71.39, 92.29, 88.63, 84.27, 33.99, 38.30, 89.40, 74.08),
    "Qwen3-Embedding-0.6B (C2LLM Tab. 2, mteb)": _row(75.34, 91.01, 91.72, 84.69, 64.42, 90.82, 86.39, 86.05, 31.36, 36.48, 89.99, 76.74),
    "EmbeddingGemma-0.3B (C2LLM Tab. 2, mteb)": _row(84.39, 90.15, 73.71, 75.54, 62.10, 51.42, 80.26, 85.51, 33.52, 43.60, 86.47, 58.42),
}
