"""``st-code`` (also ``python -m st_code``): work with saved models from the command line.

    st-code export runs/annealing/final --to onnx [--quantize int8]   # onnx/model.onnx in the folder
    st-code export runs/annealing/final --to openvino                 # openvino/openvino_model.xml
    st-code push runs/annealing/final my-org/code-embedder [--public]  # upload the folder to the hub
    st-code index ~/src/repo --out repo.index [--model runs/annealing/final]  # embed a repository's code
    st-code search repo.index "read a jsonl file" [-k 10] [--json]       # search it
    st-code update repo.index                                            # re-embed what changed
    st-code distill --out static-minilm                                  # a static model: index in seconds
    st-code mcp ~/src/repo                                               # code search for coding agents
    st-code adapt ~/src/repo [--minutes 20] [--model M] [--out DIR]       # an embedder that knows your code

    st-code train [--config c2llm-0.5b] [--set KEY=VALUE ...] [--dry-run]  # the Annealing curriculum

Evaluation is ``python -m st_code.evaluation``, data generation ``python -m data_gen``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from st_code.errors import positive_int


def _export(args: argparse.Namespace) -> int:
    from st_code.export import export_model

    export_model(args.model, to=args.to, quantize=args.quantize, out=args.out)
    return 0


def _push(args: argparse.Namespace) -> int:
    from st_code.hub import push_folder

    push_folder(args.model, args.repo_id, private=not args.public)
    return 0


def _index(args: argparse.Namespace) -> int:
    from st_code.search import build_index

    report = build_index(args.path, args.out, model=args.model, index_type=args.index_type,
                         precision=args.precision, batch_size=args.batch_size, device=args.device,
                         log=lambda line: print(line, file=sys.stderr))
    print(f"indexed {args.path} into {args.out}: {report.line()}", file=sys.stderr)
    return 0


def _update(args: argparse.Namespace) -> int:
    from st_code.search import update_index

    report = update_index(args.index, root=args.path, batch_size=args.batch_size, device=args.device,
                          log=lambda line: print(line, file=sys.stderr))
    print(f"updated {args.index}: {report.line()}", file=sys.stderr)
    return 0


def _search(args: argparse.Namespace) -> int:
    import json

    from st_code.errors import MissingPathError, UsageError
    from st_code.search import CodeSearcher

    if (args.query is None) == (args.queries is None):
        raise UsageError('pass one query ("...") or --queries FILE (one query a line)')
    if args.queries is not None:
        path = Path(args.queries)
        if not path.exists():
            raise MissingPathError(f"--queries {path} does not exist")
        if not path.is_file():
            raise UsageError(f"--queries {path} is not a regular file: pass a text file, one query a line")
        try:
            queries = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as exc:
            raise UsageError(f"--queries {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
        if not queries:
            raise UsageError(f"--queries {path} holds no query: write one query a line")
    else:
        queries = [args.query]
    reranker = None
    if args.rerank:
        from st_code.search.rerank import make_reranker

        reranker = make_reranker(args.rerank, args.rerank_candidates, args.device, args.rerank_api_base)
    elif args.rerank_api_base:
        raise UsageError("--rerank-api-base goes with --rerank llm:MODEL")
    try:
        searcher = CodeSearcher(args.index, task=args.task, rescore_multiplier=args.rescore_multiplier,
                                device=args.device, mode=args.mode, fusion=args.fusion, reranker=reranker)
        if searcher.mode == "hybrid" and searcher.outlines is None:
            print(f"note: {args.index} was built before file outlines; st-code update {args.index} adds them "
                  "(better hybrid results)", file=sys.stderr)
        for start in range(0, len(queries), 256):
            batch = queries[start:start + 256]
            for query, hits in zip(batch, searcher.search(batch, args.k, per_file=args.per_file)):
                if args.json or args.queries is not None:
                    print(json.dumps({"query": query, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False),
                          flush=True)
                    continue
                for rank, hit in enumerate(hits, 1):
                    print(f"{rank:>2}. {hit.path}:{hit.start_line}  {hit.symbol or hit.kind}  ({hit.score:.3f})")
                    for line in hit.snippet(args.lines).split("\n"):
                        print(f"      {line}")
    finally:
        if hasattr(reranker, "close"):
            reranker.close()  # an LLM reranker's connections
    return 0


def _distill(args: argparse.Namespace) -> int:
    from st_code.search.static import ALIGN_TEXTS, distill

    distill(args.model, args.out, dims=args.dims, device=args.device,
            align_texts=ALIGN_TEXTS if args.align_texts is None else args.align_texts,
            align_corpus=args.align_corpus, log=lambda line: print(line, file=sys.stderr))
    return 0


def _mcp(args: argparse.Namespace) -> int:
    from st_code.search.mcp_server import serve

    serve(args.repository, index=args.index, model=args.model, device=args.device, rerank=args.rerank,
          rerank_api_base=args.rerank_api_base)
    return 0


def _adapt(args: argparse.Namespace) -> int:
    from st_code.adapt.options import AdaptOptions

    options = AdaptOptions(
        repository=args.repository, model=args.model, out=args.out, minutes=args.minutes,
        heldout_percent=args.heldout_percent, heldout_paths=args.heldout_paths, seed=args.seed,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size, train_seq_length=args.train_seq_length, languages=args.languages,
        general_sets=args.general_sets, max_steps=args.max_steps, max_general_loss=args.max_general_loss,
        llm=args.llm, api_base=args.api_base, llm_max_units=args.llm_max_units, index=args.index,
        rebuild_index=args.rebuild_index, overwrite=args.overwrite, device=args.device)
    options.check()  # a mistyped path is told at once, not after importing sentence-transformers
    import contextlib

    from st_code.adapt import adapt_repository

    try:  # stdout carries one line, the model to use (for scripts); progress and trainer logs go to stderr
        with contextlib.redirect_stdout(sys.stderr):
            result = adapt_repository(options, log=lambda line: print(line, file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume (data, scores, the step plan and training "
              "checkpoints are kept)", file=sys.stderr)
        return 130
    print(result.model)
    return 0 if result.accepted else 1


ADAPT_HELP = """Fine-tune an embedder on a repository's own code and keep it only if it is better.

Pairs come from the code itself, no LLM needed: each documented function, method or class gives doc ->
code and code -> doc (Python docstrings, JSDoc/Javadoc, /// and /** */, Go and Rust doc comments, the
comment above a C function or a Verilog module), and every unit gives code context (first part -> rest).
Files are split into training and held-out (never one file on both sides). The base model is scored on
the held-out files and on built-in general sets, trained for as many steps as fit --minutes (measured on
this machine), scored again, and kept only if it beats the base on the held-out files and loses at most
--max-general-loss NDCG@10 on the general sets. OUT/model is written only then; OUT/report/ says why
either way. Rerun the same command to resume after an interruption.

Exit status: 0 adapted model kept (its folder is printed), 1 base kept (its name is printed), 2 bad input.

Examples:
  st-code adapt ~/src/myrepo                                 # packaged MiniLM, 20 minutes on a CPU
  st-code adapt ~/src/myrepo --model runs/annealing/final --minutes 60 --out adapted/myrepo
  st-code adapt ~/src/myrepo --llm hosted_vllm/Qwen/Qwen2.5-Coder-32B-Instruct --api-base http://gpu:8000/v1
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="st-code", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("train", add_help=False, help="train with the Annealing curriculum (st-code train --help)")

    export = commands.add_parser("export", help="write an ONNX or OpenVINO graph of a saved model",
                                 description="Export a model saved with standard modules (mean, last-token or CLS "
                                             "pooling) for ONNX Runtime or OpenVINO; PMA and bidirectional models "
                                             "need PyTorch and are refused with the reason.")
    export.add_argument("model", help="the saved model folder")
    export.add_argument("--to", choices=["onnx", "openvino"], default="onnx")
    export.add_argument("--quantize", choices=["int8"], help="ONNX: also write onnx/model_qint8.onnx (int8 weights)")
    export.add_argument("--out", help="folder to write onnx/ and openvino/ into (default: the model folder)")
    export.set_defaults(run=_export)

    push = commands.add_parser("push", help="upload a saved model folder to the Hugging Face Hub",
                               description="Create the hub repository if needed (private unless --public) and "
                                           "upload the folder as it is on disk. Needs a write token "
                                           "(huggingface-cli login or HF_TOKEN).")
    push.add_argument("model", help="the saved model folder")
    push.add_argument("repo_id", help="owner/name")
    push.add_argument("--public", action="store_true", help="make a new repository public")
    push.set_defaults(run=_push)

    from st_code.search.index import DEFAULT_TASK, FLAT_LIMIT, INDEX_TYPES, PRECISIONS
    from st_code.search.ranking import FUSIONS
    from st_code.search.searcher import MODES

    index = commands.add_parser(
        "index", help="embed a repository's functions, methods and classes into a search index",
        description="Walk PATH (.gitignore honoured; binary, generated, vendored and minified files skipped and "
                    "counted), split code into functions, methods and classes with their doc comments (Python, "
                    "JavaScript, TypeScript, Go, Rust, Java, C, C++, Verilog; line windows for other languages), "
                    "embed them with the model's document prompt and store a faiss index with a metadata table.")
    index.add_argument("path", help="the repository (or one file)")
    index.add_argument("--out", default=".st-code-index",
                       help="the index folder: new, empty or an earlier index, which is replaced only once the new one "
                            "is complete; never the repository or a folder of other files (default: %(default)s)")
    index.add_argument("--model", help="an st-code model folder, any sentence-transformers model or hub id "
                                       "(default: the packaged all-MiniLM-L6-v2, offline)")
    index.add_argument("--index-type", choices=INDEX_TYPES, default="auto",
                       help=f"faiss structure; auto: exact flat below {FLAT_LIMIT:,} units, HNSW above")
    index.add_argument("--precision", choices=PRECISIONS, default="float32",
                       help="int8 / binary: sentence-transformers' quantization, 4x / 32x smaller to search; "
                            "the top candidates are rescored with the float vectors")
    index.add_argument("--batch-size", type=positive_int, default=32)
    index.add_argument("--device", help="cpu, cuda, ... (default: the best available)")
    index.set_defaults(run=_index)

    update = commands.add_parser(
        "update", help="re-embed only the units that changed since the index was built",
        description="Walk the repository again: units whose content the index has never embedded are embedded "
                    "(vectors of dropped code are kept, so switching branches back embeds nothing), the others "
                    "keep their vectors, units of deleted files drop out. Refused when the model's weights or "
                    "prompts are not the ones the index was built with.")
    update.add_argument("index", help="the index folder")
    update.add_argument("--path", help="the repository (default: the one the index was built from)")
    update.add_argument("--batch-size", type=positive_int, default=32)
    update.add_argument("--device")
    update.set_defaults(run=_update)

    search = commands.add_parser(
        "search", help="search an index",
        description="Hybrid by default: the vectors and a BM25 index over code-aware tokens, fused, then "
                    "ranked (a query that is one identifier finds its definition first; tests, examples and "
                    "tiny units count less; more files in the top k). Queries get the model's query "
                    "instruction for --task; hits print as path:line, symbol, score and a snippet. --json prints "
                    "one JSON line per query (for tools); --queries FILE answers one query a line in one process.")
    search.add_argument("index", help="the index folder")
    search.add_argument("query", nargs="?", help="what to look for")
    search.add_argument("-k", type=positive_int, default=10, help="hits per query (default: %(default)s)")
    search.add_argument("--task", default=DEFAULT_TASK, help="the registered task whose query instruction the "
                                                             "query gets (default: %(default)s)")
    search.add_argument("--queries", help="a file of queries, one a line; prints one JSON line each")
    search.add_argument("--json", action="store_true", help="print JSON lines")
    search.add_argument("--lines", type=positive_int, default=6, help="snippet lines per hit (default: %(default)s)")
    search.add_argument("--rescore-multiplier", type=positive_int, default=4,
                        help="int8/binary indexes: candidates fetched per hit for float rescoring")
    search.add_argument("--mode", choices=MODES, default="hybrid",
                        help="hybrid (default): vectors + BM25 + ranking; dense: the vectors alone (scores are "
                             "cosines); lexical: BM25 + ranking, queries not embedded")
    search.add_argument("--fusion", choices=FUSIONS, default="blend",
                        help="how hybrid joins its scores: blend (default) or rrf (reciprocal ranks)")
    search.add_argument("--per-file", action="store_true", help="one hit per file: the best unit of each of the "
                                                                "top k files")
    search.add_argument("--rerank", metavar="CROSS_ENCODER|llm:MODEL",
                        help="reorder each query's best candidates by a cross-encoder (a sentence-transformers "
                             "CrossEncoder folder or hub id, e.g. BAAI/bge-reranker-base; one pass per candidate) "
                             "or by a chat model (llm:MODEL, a litellm name such as llm:openai/gpt-4o-mini; one call "
                             "per query); hit scores are then the reranker's")
    search.add_argument("--rerank-candidates", type=positive_int, default=None,
                        help="candidates --rerank rereads per query (default: 30 for a cross-encoder, 10 for an LLM)")
    search.add_argument("--rerank-api-base", metavar="URL",
                        help="the OpenAI-compatible server of --rerank llm:MODEL (vLLM, llama.cpp), e.g. "
                             "http://localhost:8000/v1")
    search.add_argument("--device")
    search.set_defaults(run=_search)

    distill = commands.add_parser(
        "distill", help="distill an embedder into a static model that indexes thousands of units a second",
        description="Every vocabulary token is embedded by the model on its own, reduced by PCA and weighted "
                    "(model2vec's recipe), then the space is aligned with the model's on a sample of code and docs; "
                    "the folder is a sentence-transformers StaticEmbedding model. Index "
                    "with it: st-code index REPO --model OUT (hybrid search makes up most of what it loses).")
    distill.add_argument("model", nargs="?", default=None, help="the embedder (default: the packaged MiniLM)")
    distill.add_argument("--out", required=True, help="the static model's folder")
    distill.add_argument("--dims", type=positive_int, default=256, help="dimensions kept by PCA (default: %(default)s)")
    distill.add_argument("--align-texts", type=int, metavar="N",
                         help="code units and docs embedded by the model to align the static space with its own "
                              "(about two minutes on 2 CPU cores; 0: skip; default: 4000)")
    distill.add_argument("--align-corpus", metavar="FOLDER",
                         help="the code those texts come from (default: Python's standard library)")
    distill.add_argument("--device")
    distill.set_defaults(run=_distill)

    mcp = commands.add_parser(
        "mcp", help="serve a repository's code search to coding agents (MCP, stdio)",
        description="An MCP server on stdio with the tools search, index, update and status, for Claude Code, "
                    "Cursor, Continue and other MCP clients. Register it, e.g.: claude mcp add st-code -- "
                    "st-code mcp /path/to/repo. Needs pip install 'st-code[mcp]'.")
    mcp.add_argument("repository", help="the repository to serve")
    mcp.add_argument("--index", help="its index folder (default: REPOSITORY/.st-code-index)")
    mcp.add_argument("--model", help="the model to build the index with (default: the index's own, else the "
                                     "packaged MiniLM)")
    mcp.add_argument("--rerank", metavar="CROSS_ENCODER|llm:MODEL",
                     help="reorder each search's best candidates by this cross-encoder or chat model (as st-code "
                          "search --rerank)")
    mcp.add_argument("--rerank-api-base", metavar="URL", help="the server of --rerank llm:MODEL")
    mcp.add_argument("--device")
    mcp.set_defaults(run=_mcp)

    from st_code.adapt.gate import GENERAL_SETS

    adapt = commands.add_parser("adapt", help="fine-tune an embedder on a repository's own code, gated on "
                                              "held-out files", description=ADAPT_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    adapt.add_argument("repository", help="the repository folder")
    adapt.add_argument("--model", default="minilm", help="the model to adapt: an st-code model folder, any "
                                                         "sentence-transformers model or hub id (default: the "
                                                         "packaged all-MiniLM-L6-v2, offline)")
    adapt.add_argument("--out", help="output folder (default: st-code-adapt/<repository name>)")
    adapt.add_argument("--minutes", type=float, default=20.0,
                       help="wall-time budget for the whole command; training gets what reading, mining and "
                            "scoring leave (default: %(default)s)")
    adapt.add_argument("--max-steps", type=positive_int,
                       help="train exactly this many steps instead of filling --minutes")
    adapt.add_argument("--learning-rate", type=float, default=5e-5, help="(default: %(default)s)")
    adapt.add_argument("--batch-size", type=positive_int, default=32, help="pairs per step, one hard negative each "
                                                                  "(default: %(default)s)")
    adapt.add_argument("--train-seq-length", type=positive_int, default=128,
                       help="tokens per text in training (evaluation uses the model's own; default: %(default)s)")
    adapt.add_argument("--heldout-percent", type=float, default=15.0,
                       help="share of each language's files held out to judge the result (default: %(default)s)")
    adapt.add_argument("--heldout-paths", nargs="*", metavar="PATH",
                       help="hold out these folders or globs (relative to the repository, e.g. json/ 'net/*.c') "
                            "instead of a random share of files: a package or component judged whole")
    adapt.add_argument("--languages", nargs="*", help="only these programming languages (default: all found)")
    adapt.add_argument("--general-sets", nargs="*", default=list(GENERAL_SETS),
                       help="built-in sets the adapted model must not get worse on (default: %(default)s)")
    adapt.add_argument("--max-general-loss", type=float, default=1.0,
                       help="most mean NDCG@10 (x100) the general sets may lose (default: %(default)s)")
    adapt.add_argument("--llm", help="also write queries for undocumented units with this litellm model "
                                     "through data_gen (e.g. hosted_vllm/Qwen/Qwen2.5-Coder-32B-Instruct)")
    adapt.add_argument("--api-base", nargs="*", default=[], help="OpenAI-compatible endpoint(s) for --llm")
    adapt.add_argument("--llm-max-units", type=positive_int, default=500, help="undocumented units sent to the LLM "
                                                                      "(default: %(default)s)")
    adapt.add_argument("--index", help="the repository's code-search index (default: REPO/.st-code-index or "
                                       "./.st-code-index when built from REPO)")
    rebuild = adapt.add_mutually_exclusive_group()
    rebuild.add_argument("--rebuild-index", dest="rebuild_index", action="store_true", default=None,
                         help="rebuild the index with the adapted model without asking")
    rebuild.add_argument("--keep-index", dest="rebuild_index", action="store_false",
                         help="never rebuild the index (print the command instead)")
    adapt.add_argument("--seed", type=int, default=0)
    adapt.add_argument("--device", help="cpu, cuda, ... (default: the best available)")
    adapt.add_argument("--overwrite", action="store_true",
                       help="start over: drop OUT's run, scores, plan and report (the repository changed, say)")
    adapt.set_defaults(run=_adapt)
    return parser


def main(argv: list[str] | None = None) -> int:
    from st_code.errors import run_command

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:  # its own parser: the same one python recipes/annealing.py has
        from st_code.training.command import main as train

        return train(argv[1:], prog="st-code train")
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.run(args))


__all__ = ["main", "build_parser"]
