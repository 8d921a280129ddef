"""Code search on a real tree: splitting, indexing, query latency, update vs re-index, quantized recall.

    python benchmarks/code_search.py [--units 2000] [--queries 200] [--threads 2]

1. Splitting: the walk and tree-sitter splitter over the whole Python standard library and this
   environment's site-packages (no embedding): files/s and units/s, skip counts.
2. Indexing: the first ``--units`` units' files of that tree, copied to a scratch repository, indexed
   with the packaged MiniLM: units/s, index size on disk.
3. Query latency (one query at a time, embedding included), p50 and p99.
4. Update after touching one file vs a full re-index: seconds and ratio.
5. int8 and binary vs float32 on the same vectors: recall@10 of the float top 10 (queries: the first
   line of units' docstrings) and search time (embedding excluded), side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import median_seconds  # noqa: E402

import numpy as np  # noqa: E402


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=2000, help="units to embed (files copied until reached)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from st_code.data.code_units import split_units
    from st_code.data.repository import WalkReport, walk_repository
    from st_code.search import CodeSearcher, build_index, update_index
    from st_code.search.index import _write_search_structure, load_search_model

    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    # 1. splitting the whole tree
    start, units, chosen, report = time.perf_counter(), 0, [], WalkReport()
    for root in roots:
        for found in walk_repository(root, report):
            if found.text is None:
                continue
            found_units = split_units(found.text, found.language, found.path)
            units += len(found_units)
            if sum(n for _, _, n in chosen) < args.units:
                chosen.append((root, found.path, len(found_units)))
    seconds = time.perf_counter() - start
    print(f"1. split {report.files} files into {units} units in {seconds:.1f}s: {report.files / seconds:.0f} files/s, "
          f"{units / seconds:.0f} units/s ({report.line()})")

    loaded = load_search_model("minilm")
    quiet = {"log": lambda _: None, "progress": False}
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        for root, relative, _ in chosen:
            target = repo / root.name / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / relative, target)
        index = Path(tmp) / "index"
        built = build_index(repo, index, _loaded=loaded, **quiet)
        print(f"2. indexed {built.units} units of {len(chosen)} files in {built.seconds:.1f}s: "
              f"{built.units / built.seconds:.1f} units/s; index on disk {_size(index) / 2**20:.1f} MB "
              f"(vectors {os.path.getsize(index / 'vectors.npy') / 2**20:.1f} MB)")

        searcher = CodeSearcher(index, model=loaded[0])
        rows = [json.loads(line) for line in (index / "units.jsonl").read_text().splitlines()]
        queries = [r["doc"].split("\n")[0] for r in rows if r["doc"].strip()][:args.queries] or \
            [r["text"][:80] for r in rows[:args.queries]]
        latencies = []
        for query in queries:
            begin = time.perf_counter()
            searcher.search([query], k=10)
            latencies.append(time.perf_counter() - begin)
        p50, p99 = np.percentile(latencies, 50) * 1000, np.percentile(latencies, 99) * 1000
        print(f"3. query latency over {len(queries)} queries (embedding + search + reading hits): p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms")

        touched = repo / chosen[0][0].name / chosen[0][1]
        touched.write_text(touched.read_text() + "\n\ndef touched_by_the_benchmark():\n    return 42\n")
        updated = update_index(index, **quiet)
        full = build_index(repo, Path(tmp) / "full", _loaded=loaded, **quiet)
        print(f"4. update after touching one file: {updated.seconds:.1f}s (embedded {updated.embedded}); full "
              f"re-index {full.seconds:.1f}s; ratio {full.seconds / updated.seconds:.1f}x")

        embedded = searcher.embed_queries(queries)
        vectors = np.load(index / "vectors.npy", mmap_mode="r")
        manifest = json.loads((index / "manifest.json").read_text())
        timings, recall, sizes = {}, {}, {}
        reference = None
        for precision in ("float32", "int8", "binary"):
            folder = Path(tmp) / f"q-{precision}"
            shutil.copytree(index, folder)
            for stale in ("index.faiss",):
                (folder / stale).unlink()
            # the same vectors in another precision (what build_index --precision writes), without re-embedding
            extra = _write_search_structure(folder, vectors, "auto", precision)
            (folder / "manifest.json").write_text(json.dumps({**manifest, **extra, "precision": precision}))
            quantized = CodeSearcher(folder, model=loaded[0])
            quantized.nearest(embedded[:2], 10)  # warm-up
            timings[precision] = median_seconds(lambda: quantized.nearest(embedded, 10), rounds=5, warmup=0)
            found, _ = quantized.nearest(embedded, 10)
            reference = found if reference is None else reference
            recall[precision] = float(np.mean([len(set(a) & set(b)) / len(set(a)) for a, b in zip(reference, found)]))
            searched = {"float32": "index.faiss", "int8": "vectors.int8.npy", "binary": "index.binary.faiss"}[precision]
            sizes[precision] = os.path.getsize(folder / searched)
        print(f"5. {len(queries)} queries, top 10, {built.units} units (int8/binary rescored from "
              f"{quantized.rescore_multiplier}x candidates with the float vectors):")
        print(f"   {'precision':<10}{'recall@10':>10}{'search ms':>11}{'vs float':>10}{'searched MB':>13}{'smaller':>9}")
        for precision in timings:
            print(f"   {precision:<10}{recall[precision]:>10.3f}{timings[precision] * 1000:>11.1f}"
                  f"{timings['float32'] / timings[precision]:>10.2f}{sizes[precision] / 2**20:>13.2f}"
                  f"{sizes['float32'] / sizes[precision]:>9.1f}")


if __name__ == "__main__":
    main()
