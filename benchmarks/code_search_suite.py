"""Code search on a public suite: MinishLab's Semble benchmark (or any suite in its annotation format),
scored exactly as the suite scores it: st-code's search modes beside BM25 over the same units.

The suite folder holds ``repos.json`` (name, language, url, pinned revision, ``benchmark_root``) and
``annotations/<repo>.json`` (queries with ``relevant`` / ``secondary`` targets: a path, optionally a line
span, and a ``category``). Nothing downloads here: prepare one checkout per repository at its pinned
revision under ``--checkouts`` yourself, e.g. from a clone of each::

    git -C clones/click archive 04ef3a6f473deb2499721a8d11f92a7d2c0912f2 | tar -x -C checkouts/click

    python benchmarks/code_search_suite.py --suite semble/benchmarks --checkouts checkouts [--repos click flask]

Scoring (the suite's own): each query's top 10 units; a target's rank is that of the first unit whose
file path ends with the target's and whose lines overlap its span; NDCG@10 with binary gains over the
targets that some indexed unit covers; a repository's score is its queries' mean, the suite's the mean
of its repositories. Printed per repository and per category, with index time and units/s.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

K = 10


def load_suite(suite: Path, checkouts: Path, repos: list[str] | None) -> list[dict]:
    """Repositories that have both a checkout and annotations, each with its queries."""
    specs = {spec["name"]: spec for spec in json.loads((suite / "repos.json").read_text())}
    result = []
    for name, spec in specs.items():
        annotations = suite / "annotations" / f"{name}.json"
        root = checkouts / name / (spec.get("benchmark_root") or "")
        if (repos and name not in repos) or not annotations.is_file() or not root.is_dir():
            continue
        queries = [{"query": item["query"], "category": item.get("category") or infer_category(item["query"]),
                    "targets": [_target(t) for t in item.get("relevant", []) + item.get("secondary", [])]}
                   for item in json.loads(annotations.read_text())]
        result.append({"name": name, "language": spec["language"], "root": root, "queries": queries})
    return result


def infer_category(query: str) -> str:
    """The suite's rule for queries without a category."""
    if " " not in query.strip():
        return "symbol"
    return "architecture" if query.lower().startswith("how ") else "semantic"


def _target(raw) -> tuple[str, int | None, int | None]:
    if isinstance(raw, str):
        return raw, None, None
    start, end = raw.get("start_line"), raw.get("end_line")
    return str(raw["path"]), int(start) if start is not None else None, int(end) if end is not None else None


def covers(unit: dict, target: tuple[str, int | None, int | None]) -> bool:
    """The suite's match: the unit's path ends with the target's, and their lines overlap (if it has a span)."""
    path, start, end = target
    file = unit["path"].replace("\\", "/")
    if not (file == path or file.endswith("/" + path)):
        return False
    return start is None or end is None or not (unit["end_line"] < start or unit["start_line"] > end)


def ndcg_at_10(ranked: list[dict], targets: list, units: list[dict]) -> float:
    """The suite's NDCG@10: binary gains at each target's first covering rank, over the indexed targets."""
    indexed = sum(1 for t in targets if any(covers(u, t) for u in units))
    if not indexed:
        return 0.0
    gains = [0] * K
    for target in targets:
        rank = next((i for i, unit in enumerate(ranked[:K]) if covers(unit, target)), None)
        if rank is not None:
            gains[rank] = 1
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    return dcg / sum(1 / math.log2(i + 2) for i in range(min(K, indexed)))


def code_tokens(text: str) -> list[str]:
    """Identifiers whole and split at camelCase / snake_case, lowercased (BM25's vocabulary)."""
    tokens = []
    for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\d+", text):
        tokens.append(word.lower())
        parts = [p for chunk in word.split("_") for p in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", chunk)]
        if len(parts) > 1:
            tokens.extend(p.lower() for p in parts)
    return tokens


class BM25:
    """Okapi BM25 (k1 1.5, b 0.75) over the units' path, symbol and text: the lexical baseline."""

    def __init__(self, units: list[dict], k1: float = 1.5, b: float = 0.75) -> None:
        self.docs = [Counter(code_tokens(f"{u['path']} {u['symbol']} {u['text']}")) for u in units]
        lengths = np.array([sum(d.values()) for d in self.docs], dtype=np.float64)
        self.norm = k1 * (1 - b + b * lengths / max(1.0, lengths.mean()))
        frequency = Counter(term for d in self.docs for term in d)
        self.idf = {t: math.log(1 + (len(self.docs) - n + 0.5) / (n + 0.5)) for t, n in frequency.items()}
        self.k1 = k1

    def search(self, query: str, k: int) -> list[int]:
        scores = np.zeros(len(self.docs))
        for term in set(code_tokens(query)):
            if term in self.idf:
                tf = np.array([d.get(term, 0) for d in self.docs], dtype=np.float64)
                scores += self.idf[term] * tf * (self.k1 + 1) / (tf + self.norm)
        return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def run_repository(repo: dict, model: str, work: Path, modes: list[str], reranker=None) -> dict:
    from st_code.search import CodeSearcher, build_index, update_index

    out = work / repo["name"]
    start = time.perf_counter()
    if (out / "manifest.json").is_file():  # a kept index: brought up to date, nothing re-embedded if unchanged;
        # refused (with the rebuild command) when it was built with another model than --model
        update_index(out, repo["root"], model=model, log=lambda line: None, progress=False)
    else:
        build_index(repo["root"], out, model=model, log=lambda line: None, progress=False)
    seconds = time.perf_counter() - start
    root = Path(repo["root"]).resolve().as_posix()
    # paths as the suite sees them: absolute, so a target written from the checkout's top ("lib/view.js")
    # matches a unit of an index rooted below it ("view.js")
    searcher = CodeSearcher(out)
    units = searcher.units(range(len(searcher.offsets)))
    for unit in units:
        unit["path"] = f"{root}/{unit['path']}"
    queries = [q["query"] for q in repo["queries"]]
    ranked = {}
    for mode in modes:  # "hybrid-rrf": fusion rrf; "hybrid+rerank": the cross-encoder after the ranking
        base, _, rerank = mode.partition("+")
        mode_searcher = CodeSearcher(out, model=searcher.model, mode=base.split("-")[0],
                                     fusion=base.split("-")[1] if "-" in base else "blend",
                                     reranker=reranker if rerank else None)
        start_search = time.perf_counter()
        hits = mode_searcher.search(queries, k=K)
        ranked[mode] = [[{"path": f"{root}/{h.path}", "start_line": h.start_line, "end_line": h.end_line}
                         for h in found] for found in hits]
        ranked[mode + " ms/q"] = (time.perf_counter() - start_search) * 1000 / len(queries)
    lexical = BM25(units)
    rows = []
    for i, query in enumerate(repo["queries"]):
        row = {"query": query["query"], "category": query["category"]}
        for mode in modes:
            row[mode] = ndcg_at_10(ranked[mode][i], query["targets"], units)
        row["bm25"] = ndcg_at_10([units[j] for j in lexical.search(query["query"], K)], query["targets"], units)
        rows.append(row)
    return {"repo": repo["name"], "language": repo["language"], "units": len(units), "index_seconds": seconds,
            "ms_per_query": {m: ranked[m + " ms/q"] for m in modes}, "queries": rows}


def summary(results: list[dict], methods: list[str]) -> list[str]:
    """Per repository, per category (each repository's queries averaged first) and overall."""
    head = " ".join(f"{m:>13}" for m in methods)
    lines = [f"{'repository':<20} {'language':<11} {'units':>6} {'index s':>8} {'units/s':>8} {head}"]
    for r in results:
        r["mean"] = {m: sum(q[m] for q in r["queries"]) / len(r["queries"]) for m in methods}
        lines.append(f"{r['repo']:<20} {r['language']:<11} {r['units']:>6} {r['index_seconds']:>8.1f} "
                     f"{r['units'] / r['index_seconds']:>8.0f} " + " ".join(f"{r['mean'][m]:>13.3f}" for m in methods))
    for category in sorted({q["category"] for r in results for q in r["queries"]}):
        per_repo = [[q for q in r["queries"] if q["category"] == category] for r in results]
        per_repo = [qs for qs in per_repo if qs]
        score = {m: sum(sum(q[m] for q in qs) / len(qs) for qs in per_repo) / len(per_repo) for m in methods}
        lines.append(f"{'category ' + category:<40} {sum(map(len, per_repo)):>6} q {'':>8} "
                     + " ".join(f"{score[m]:>13.3f}" for m in methods))
    overall = {m: sum(r["mean"][m] for r in results) / len(results) for m in methods}
    lines.append(f"{'mean over ' + str(len(results)) + ' repositories':<58} "
                 + " ".join(f"{overall[m]:>13.3f}" for m in methods))
    timed = [r.get("ms_per_query", {}) for r in results]
    lines.append(f"{'ms per query (mean over repositories)':<58} " + " ".join(
        f"{sum(t[m] for t in timed) / len(timed):>13.1f}" if all(m in t for t in timed) else f"{'-':>13}"
        for m in methods))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", type=Path, required=True, help="folder with repos.json and annotations/")
    parser.add_argument("--checkouts", type=Path, required=True, help="folder with one checkout per repository")
    parser.add_argument("--repos", nargs="+", default=None, help="only these repositories")
    parser.add_argument("--model", default="minilm", help="the model to index with (default: the packaged MiniLM)")
    parser.add_argument("--modes", nargs="+", default=["hybrid", "dense"],
                        help="st-code search modes to score: hybrid, dense, lexical, hybrid-rrf (default: hybrid "
                             "dense); BM25 over the same units is always scored beside them")
    parser.add_argument("--rerank", metavar="CROSS_ENCODER|llm:MODEL",
                        help="also score each mode followed by this reranker (MODE+rerank columns, with their ms "
                             "per query): a CrossEncoder folder or hub id, or llm:MODEL (a chat model)")
    parser.add_argument("--rerank-candidates", type=int, default=None,
                        help="candidates reread per query (default: 30 for a cross-encoder, 10 for an LLM)")
    parser.add_argument("--rerank-api-base", metavar="URL", help="the OpenAI-compatible server of --rerank llm:MODEL")
    parser.add_argument("--json", type=Path, default=None, help="also write every query's scores here")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the indexes in this folder and reuse them on the next run (index time then "
                             "measures an update, not a build)")
    args = parser.parse_args(argv)
    repos = load_suite(args.suite, args.checkouts, args.repos)
    reranker = None
    if args.rerank_api_base and not args.rerank:
        parser.error("--rerank-api-base goes with --rerank llm:MODEL")
    if args.rerank:
        from st_code.search.rerank import make_reranker

        reranker = make_reranker(args.rerank, args.rerank_candidates, api_base=args.rerank_api_base)
        args.modes = args.modes + [f"{mode}+rerank" for mode in args.modes]
    if not repos:
        parser.error(f"no repository of {args.suite}/repos.json has both annotations and a checkout under {args.checkouts}")
    if args.keep:
        from st_code.errors import UsageError

        args.keep.mkdir(parents=True, exist_ok=True)
        try:
            results = [run_repository(repo, args.model, args.keep, args.modes, reranker) for repo in repos]
        except UsageError as exc:  # a kept index of another model: its scores would not be --model's
            parser.exit(2, f"error: {exc} (or keep this model's indexes in another --keep folder)\n")
    else:
        with tempfile.TemporaryDirectory() as work:
            results = [run_repository(repo, args.model, Path(work), args.modes, reranker) for repo in repos]
    if hasattr(reranker, "close"):
        reranker.close()  # an LLM reranker's connections
    for line in summary(results, args.modes + ["bm25"]):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
