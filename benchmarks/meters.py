"""Meters the training benchmarks share: the data they train on, a step clock with the GPU's busy time,
dynamo and CUDA-graph counters, a replay check and FLOP accounting (timing rounds: ``timing.py``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from token_meter import TokenMeter
from transformers import TrainerCallback

ROOT = Path(__file__).resolve().parents[1]
#: dense bf16 TFLOP/s by the vendors' datasheets (SXM parts)
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "B200": 2250.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}
WARMUP_STEPS = 1
PROFILED_STEPS = 2


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(docstring, code, a mined hard negative) from the standard library: real code of every length."""
    from st_code.data import build_offline_data
    from st_code.data.offline_pairs import TEXT2CODE
    from st_code.mining import load_embedder, mine_rows

    pairs = build_offline_data(heldout_percent=1, include_package_docs=False, max_code_lines=60,
                               max_pairs_per_task=n, seed=seed).train[TEXT2CODE]
    negatives = mine_rows([q for q, _ in pairs], [d for _, d in pairs], load_embedder("minilm"), 1)
    return [(q, d, found[0]) for (q, d), found in zip(pairs, negatives) if found]


def load_or_make_pairs(n: int, path: Path | None) -> list[tuple[str, str, str]]:
    """The pairs from ``path`` when it holds ``n`` requested pairs, else built here (and written there):
    a machine without the packaged MiniLM or tree-sitter (a rented GPU) reads the file made elsewhere."""
    if path is not None and path.exists():
        saved = json.loads(path.read_text())
        if saved.get("requested") == n:
            return [tuple(row) for row in saved["rows"]]
        print(f"{path} holds pairs for --pairs {saved.get('requested')}, not {n}: building them again")
    rows = make_pairs(n)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"requested": n, "rows": rows}))
    return rows


def flop_parameters(model) -> int:
    """Parameters that multiply every token: all of them but the input embedding (a table lookup)."""
    backbone = model[0].auto_model
    embedding = backbone.get_input_embeddings()
    skipped = sum(p.numel() for p in embedding.parameters()) if embedding is not None else 0
    return sum(p.numel() for p in model.parameters()) - skipped


def busy_time(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals: kernels on several streams count once."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def peak_tflops(device_name: str, override: float | None) -> float | None:
    return override or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device_name), None)


def dynamo_graphs() -> int:
    """How many graphs TorchDynamo has compiled in this process: a compiled run's steps that compile
    take seconds, and are told apart from its steady state by this count."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


_CUDA_GRAPHS_RECORDED: list[int] = []


def cuda_graphs_recorded() -> int | None:
    """How many CUDA graphs inductor has recorded in this process (``compile_mode: reduce-overhead``), counted
    from the first call on; None where this torch does not report recordings (before 2.7). Inductor records
    one graph per layer function and distinct input shape, so recordings during the timed steps mean that
    mini-batch shapes keep changing and each new one pays a recording."""
    from torch._dynamo import callback

    trigger = getattr(getattr(callback, "CallbackTrigger", None), "CUDAGRAPH_RECORDING", None)
    if trigger is None:
        return None
    if not _CUDA_GRAPHS_RECORDED:
        _CUDA_GRAPHS_RECORDED.append(0)

        def on_start(args) -> None:
            if args.callback_trigger is trigger:
                _CUDA_GRAPHS_RECORDED[0] += 1

        callback.callback_handler.register_start_callback(on_start)
    return _CUDA_GRAPHS_RECORDED[0]


class StepClock(TrainerCallback):
    """Trainer callback: the time, real tokens and token slots at the end of every step (after a
    device synchronise), and on a GPU a CUDA-only profiler trace of ``profile`` steps."""

    def __init__(self, meter: TokenMeter, cuda: bool, profile: range | None) -> None:
        self.meter, self.cuda, self.profile = meter, cuda, profile
        self.ends: list[tuple[float, int, int]] = []
        self.graphs: list[int] = []  # TorchDynamo's graphs compiled so far, at each step's end (compile: true)
        self.cuda_graphs: list[int | None] = []  # CUDA graphs recorded so far (compile_mode: reduce-overhead)
        self.shapes: list[int] = []  # distinct packed mini-batch shapes so far (each records its own CUDA graphs)
        self.kernel_seconds: float | None = None
        self.profile_wall: float | None = None
        self._profiler = None
        self._profile_start = 0.0

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        if self.profile is not None and state.global_step == self.profile.start:
            from torch.profiler import ProfilerActivity, profile

            self._sync()
            try:
                self._profiler = profile(activities=[ProfilerActivity.CUDA])
                self._profiler.__enter__()
            except Exception as error:  # a machine whose driver refuses tracing still gets its other figures
                print(f"no GPU busy share: the profiler did not start ({error})")
                self._profiler = None
            self._profile_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._sync()
        now = time.perf_counter()
        self.ends.append((now, self.meter.real, self.meter.slots))
        self.graphs.append(dynamo_graphs())
        self.cuda_graphs.append(cuda_graphs_recorded())
        self.shapes.append(len(self.meter.packed_shapes))
        if self._profiler is not None and state.global_step == self.profile.stop:
            self.profile_wall = now - self._profile_start
            try:
                self._profiler.__exit__(None, None, None)
                kernels = [(e.time_range.start, e.time_range.end) for e in self._profiler.events()
                           if str(getattr(e, "device_type", "")).endswith("CUDA")]
            except Exception as error:
                print(f"no GPU busy share: the profiler's trace could not be read ({error})")
                kernels = []
            self.kernel_seconds = busy_time(kernels) / 1e6 if kernels else None
            self._profiler = None


class ReplayCheck:
    """How far GradCache's replay of a mini-batch (with gradients) lands from its first pass (without): the
    loss's gradients are those of the first pass's embeddings only if the two agree, dropout masks and all.
    Compiled or CUDA-graph layers run the two passes as different graphs (and under CUDA graphs the random
    state is restored into recorded graphs), so this is measured rather than assumed. Wraps the loss's
    ``embed_minibatch``; the largest absolute difference over the run, and that of the embeddings themselves
    for scale, are kept on the device and read once at the end (a read per mini-batch would synchronise the
    GPU in the timed steps)."""

    def __init__(self, loss) -> None:
        self.replays = 0
        self._difference = self._value = None
        self._first: dict[tuple, object] = {}
        inner = loss.embed_minibatch

        def embed_minibatch(sentence_feature, begin, end, with_grad, copy_random_state, random_state=None):
            import torch

            reps, state = inner(sentence_feature, begin, end, with_grad, copy_random_state, random_state)
            key = (id(sentence_feature), begin, end)
            if not with_grad:
                self._first[key] = reps.detach().float().clone()
            elif key in self._first:
                first = self._first.pop(key)
                difference, value = (reps.detach().float() - first).abs().max(), first.abs().max()
                self._difference = difference if self._difference is None else torch.maximum(self._difference,
                                                                                              difference)
                self._value = value if self._value is None else torch.maximum(self._value, value)
                self.replays += 1
            return reps, state

        loss.embed_minibatch = embed_minibatch

    @property
    def max_difference(self) -> float:
        return 0.0 if self._difference is None else self._difference.item()

    @property
    def max_value(self) -> float:
        return 0.0 if self._value is None else self._value.item()


class StopAfter(TrainerCallback):
    """Ends a run after ``steps`` optimizer steps while its learning-rate schedule stays that of the full
    run: a shorter run with its own, faster-decaying schedule would not be comparable step by step."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.steps:
            control.should_training_stop = True


__all__ = ["PEAK_BF16_TFLOPS", "WARMUP_STEPS", "PROFILED_STEPS", "make_pairs", "load_or_make_pairs",
           "flop_parameters", "busy_time", "peak_tflops", "dynamo_graphs", "cuda_graphs_recorded", "StepClock",
           "ReplayCheck", "StopAfter"]
