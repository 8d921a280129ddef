"""python -m data_gen STAGE: build CodeR-Pile-style retrieval data from real code with any LLM.

Stages (each reads the previous one's file in --out, so each runs alone; `all` chains corpus..write):
  brainstorm  ask a strong LLM (CodeR Table 10) for new tasks, then have it draft each task's generation
              fields (CodeR's Instructing step); writes brainstormed_tasks.yaml to review
  corpus      read code (folders, git checkouts, .jsonl, datasets folders); 20 languages by extension;
              drops binary / non-UTF-8 / generated / oversized files (counted) and duplicates
  generate    Table 11 prompts per task: query-positive pairs (two-step tasks chain two calls; Code
              Context Retrieval needs no LLM; Code Translation pairs languages); English and Chinese
  annotate    Table 12 prompt; keeps a pair only when the answer is exactly 1
  mine        15 hard negatives per pair (TopK-PercPos 95%, faiss) with an embedder
  difficulty  Table 17 labels simple / medium / hard for the Annealing stage-3 filter
  write       dataset/ (datasets folder) and triplets.jsonl: query, positive, negative_1..k, task,
              major_type, language, code_language, instruction, difficulty

Any LLM litellm reaches: a vLLM server (--model hosted_vllm/Qwen/Qwen2.5-Coder-32B-Instruct --api-base
http://gpu:8000/v1, several --api-base to spread load), OpenAI (--model openai/gpt-4o-mini),
Anthropic, or llama.cpp's server on a CPU (python -m data_gen.local_server, then --model openai/smollm2
--api-base http://127.0.0.1:8080/v1). OpenAI-compatible servers given by --api-base are called with a
lean HTTP client (0.3 ms CPU a call); other providers through litellm's Router (see --client).
Interrupt at any time and rerun the same command: finished calls are not repeated.

Example:
  python -m data_gen all --corpus ~/src/myrepo --tasks "Code Summary Retrieval" "Web Query to Code Retrieval" \\
      --languages Python Go --natural-languages English Chinese --model openai/gpt-4o-mini --out data/coder-pile
"""

from __future__ import annotations

import argparse
import sys


def _count(text: str) -> int | None:
    """A limit: a whole number >= 1, or 'all' for none."""
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1 or 'all', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1 or 'all', got {value} (0 and negatives would "
                                         "silently mean 'no limit' or 'all but one')")
    return value


def build_parser() -> argparse.ArgumentParser:
    from data_gen.pipeline import STAGES

    p = argparse.ArgumentParser(prog="python -m data_gen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=[*STAGES, "all"], help="the stage to run, or all (corpus -> write)")
    p.add_argument("--out", required=True, help="output folder (journal, stage files, final dataset)")
    p.add_argument("--corpus", nargs="*", default=[], help="code folders / git checkouts / .jsonl / datasets folders")
    p.add_argument("--tasks", nargs="*", help="CodeR-Pile task names (default: all 47)")
    p.add_argument("--task-file", help="extra tasks as registry YAML (e.g. reviewed brainstormed_tasks.yaml)")
    p.add_argument("--languages", nargs="*", help="programming languages to keep (default: all 20 found)")
    p.add_argument("--natural-languages", nargs="*", default=["English"], choices=["English", "Chinese"])
    p.add_argument("--model", default="openai/gpt-4o-mini", help="litellm model name")
    p.add_argument("--api-base", nargs="*", default=[], dest="api_bases", help="OpenAI-compatible endpoint(s)")
    p.add_argument("--client", default="auto", choices=["auto", "litellm", "openai-compatible"],
                   help="auto (default): a lean aiohttp client for OpenAI-compatible servers given by --api-base "
                        "(openai/, hosted_vllm/ models: vLLM, llama.cpp, SGLang), litellm for everything else; "
                        "litellm: always litellm.Router (any provider, 5-7 ms CPU per call)")
    p.add_argument("--concurrency", type=int, default=16, help="LLM calls in flight (default 16)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request attempt (default 60)")
    p.add_argument("--retries", type=int, default=3, help="retries with backoff on 429/5xx/timeouts (default 3)")
    p.add_argument("--max-samples", type=_count, default=10,
                   help="files per task x natural language x code language (default 10; 'all' for no limit)")
    p.add_argument("--max-files-per-language", type=_count, default=1000,
                   help="corpus files kept per language, sampled with --seed (default 1000; 'all' for no limit)")
    p.add_argument("--embedder", default="minilm", help="mining embedder: minilm (packaged) or a model path/id")
    p.add_argument("--embedder-dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="mining embedder precision; auto: bfloat16 where the hardware computes it (GPUs with bf16, "
                        "CPUs with AVX512-BF16/AMX/Arm BF16: ~1.8x faster on CPU, cosine 0.9999 to float32), "
                        "float16 on older GPUs, else float32")
    p.add_argument("--embed-batch-size", type=int, default=None,
                   help="texts per embedding batch when mining (default: 32 on CPU, 128 on a GPU)")
    p.add_argument("--num-negatives", type=int, default=15)
    p.add_argument("--skip-difficulty", action="store_true", help="no Table 17 labels (saves one call per pair)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from st_code.errors import run_command

    return run_command(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from data_gen.pipeline import Pipeline, PipelineConfig
    from st_code.errors import StCodeError

    try:
        config = PipelineConfig(
            out=args.out, corpus=args.corpus, tasks=args.tasks, task_file=args.task_file, languages=args.languages,
            natural_languages=args.natural_languages, model=args.model, api_bases=args.api_bases, client=args.client,
            concurrency=args.concurrency, timeout=args.timeout, retries=args.retries, max_samples=args.max_samples,
            max_files_per_language=args.max_files_per_language, seed=args.seed, embedder=args.embedder,
            embedder_dtype=args.embedder_dtype, embed_batch_size=args.embed_batch_size,
            num_negatives=args.num_negatives, skip_difficulty=args.skip_difficulty,
        )
        Pipeline(config).run(args.stage)
    except StCodeError:
        raise
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:  # an unknown task name: the message is the first argument
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to continue (finished calls are kept in the journal)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
