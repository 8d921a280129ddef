"""Hard-negative mining, one way for data_gen and the curriculum: sentence-transformers'
``mine_hard_negatives`` over faiss with CodeR's TopK-PercPos 95% rule (``relative_margin=0.05``:
a candidate scoring above 95% of the positive's score is likely a false negative and skipped).

:func:`load_embedder` picks the fast settings for the hardware, since embedding is nearly all of the
time (search over 120,000 documents takes seconds): bfloat16 where it runs natively, and a batch
size that suits the device (see ``benchmarks/data_gen_throughput.py`` for the figures).
"""

from __future__ import annotations

import platform
from pathlib import Path

from st_code.assets import resolve_model_name
from st_code.errors import UsageError

DTYPES = ("auto", "float32", "bfloat16", "float16")
#: CodeR appendix E: TopK-PercPos with a 95% margin.
DEFAULT_RELATIVE_MARGIN = 0.05
#: Candidates looked at per query (the top ``range_max`` by the embedder) before the margin rule.
DEFAULT_RANGE_MAX = 100


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (x86 AVX512-BF16 / AMX, Arm BF16).

    torch's own check (oneDNN's) also says yes on AVX-512 CPUs that only emulate bf16, where the
    speed-up is not to be counted on; the CPU's flags tell the two apart.
    """
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: stay with float32 unless asked
        return False
    flags = set()
    for line in info.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def resolve_dtype(dtype: str, device: str):
    """The torch dtype for ``dtype`` on ``device``; ``auto``: bf16 where the hardware has it, else
    float16 on older GPUs and float32 on CPUs without bf16."""
    import torch

    if dtype not in DTYPES:
        raise UsageError(f"embedder dtype {dtype!r} is not one of {DTYPES}")
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def default_batch_size(device: str) -> int:
    """Texts per forward pass. Large batches feed a GPU; on CPU they are slower (measured with
    MiniLM on 2 cores: batch 16-32 embeds code about 1.6x faster than batch 128)."""
    return 32 if device == "cpu" else 128


def load_embedder(name: str = "minilm", dtype: str = "float32", device: str | None = None):
    """A reference embedder: ``"minilm"`` (the packaged all-MiniLM-L6-v2) or any SentenceTransformer
    path / hub id, on ``device`` (default: a GPU when there is one) in ``dtype`` (see
    :func:`resolve_dtype`; ``auto`` picks bf16 where the hardware computes it)."""
    from sentence_transformers.util import get_device_name

    from st_code.model import load_model  # the one loader: st-code folders without the remote-code flag

    device = device or get_device_name()
    return load_model(resolve_model_name(name), device=device, model_kwargs={"dtype": resolve_dtype(dtype, device)})


def mine_rows(queries: list[str], positives: list[str], embedder, num_negatives: int,
              relative_margin: float = DEFAULT_RELATIVE_MARGIN, range_max: int = DEFAULT_RANGE_MAX,
              batch_size: int | None = None, corpus: list[str] | None = None, query_prompt: str | None = None,
              corpus_prompt: str | None = None) -> list[list[str] | None]:
    """``num_negatives`` hard negatives for each (query, positive) pair, searched among the pairs'
    positives plus ``corpus``; ``None`` for a pair that has too few candidates past the margin."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    if not queries:
        return []
    batch_size = batch_size or default_batch_size(embedder.device.type)
    corpus = [text for text in corpus or [] if text]
    dataset = Dataset.from_dict({"anchor": queries, "positive": positives})
    result = mine_hard_negatives(
        dataset, embedder, corpus=corpus or None, num_negatives=num_negatives, relative_margin=relative_margin,
        range_max=max(num_negatives + 1, min(range_max, len(queries) + len(corpus) - 1)), sampling_strategy="top",
        # faiss on the CPU; on a GPU, sentence-transformers' own exact search there, in blocks of queries
        # small enough that a block's scores (block x corpus) stay near 1 GB at any corpus size
        output_format="n-tuple", use_faiss=embedder.device.type == "cpu", batch_size=batch_size, verbose=False,
        faiss_batch_size=max(64, min(16384, 2**28 // (len(queries) + len(corpus)))),
        query_prompt=query_prompt, corpus_prompt=corpus_prompt,
    )
    shared = {text: text for text in positives}  # a negative is another row's positive: keep one copy of its text
    found = {(row["anchor"], row["positive"]): [shared.get(row[f"negative_{j + 1}"], row[f"negative_{j + 1}"])
                                                for j in range(num_negatives)] for row in result}
    return [found.get((query, positive)) for query, positive in zip(queries, positives)]


__all__ = ["DTYPES", "DEFAULT_RELATIVE_MARGIN", "DEFAULT_RANGE_MAX", "cpu_has_native_bf16", "resolve_dtype",
           "default_batch_size", "load_embedder", "mine_rows"]
