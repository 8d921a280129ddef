"""Regional ``torch.compile`` for training: the backbone's repeated blocks compiled in place.

The trainer's own ``torch_compile`` compiles the whole SentenceTransformer as one graph, which
GradCache's ever-changing mini-batch shapes recompile again and again; the kernel launches a GPU waits
on come from the layers, so each block is compiled in place (``nn.Module.compile``, dynamic shapes), only
while a stage trains (:func:`compiled_layers`). One compiled code serves every layer; a handful of
graphs are made in the first steps. GradCache's replay sees the same dropout masks as its first pass;
the ``eager`` backend with activation checkpointing would recompute other masks, so that pairing is
refused. Under CUDA graphs, outputs the next layer reads are kept (:func:`outputs_kept_past_the_next_call`);
CUDA graphs with GradCache are refused (:func:`check_cuda_graphs_with_gradcache`). Why each choice and
what it measured: docs/training.md and docs/benchmarks.md ("compile").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_map_only

from st_code.errors import UsageError

#: torch.compile modes (``compile_mode``); None is PyTorch's default.
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: The modes in which inductor runs compiled layers as CUDA graphs (on a CUDA device): one graph recorded
#: per input shape, which is why packed shapes are then rounded up (``packed_shape_multiple``).
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
#: Set to 1 to train CUDA graph modes with GradCache anyway: to measure them again on another PyTorch.
ALLOW_CUDA_GRAPHS_WITH_GRADCACHE = "ST_CODE_ALLOW_CUDA_GRAPHS_WITH_GRADCACHE"
#: Graphs one block may hold before PyTorch falls back to eager for it: 2 grad modes x 2 input kinds x
#: mask or none x rows of one or many is 16; PyTorch's default of 8 would silently run the rest eager.
RECOMPILE_LIMIT = 32


def repeated_blocks(module: nn.Module) -> list[nn.Module]:
    """The blocks of every ``ModuleList`` holding two or more modules of one class (a decoder's or an
    encoder's layers), outermost first; nothing inside a block is searched."""
    found: list[nn.Module] = []

    def visit(node: nn.Module) -> None:
        for child in node.children():
            blocks = list(child) if isinstance(child, nn.ModuleList) else []
            if len(blocks) > 1 and len({type(b) for b in blocks}) == 1:
                found.extend(blocks)
            else:
                visit(child)

    visit(module)
    return found


def backbone_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a SentenceTransformer's backbone (its first module's ``auto_model``), or of
    ``model`` itself when it is not a SentenceTransformer."""
    backbone = getattr(model[0], "auto_model", None) if isinstance(model, nn.Sequential) else model
    return repeated_blocks(backbone) if backbone is not None else []


def compile_blocks(model: nn.Module, backend: str = "inductor", mode: str | None = None) -> int:
    """``torch.compile`` each repeated block of ``model``'s backbone in place, with dynamic shapes; returns
    how many. Call it again after the blocks change (a new adapter): compiling is idempotent."""
    blocks = backbone_blocks(model)
    if not blocks:
        raise UsageError("compile: found no repeated layers to compile in this model's backbone; "
                         "set compile: false")
    check_compile_settings(backend, mode, gradient_checkpointing=any(
        getattr(block, "gradient_checkpointing", False) for block in blocks))
    dynamo = torch._dynamo.config  # torch 2.6, which st-code allows, names the limit cache_size_limit
    limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"
    setattr(dynamo, limit, max(getattr(dynamo, limit), RECOMPILE_LIMIT))
    for block in blocks:
        block.compile(dynamic=True, backend=backend, mode=mode)
        if mode in CUDA_GRAPH_MODES:
            block._compiled_call_impl = outputs_kept_past_the_next_call(block._compiled_call_impl)
    return len(blocks)


def outputs_kept_past_the_next_call(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` (a block compiled in a CUDA graph mode) with each output tensor that needs no gradient
    cloned out of the CUDA graphs' memory pool.

    Why: PyTorch's CUDA graph trees start a new "generation" when a compiled function is entered and no
    backward is pending, and free the live outputs of the previous one. Each compiled layer is its own
    torch.compile call, so without gradients (GradCache's first pass over every mini-batch, or any forward
    pass without them while the layers are compiled) layer k+1's call would free layer k's output, its own
    input: "accessing tensor output of CUDAGraphs that has been overwritten by a subsequent run"
    (``dealloc_current_path_weakrefs`` in torch/_inductor/cudagraph_trees.py; pytorch/pytorch#160281,
    chained compiled functions). The copy is what PyTorch's message asks for, one activation a layer. An
    output that needs a gradient is left where it is: its pending backward keeps the generation, and
    autograd saved it there."""

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        return tensor if tensor.requires_grad else tensor.clone()

    def call_and_keep(*args: Any, **kwargs: Any) -> Any:
        return tree_map_only(torch.Tensor, keep, call(*args, **kwargs))

    call_and_keep.__wrapped__ = call  # type: ignore[attr-defined]
    return call_and_keep


@contextmanager
def compiled_layers(model: nn.Module, backend: str = "inductor", mode: str | None = None) -> Iterator[int]:
    """:func:`compile_blocks` for the duration of the block (yields how many), then the blocks run eagerly
    again. Compiling the same layers again later reuses PyTorch's compiled code where the guards hold."""
    blocks = compile_blocks(model, backend, mode)
    try:
        yield blocks
    finally:
        for block in backbone_blocks(model):
            block._compiled_call_impl = None  # what nn.Module.compile set; __call__ falls back to eager


def records_cuda_graphs(compile: bool, mode: str | None, device: str) -> bool:
    """Whether compiled layers will run as CUDA graphs: compiled, in a CUDA graph mode, on a CUDA device
    (inductor skips CUDA graphs elsewhere)."""
    return bool(compile) and mode in CUDA_GRAPH_MODES and str(device).startswith("cuda")


def check_cuda_graphs_with_gradcache(cuda_graphs: bool, stage: Any) -> None:
    """Refuse layers running as CUDA graphs (``cuda_graphs``: :func:`records_cuda_graphs`) for a stage that
    trains with GradCache, before any data is read.

    Why: GradCache replays each mini-batch's forward pass and runs its backward from a hook inside the step's
    own backward pass, which PyTorch's CUDA graph trees do not survive: on an NVIDIA H200 with torch 2.11
    (docs/benchmarks.md) every such run died of a segmentation fault in the compiled backward of the first
    replay, with the packed shapes rounded up or exact (a known class of crash: pytorch/pytorch#105169,
    dynamic shapes with a backward). Setting :data:`ALLOW_CUDA_GRAPHS_WITH_GRADCACHE` to 1 lets it run, to
    measure it again on another PyTorch."""
    if not (cuda_graphs and stage.gradcache) or os.environ.get(ALLOW_CUDA_GRAPHS_WITH_GRADCACHE) == "1":
        return
    raise UsageError(
        f"stage {stage.name!r}: compile_mode runs the compiled layers as CUDA graphs, and this stage trains with "
        "GradCache, whose replayed backward runs inside the step's backward: that crashed the process (a "
        "segmentation fault) on an H200 with torch 2.11 (docs/benchmarks.md). Use compile_mode: default or "
        "max-autotune-no-cudagraphs (compiled layers without CUDA graphs), or leave compile off; to measure "
        f"CUDA graphs on another PyTorch anyway, set {ALLOW_CUDA_GRAPHS_WITH_GRADCACHE}=1")


def check_compile_settings(backend: Any, mode: Any, gradient_checkpointing: bool = False) -> None:
    """A clear error for an unknown backend or mode, or for a backend that gets checkpointing wrong,
    before any training starts."""
    if not isinstance(backend, str) or backend not in torch._dynamo.list_backends(exclude_tags=()):
        raise UsageError(f"compile_backend: {backend!r} is not a torch.compile backend; use inductor (speed), "
                         "aot_eager or eager (to check that a model compiles), or one of "
                         f"{torch._dynamo.list_backends()}")
    if mode not in COMPILE_MODES:
        raise UsageError(f"compile_mode: {mode!r}; use one of {list(COMPILE_MODES)}")
    if mode not in (None, "default") and backend != "inductor":
        # torch.compile passes a mode to other backends, which ignore it: CUDA graphs or autotuning
        # would silently not happen
        raise UsageError(f"compile_mode: {mode} is an inductor mode, and compile_backend is {backend}, which would "
                         "ignore it; use compile_backend: inductor, or leave compile_mode unset")
    if gradient_checkpointing and backend == "eager":
        raise UsageError("compile_backend: eager with gradient_checkpointing recomputes each layer with other dropout "
                         "masks than its forward used (PyTorch does not preserve the random state there), so the "
                         "gradients would be wrong; use compile_backend: aot_eager to check that a model compiles, "
                         "or turn gradient_checkpointing off")


__all__ = ["COMPILE_MODES", "CUDA_GRAPH_MODES", "RECOMPILE_LIMIT", "ALLOW_CUDA_GRAPHS_WITH_GRADCACHE",
           "records_cuda_graphs", "check_cuda_graphs_with_gradcache", "repeated_blocks",
           "backbone_blocks", "compile_blocks", "outputs_kept_past_the_next_call", "compiled_layers",
           "check_compile_settings"]
