"""The loss a curriculum stage trains with, chosen from its config: length-sorted (or packed) GradCache,
sentence-transformers' own GradCache, or in-batch InfoNCE without caching; one joint softmax (CodeR,
CodeXEmbed) or C2LLM's two terms (``infonce: two_term``); inside ``MatryoshkaLoss`` when the stage names
``matryoshka_dims``; and the mini-batch limits GradCache cuts by."""

from __future__ import annotations

from collections.abc import Callable

import torch
from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss, MatryoshkaLoss
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from st_code.errors import UsageError
from st_code.training.losses import LengthSortedCachedMNRL, LengthSortedMNRL
from st_code.training.memory import choose_mini_batch_size, gpu_probe
from st_code.training.packing import ShapeMultiple, stage_packs
from st_code.training.two_term_loss import (
    LengthSortedTwoTermCachedMNRL, LengthSortedTwoTermMNRL, TwoTermCachedMNRL, TwoTermMNRL,
)


def sorts_without_gradcache(stage, device: str) -> bool:
    """Whether a stage without GradCache embeds in length-sorted chunks (:class:`LengthSortedMNRL`): with
    ``length_sorted`` on a CPU, where compute is the cost; on an accelerator (CUDA, MPS, XPU, ...) a chunk's
    kernel launches cost more than its padding saves."""
    return not stage.gradcache and stage.length_sorted and str(device).startswith("cpu")


def stage_loss(model, stage, gather_across_devices: bool = False,
               log: Callable[[str], None] = lambda message: None,
               shape_multiple: ShapeMultiple | None = None) -> torch.nn.Module:
    """The InfoNCE loss a curriculum stage trains with (scale = 1 / temperature): length-sorted GradCache,
    sentence-transformers' own GradCache (``length_sorted: false``), or plain in-batch InfoNCE
    (``gradcache: false``: no second forward pass, where memory is no issue; on a CPU in length-sorted
    chunks, :class:`LengthSortedMNRL`); inside
    sentence-transformers' ``MatryoshkaLoss`` when the stage names ``matryoshka_dims``. ``shape_multiple``:
    packed mini-batches' shapes rounded up (the run's resolved ``packed_shape_multiple``)."""
    scale = 1.0 / stage.temperature
    two = stage.infonce == "two_term"
    if two:
        log("  loss: C2LLM's two InfoNCE terms (in-batch + hard negatives), summed")
    if sorts_without_gradcache(stage, str(next(model.parameters()).device)):
        log(f"  forward: each column longest rows first, in chunks of at most {stage.mini_batch_padding:.0%} padding")
        loss = (LengthSortedTwoTermMNRL if two else LengthSortedMNRL)(
            model, scale=scale, gather_across_devices=gather_across_devices, max_padding=stage.mini_batch_padding)
    elif not stage.gradcache:
        loss = (TwoTermMNRL if two else MultipleNegativesRankingLoss)(model, scale=scale,
                                                                     gather_across_devices=gather_across_devices)
    else:
        rows, tokens = mini_batch_limits(model, stage, log)
        common = dict(scale=scale, mini_batch_size=rows, mini_batch_num_tokens=tokens,
                      gather_across_devices=gather_across_devices)
        if stage.length_sorted and stage_packs(model, stage, log):
            log(f"  mini-batch cut: rows packed side by side, each mini-batch filled to "
                f"{f'{tokens} token slots' if tokens else f'{rows} rows of the longest'}"
                + (f", its shape rounded up to {shape_multiple.rows} rows x {shape_multiple.width} tokens"
                   if shape_multiple else ""))
            loss = (LengthSortedTwoTermCachedMNRL if two else LengthSortedCachedMNRL)(
                model, pack=True, shape_multiple=shape_multiple, **common)
        elif stage.length_sorted:
            overhead = mini_batch_overhead(stage, str(next(model.parameters()).device), tokens)
            log(f"  mini-batch cut: the cheapest, one mini-batch costing {overhead} token slots" if overhead is not None
                else f"  mini-batch cut: at most {stage.mini_batch_padding:.0%} padding each")
            loss = (LengthSortedTwoTermCachedMNRL if two else LengthSortedCachedMNRL)(
                model, max_padding=stage.mini_batch_padding, overhead_slots=overhead, **common)
        else:
            loss = (TwoTermCachedMNRL if two else CachedMultipleNegativesRankingLoss)(model, **common)
    if stage.matryoshka_dims:
        dims = sorted(set(stage.matryoshka_dims), reverse=True)
        full = model.get_embedding_dimension()
        if dims[0] > full:
            raise UsageError(f"stage {stage.name!r}: matryoshka_dims {dims} go beyond the model's {full} dimensions")
        log(f"  Matryoshka: the loss is applied at {', '.join(map(str, dims))} dimensions")
        loss = MatryoshkaLoss(model, loss, matryoshka_dims=dims)
    return loss


def mini_batch_overhead(stage, device: str, tokens: int | None) -> int | None:
    """What one more mini-batch costs in token slots (``stage.mini_batch_overhead``), or None for the
    padding rule. ``auto``: on a GPU with a token budget, the whole budget. Measured on an H200 (C2LLM 0.5B
    shape, batch 128, benchmarks/step_anatomy.py): 3 mini-batches a step took 2.6 s, the 41 of the padding
    rule 17.9 s; on 2 CPU cores the padding rule is fastest (4.2 s against 5.6 s for the cheapest cut)."""
    if stage.mini_batch_overhead != "auto":
        return stage.mini_batch_overhead
    return tokens if device.startswith("cuda") and tokens is not None else None


def mini_batch_limits(model, stage, log: Callable[[str], None] = lambda message: None) -> tuple[int, int | None]:
    """GradCache's (rows, token slots) per mini-batch: the stage's, or for ``mini_batch_size: auto`` on a
    GPU the rows that fit at full length (st_code.training.memory), turned into a token-slot budget when
    mini-batches are length-sorted, so short rows go many at a time; 16 rows on a CPU."""
    if stage.mini_batch_size != "auto":
        return int(stage.mini_batch_size), stage.mini_batch_tokens
    device = str(next(model.parameters()).device)
    length = stage.max_seq_length or model.max_seq_length
    if not device.startswith("cuda"):
        rows = choose_mini_batch_size(stage.batch_size, device)
        log(f"  mini_batch_size auto: {rows} rows ({device})")
        return rows, stage.mini_batch_tokens
    fits = choose_mini_batch_size(stage.batch_size, device, gpu_probe(model, length))
    if not stage.length_sorted:  # unsorted mini-batches are as wide as their longest row: cap the rows
        log(f"  mini_batch_size auto: {fits} rows of {length} tokens fit on {device}")
        return fits, stage.mini_batch_tokens
    tokens = stage.mini_batch_tokens or fits * length
    log(f"  mini_batch_size auto: {fits} rows of {length} tokens fit on {device}: up to {tokens} token slots "
        "a mini-batch")
    return stage.batch_size, tokens


__all__ = ["stage_loss", "sorts_without_gradcache", "mini_batch_limits", "mini_batch_overhead"]
