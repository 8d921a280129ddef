"""How many rows GradCache embeds at once (``mini_batch_size: auto``).

GradCache keeps one mini-batch's activations alive at a time, so the mini-batch is the one knob
between speed and memory: on a GPU, larger is faster until memory runs out (measured on an H100 with
the C2LLM 0.5B shape: 16 -> 25 s a step, 64 -> 11.3 s, 128 -> 11.0 s). ``auto`` therefore probes: it
runs one forward and backward at the stage's full length with halving mini-batches, from the batch
size down, and keeps the first that fits in 85% of the GPU's memory. On a CPU memory is no limit and
speed is flat past a few rows: 16.
"""

from __future__ import annotations

from collections.abc import Callable

CPU_MINI_BATCH = 16
MEMORY_HEADROOM = 0.85


def choose_mini_batch_size(batch_size: int, device: str, fits: Callable[[int], bool] | None = None) -> int:
    """The largest power of two <= ``batch_size`` (or ``batch_size`` itself) for which ``fits(n)`` holds,
    halving from the top; ``CPU_MINI_BATCH`` on a CPU. ``fits`` defaults to a real probe on ``device``."""
    if not device.startswith("cuda"):
        return min(CPU_MINI_BATCH, batch_size)
    if fits is None:
        raise ValueError("a CUDA device needs a probe: pass fits=gpu_probe(model, max_seq_length)")
    size = batch_size
    while size > 1:
        if fits(size):
            return size
        size = size // 2 if size & (size - 1) == 0 else 1 << (size.bit_length() - 1)
    return 1


def probe_pass(model, rows: int, max_seq_length: int) -> None:
    """One forward and backward of ``rows`` rows of ``max_seq_length`` tokens, as training runs it: in
    train mode (a loaded backbone comes in eval mode, and encoding leaves the model there; eval mode
    skips gradient checkpointing and dropout, whose masks training keeps), under bf16 autocast on a GPU.
    The model's mode is restored and its gradients cleared afterwards."""
    import torch

    device = next(model.parameters()).device
    text = " ".join(["code"] * max_seq_length)
    features = model.preprocess([text] * rows)
    features = {k: v.to(device) if hasattr(v, "to") else v for k, v in features.items()}
    was_training = model.training
    model.train()
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            model(features)["sentence_embedding"].float().sum().backward()
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)


def gpu_probe(model, max_seq_length: int) -> Callable[[int], bool]:
    """``fits(n)``: one training pass (:func:`probe_pass`) of ``n`` rows of ``max_seq_length`` tokens stays
    within ``MEMORY_HEADROOM`` of the GPU's memory (an out-of-memory error means no)."""
    import torch

    device = next(model.parameters()).device
    total = torch.cuda.get_device_properties(device).total_memory

    def fits(rows: int) -> bool:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        try:
            probe_pass(model, rows, max_seq_length)
            ok = torch.cuda.max_memory_allocated(device) < MEMORY_HEADROOM * total
        except torch.cuda.OutOfMemoryError:
            ok = False
        finally:
            torch.cuda.empty_cache()
        return ok

    return fits


__all__ = ["choose_mini_batch_size", "gpu_probe", "probe_pass", "CPU_MINI_BATCH"]
