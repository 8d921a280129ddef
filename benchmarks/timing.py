"""The one way the benchmarks time a comparison on these noisy machines: warm-up calls, then timed rounds,
variants interleaved (A B C, A B C, ...) so a slow minute hits all of them, then the median."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_rounds(works: dict[str, Callable[[], object]], rounds: int, warmup: int = 1,
                       sync: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Seconds of each round of each named ``work``, after ``warmup`` untimed calls of each; ``sync``
    (e.g. ``torch.cuda.synchronize``) runs before each clock stops."""
    for _ in range(warmup):
        for work in works.values():
            work()
    times: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(rounds):
        for name, work in works.items():
            start = time.perf_counter()
            work()
            if sync is not None:
                sync()
            times[name].append(time.perf_counter() - start)
    return times


def median_seconds(work: Callable[[], object], rounds: int = 5, warmup: int = 1) -> float:
    """The median seconds of ``rounds`` calls of one ``work`` after ``warmup`` untimed ones."""
    return statistics.median(interleaved_rounds({"work": work}, rounds, warmup)["work"])


__all__ = ["interleaved_rounds", "median_seconds"]
