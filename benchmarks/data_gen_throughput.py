"""data_gen speed: LLM call throughput at high concurrency against a fixed-delay local server, the
pipeline's own CPU time per call, and hard-negative mining time split into embedding and search.

    python benchmarks/data_gen_throughput.py [--calls 6400] [--concurrency 64] [--delay 0.1]
                                             [--pairs 2000] [--docs 10000] [--full-scale]
                                             [--skip-calls] [--skip-mining]

1. A real OpenAI-compatible server (tests/openai_stub.py, aiohttp) runs in a separate process and
   answers after ``--delay`` seconds. ``--calls`` completions through ``st_code.llm.client.LLMClient`` at
   ``--concurrency``, once per client (the lean OpenAI-compatible one, litellm's Router), side by
   side: calls/s vs the ideal concurrency/delay, and client CPU per call.
2. The generate stage of the real pipeline (``Pipeline.run("generate")``: planning, Table 11 prompts,
   validation, journal, progress bar, output file) over ``--calls`` work items with the default
   client. Target (issue #4): >= 90% of concurrency/delay. Its CPU per call minus the bare client's
   is the pipeline's own cost. Target: < 2 ms per call.
3. ``data_gen.negatives.mine`` (sentence-transformers' ``mine_hard_negatives`` with faiss, 15 negatives,
   relative margin 0.05) for ``--pairs`` pairs over ``--docs`` corpus documents with the packaged
   MiniLM, twice side by side: float32 at batch 64 (the pipeline's settings before ``--embedder-dtype``) and
   the defaults (bf16 where the CPU has it, batch 32 on CPU); time split into embedding (measured
   inside the embedder) and search + selection, and how many negatives the two runs share. Then
   the faiss search alone at ``--scale-pairs`` / ``--scale-docs`` (the issue's 20,000 / 100,000)
   on random vectors, and with ``--full-scale`` the real mining run at that size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from tests.openai_stub import OpenAIStub
with OpenAIStub(lambda prompt: "Read every record of a JSON lines file into a list", delay=float(sys.argv[1])) as stub:
    print(stub.api_base, flush=True)
    while True:
        time.sleep(3600)
"""


def start_server(delay: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(delay), str(ROOT)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    return process, process.stdout.readline().strip()


def bare_calls(api_base: str, calls: int, concurrency: int, kind: str) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds for ``calls`` completions (after one warm-up call)."""
    from st_code.llm.client import LLMClient

    async def run() -> tuple[float, float]:
        client = LLMClient("openai/stub", [api_base], concurrency=concurrency, timeout=30, retries=1, client=kind)
        try:
            await client.complete("warm up")
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(client.complete(f"prompt {i}") for i in range(calls)))
            return time.perf_counter() - wall, time.process_time() - cpu
        finally:
            await client.aclose()

    return asyncio.run(run())


def pipeline_generate(api_base: str, calls: int, concurrency: int, out: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds of the generate stage (as the pipeline's summary reports them), pairs kept."""
    from data_gen import Pipeline, PipelineConfig

    out.mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w") as handle:
        for i in range(calls):
            code = f"def add_{i}(values):\n    total = {i}\n    for v in values:\n        total += v\n    return total\n"
            handle.write(json.dumps({"id": f"f{i}", "language": "Python", "code": code, "path": f"m{i}.py"}) + "\n")
    config = PipelineConfig(out=str(out), tasks=["Code Summary Retrieval"], model="openai/stub", api_bases=[api_base],
                            concurrency=concurrency, timeout=30, retries=1, max_samples=calls)
    summary = Pipeline(config, log=lambda _: None).run("generate")
    return summary.stage_seconds["generate"], summary.stage_cpu_seconds["generate"], summary.counts["generate"]


def mining_data(pairs: int, docs: int) -> tuple[list, list[str]]:
    """Real (docstring, function) pairs from the stdlib, repeated with a numbered variant tag so every
    text is distinct; ``pairs`` Text2Code pairs and ``docs`` further functions as the corpus."""
    from data_gen.pairs import Pair
    from st_code.data import build_offline_data

    data = build_offline_data(heldout_percent=0, include_package_docs=False, max_code_lines=15)
    source = data.train["Code Explanation to Implementation Retrieval"]
    reps = (pairs + docs) // len(source) + 1
    variants = [(f"{q} (variant {r})", f"{code}\n# variant {r}") for r in range(reps) for q, code in source]
    task_pairs = [Pair(key=str(i), task="Text2Code", major_type="Text2Code", language="English",
                       code_language="Python", instruction="", query=q, positive=code, source_id=str(i))
                  for i, (q, code) in enumerate(variants[:pairs])]
    return task_pairs, [code for _, code in variants[pairs: pairs + docs]]


def mining_run(pairs: list, corpus: list[str], num_negatives: int, dtype: str, batch_size: int | None):
    """One ``data_gen.negatives.mine`` call on fresh copies of ``pairs``; returns (kept pairs, report, label)."""
    import copy

    from data_gen.negatives import mine
    from st_code.mining import load_embedder

    embedder = load_embedder("minilm", dtype=dtype, device="cpu")
    embedder.encode(corpus[:64], batch_size=32, show_progress_bar=False)  # warm-up: first calls set up kernels
    kept, report = mine(copy.deepcopy(pairs), embedder, corpus, num_negatives, batch_size=batch_size)
    label = f"{str(embedder.dtype).removeprefix('torch.')}, batch {batch_size or 'auto'}"
    return kept, report, label


def print_mining(label: str, pairs: int, docs: int, num_negatives: int, kept: list, report) -> float:
    texts = 2 * pairs + docs  # queries, positives (in the candidate pool) and the corpus
    rate = texts / report.embedding_seconds
    print(f"  {label:<22} total {report.seconds:7.1f}s = embedding {report.embedding_seconds:7.1f}s "
          f"({rate:4.0f} texts/s) + search and selection {report.search_seconds:5.1f}s; "
          f"{len(kept)} of {pairs} pairs got {num_negatives} negatives")
    return rate


def mining(pairs: int, docs: int, num_negatives: int) -> float:
    """The previous settings (float32, batch 64) and the defaults (``--embedder-dtype auto``, batch
    for the device) side by side on the same data, and how far their negatives agree."""
    from st_code.mining import resolve_dtype

    task_pairs, corpus = mining_data(pairs, docs)
    print(f"mining {num_negatives} negatives for {pairs} pairs over {pairs + docs} documents (packaged MiniLM, "
          f"CPU, faiss IndexFlatIP):")
    before, before_report, label = mining_run(task_pairs, corpus, num_negatives, "float32", 64)
    before_rate = print_mining(label, pairs, docs, num_negatives, before, before_report)
    after, after_report, label = mining_run(task_pairs, corpus, num_negatives, "auto", None)
    after_rate = print_mining(label + " (default)", pairs, docs, num_negatives, after, after_report)
    first = {p.key: p.negatives for p in before}
    both = [(first[p.key], p.negatives) for p in after if p.key in first]
    same = sum(set(a) == set(b) for a, b in both)
    overlap = sum(len(set(a) & set(b)) for a, b in both) / max(1, num_negatives * len(both))
    print(f"  default vs float32/64: embedding {after_rate / before_rate:.2f}x as fast; of {len(both)} pairs mined "
          f"by both, {same} have the same set of negatives, negatives shared {overlap:.1%} "
          f"(auto = {resolve_dtype('auto', 'cpu')} on this CPU)")
    return after_rate


def faiss_search_at_scale(pairs: int, docs: int, dim: int = 384, k: int = 101) -> float:
    """The search ``mine_hard_negatives`` runs (flat inner-product index, top ``range_max + 1``), at full
    size on random unit vectors: a flat index costs the same whatever the vectors hold."""
    import faiss
    import numpy as np

    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((pairs + docs, dim), dtype=np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    queries = corpus[:pairs] + 0.1 * rng.standard_normal((pairs, dim), dtype=np.float32)
    start = time.perf_counter()
    index = faiss.IndexFlatIP(dim)
    index.add(corpus)
    for i in range(0, pairs, 16384):  # mine_hard_negatives' faiss_batch_size
        index.search(queries[i: i + 16384], k)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=6400)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--docs", type=int, default=10000)
    parser.add_argument("--num-negatives", type=int, default=15)
    parser.add_argument("--scale-pairs", type=int, default=20000, help="size for the full-scale search timing")
    parser.add_argument("--scale-docs", type=int, default=100000)
    parser.add_argument("--full-scale", action="store_true",
                        help="also mine with real texts at --scale-pairs / --scale-docs (about 30 min on 2 CPU cores)")
    parser.add_argument("--skip-mining", action="store_true")
    parser.add_argument("--skip-calls", action="store_true")
    args = parser.parse_args()

    ideal = args.concurrency / args.delay
    if not args.skip_calls:
        server, api_base = start_server(args.delay)
        try:
            print(f"{args.calls} calls at concurrency {args.concurrency}, server delay {args.delay * 1000:.0f} ms "
                  f"(ideal {ideal:.0f} calls/s):")
            bare = {}
            for kind in ("openai-compatible", "litellm"):
                wall, cpu = bare_calls(api_base, args.calls, args.concurrency, kind)
                bare[kind] = cpu / args.calls
                print(f"  client {kind:<17} {args.calls / wall:6.0f} calls/s = {args.calls / wall / ideal:4.0%} of ideal; "
                      f"client CPU {1000 * cpu / args.calls:.2f} ms/call")
            with tempfile.TemporaryDirectory() as tmp:
                p_wall, p_cpu, kept = pipeline_generate(api_base, args.calls, args.concurrency, Path(tmp))
            own = p_cpu / args.calls - bare["openai-compatible"]
            print(f"  generate stage (default client): {args.calls} items -> {kept} pairs, {args.calls / p_wall:.0f} "
                  f"items/s = {args.calls / p_wall / ideal:.0%} of ideal (target >= 90%); CPU {1000 * p_cpu / args.calls:.2f} "
                  f"ms/call, of which the pipeline's own {1000 * own:.2f} ms/call (target < 2 ms)")
        finally:
            server.terminate()
    if not args.skip_mining:
        full_pairs, full_docs = args.scale_pairs, args.scale_docs
        rate = mining(args.pairs, args.docs, args.num_negatives)
        search = faiss_search_at_scale(full_pairs, full_docs)
        print(f"at {full_pairs} pairs / {full_docs} documents: faiss search {search:.1f}s (measured, random vectors of "
              f"the same shape); embedding {2 * full_pairs + full_docs} texts at {rate:.0f} texts/s ~ "
              f"{(2 * full_pairs + full_docs) / rate / 60:.0f} min (extrapolated from the default above)")
        if args.full_scale:
            print(f"full-size run, default settings ({full_pairs} pairs over {full_pairs + full_docs} documents):")
            task_pairs, corpus = mining_data(full_pairs, full_docs)
            kept, report, label = mining_run(task_pairs, corpus, args.num_negatives, "auto", None)
            print_mining(label, full_pairs, full_docs, args.num_negatives, kept, report)


if __name__ == "__main__":
    main()
