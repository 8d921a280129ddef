"""Checking a ``--device`` before any work: a typo or a GPU that is not there is one clear line, not a
traceback from deep inside PyTorch after the data was read."""

from __future__ import annotations

from st_code.errors import UsageError


def check_device(device: str | None) -> None:
    """Raise :class:`UsageError` unless ``device`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``...; None: the best
    available) names a device this machine has."""
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device!r} is not a device name: use cpu, cuda, cuda:N or mps, or leave "
                         "--device out for the best available") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise UsageError(f"--device {device}: PyTorch sees no CUDA GPU here (torch {torch.__version__}, {build}); "
                             "leave --device out to use the best available device")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                             f"numbered from 0")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {device}: no Apple GPU (MPS) here; leave --device out to use the best available")


__all__ = ["check_device"]
