"""Evaluation at scale: wall time and peak memory of ``st_code.evaluation`` on a large local corpus,
split into encoding and scoring.

    python benchmarks/eval_scale.py [--docs 20000] [--queries 1000]

Builds a BEIR folder of ``--docs`` real code documents (standard-library functions, repeated with a
variant marker to reach the size) and ``--queries`` docstring queries, then times:
  - encoding alone: ``model.encode`` of queries and corpus (the packaged MiniLM, CPU);
  - the full ``st_code.evaluation.evaluate`` run through mteb (encoding + scoring + metrics);
scoring = full - encoding. Peak RSS is read from the process. The issue's 100,000 documents take
about ten minutes of encoding on 2 CPU cores: pass --docs 100000 to measure them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def build_folder(root: Path, docs: int, queries: int) -> Path:
    from st_code.data import build_offline_data

    data = build_offline_data(heldout_percent=0, include_package_docs=False, max_code_lines=12)
    pairs = data.train["Code Explanation to Implementation Retrieval"]
    folder = root / "large-beir"
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as handle:
        for i in range(docs):
            _, code = pairs[i % len(pairs)]
            handle.write(json.dumps({"_id": f"d{i}", "text": f"{code}\n# copy {i // len(pairs)}"}) + "\n")
    with (folder / "queries.jsonl").open("w") as handle, (folder / "qrels" / "test.tsv").open("w") as qrels:
        qrels.write("query-id\tcorpus-id\tscore\n")
        for i in range(queries):
            handle.write(json.dumps({"_id": f"q{i}", "text": pairs[i % len(pairs)][0]}) + "\n")
            qrels.write(f"q{i}\td{i}\t1\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    import st_code
    from st_code.evaluation import evaluate, load_local_set
    from st_code.assets import minilm_path

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = build_folder(tmp, args.docs, args.queries)
        model = st_code.build_model(minilm_path(), pooling="mean", max_seq_length=128, instruction_format="none")
        model.save(str(tmp / "model"))
        rs = load_local_set(folder)
        start = time.perf_counter()
        model.encode(list(rs.queries.values()), batch_size=args.batch_size)
        model.encode(list(rs.corpus.values()), batch_size=args.batch_size)
        encode = time.perf_counter() - start
        start = time.perf_counter()
        result = evaluate([str(tmp / "model")], local=[str(folder)], batch_size=args.batch_size, log=lambda _: None)
        full = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    score = next(iter(result.scores.values()))["large-beir"]["ndcg_at_10"]
    print(f"{args.docs} documents, {args.queries} queries, MiniLM on CPU ({os.cpu_count()} cores)")
    print(f"encoding alone {encode:.1f}s; full mteb evaluation {full:.1f}s; scoring + metrics {full - encode:.1f}s "
          f"({(full - encode) / full:.0%} of the evaluation); peak RSS {peak:.0f} MB; ndcg@10 {100 * score:.2f}")


if __name__ == "__main__":
    main()
