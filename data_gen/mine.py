"""Stage 5: hard negatives with sentence-transformers' ``mine_hard_negatives`` over faiss.

TopK-PercPos with a 95% margin (``relative_margin=0.05``, CodeR appendix E), 15 negatives, searched
over the task's positives plus the real corpus, with any embedder (an st-code model or a packaged one).
``cache_folder`` passes through to sentence-transformers' on-disk cache; the pipeline does not set
it, since that cache stores the whole corpus again for every task (47 x corpus x dim floats on
disk). Within a run, each document is embedded once for all tasks: the corpus is shared by every
task, and ``mine_hard_negatives`` (called per task, as its candidate pool is per task) would
otherwise embed it again for each of up to 47 tasks.

Embedding is nearly all of the stage's time (search over 120,000 documents takes seconds), so
:func:`load_embedder` picks the fast settings for the hardware: bfloat16 where it runs natively
and a batch size that suits the device (see ``benchmarks/data_gen_throughput.py`` for the figures).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from data_gen.records import Pair

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class MiningReport:
    pairs_in: int = 0
    pairs_out: int = 0
    seconds: float = 0.0  # the whole stage
    embedding_seconds: float = 0.0  # inside the embedder (queries and documents)

    @property
    def search_seconds(self) -> float:
        """faiss search, margin filtering and selection: the rest of the stage."""
        return max(self.seconds - self.embedding_seconds, 0.0)


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
        raise ValueError(f"embedder dtype {dtype!r} is not one of {DTYPES}")
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


def load_embedder(name: str = "minilm", dtype: str = "auto", device: str | None = None):
    """The mining embedder: ``"minilm"`` (the packaged all-MiniLM-L6-v2) or any SentenceTransformer
    path / hub id, on ``device`` (default: sentence-transformers' choice, a GPU when there is one)
    in ``dtype`` (see :func:`resolve_dtype`)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import get_device_name

    from st_code.testing import minilm_path

    path = minilm_path() if name == "minilm" else name
    device = device or get_device_name()
    torch_dtype = resolve_dtype(dtype, device)
    return SentenceTransformer(path, device=device, model_kwargs={"dtype": torch_dtype})


_MISSING = object()


@contextmanager
def _shadowed(embedder, name: str, wrap) -> Iterator[None]:
    """For the block, ``embedder.<name>`` is ``wrap(<what it was>)``; afterwards exactly what it was
    (so wrappers nest: the inner one's exit restores the outer one)."""
    previous = vars(embedder).get(name, _MISSING)
    setattr(embedder, name, wrap(getattr(embedder, name)))  # an instance attribute shadows the method
    try:
        yield
    finally:
        if previous is _MISSING:
            delattr(embedder, name)
        else:
            setattr(embedder, name, previous)


@contextmanager
def embed_documents_once(embedder) -> Iterator[dict]:
    """While active, ``embedder.encode_document`` embeds only texts it has not seen (same prompt and
    normalisation) and serves the rest from memory. Yields the memo (text -> vector)."""
    import numpy as np

    memo: dict = {}

    def wrap(original):
        def encode_document(inputs, **kwargs):  # sentence-transformers' own signature: inputs, then keywords
            settings = (kwargs.get("prompt_name"), kwargs.get("prompt"), bool(kwargs.get("normalize_embeddings")))
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            new = [t for t in dict.fromkeys(texts) if (settings, t) not in memo]
            if new:
                vectors = original(new, **{**kwargs, "convert_to_numpy": True, "convert_to_tensor": False})
                memo.update({(settings, t): v for t, v in zip(new, vectors)})
            stacked = np.stack([memo[(settings, t)] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)
            return stacked[0] if isinstance(inputs, str) else stacked
        return encode_document

    with _shadowed(embedder, "encode_document", wrap):
        yield memo


@contextmanager
def embedding_timer(embedder) -> Iterator[list[float]]:
    """Adds the seconds spent inside ``encode_query`` / ``encode_document`` to the yielded one-item list."""
    total = [0.0]

    def wrap(original):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                total[0] += time.perf_counter() - start
        return timed

    with _shadowed(embedder, "encode_query", wrap), _shadowed(embedder, "encode_document", wrap):
        yield total


def mine(pairs: list[Pair], embedder, corpus_texts: list[str], num_negatives: int = 15,
         relative_margin: float = 0.05, batch_size: int | None = None, range_max: int = 100,
         cache_folder: str | None = None) -> tuple[list[Pair], MiningReport]:
    """Add ``num_negatives`` negatives to each pair, per task; pairs without enough candidates are dropped.

    ``batch_size`` None: :func:`default_batch_size` for the embedder's device. The report splits the
    time into embedding and the rest (search and selection)."""
    if batch_size is None:
        batch_size = default_batch_size(embedder.device.type)
    report = MiningReport(pairs_in=len(pairs))
    by_task: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_task.setdefault(pair.task, []).append(pair)
    corpus = [text for text in corpus_texts if text]
    kept: list[Pair] = []
    start = time.perf_counter()
    # the timer wraps the real encoders and the memo wraps the timer: texts served from memory cost nothing
    with embedding_timer(embedder) as embedding, embed_documents_once(embedder):
        for _, group in sorted(by_task.items()):
            kept += _mine_task(group, embedder, corpus, num_negatives, relative_margin, batch_size, range_max,
                               cache_folder)
    report.seconds = time.perf_counter() - start
    report.embedding_seconds = embedding[0]
    report.pairs_out = len(kept)
    return kept, report


def _mine_task(group: list[Pair], embedder, corpus: list[str], num_negatives: int, relative_margin: float,
               batch_size: int, range_max: int, cache_folder: str | None) -> list[Pair]:
    """One task: candidates are the task's positives plus the shared corpus."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    dataset = Dataset.from_dict({"anchor": [p.query for p in group], "positive": [p.positive for p in group]})
    result = mine_hard_negatives(
        dataset, embedder, corpus=corpus or None, num_negatives=num_negatives, relative_margin=relative_margin,
        range_max=max(num_negatives + 1, min(range_max, len(group) + len(corpus) - 1)), sampling_strategy="top",
        output_format="n-tuple", use_faiss=True, batch_size=batch_size, verbose=False, cache_folder=cache_folder,
    )
    by_text = {(p.query, p.positive): p for p in group}
    kept: list[Pair] = []
    for row in result:
        pair = by_text.get((row["anchor"], row["positive"]))
        if pair is not None:
            pair.negatives = [row[f"negative_{j + 1}"] for j in range(num_negatives)]
            kept.append(pair)
    return kept
