"""Sequence packing for GradCache mini-batches where flash-attn's unpadding does not already run.

Several rows of a length-sorted mini-batch are put side by side in one row (first-fit, longest first),
each with its own position ids from 0, and the token states go back to the padded layout for pooling, so
the layers' work goes to real tokens instead of padding. Each text attends only to itself, as when
padded: on sdpa, eager and FlexAttention transformers builds a block-diagonal causal mask from the
position ids (for a bidirectional decoder the backbone hands it a document mask,
:mod:`st_code.modules.document_mask`); PyTorch's variable-length kernel reads the texts off the position
ids and needs no mask (:mod:`st_code.modules.varlen_attention`). A :class:`ShapeMultiple` rounds packed
shapes up so that a few recur, for runs whose layers record CUDA graphs. Measurements: docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from st_code.errors import UsageError
from st_code.modules.code_transformer import PACKED_ROWS


@dataclass(frozen=True)
class ShapeMultiple:
    """Packed mini-batches rounded up to a multiple of ``rows`` packed rows and ``width`` tokens, so that
    their shapes recur (CUDA graphs record one graph per shape). The filler is padding: rows of their own
    and slots at a row's end, never attended to by a text and never pooled."""

    rows: int
    width: int

    def __post_init__(self) -> None:
        for name in ("rows", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ShapeMultiple.{name}: a whole number >= 1, got {value!r}")


#: What ``packed_shape_multiple: auto`` rounds to where the layers record CUDA graphs: at an H200's token
#: budget on the C2LLM-0.5B stage, 3 shapes in 50 steps instead of 36, for 6.8 points more padding
#: (4 x 128: 6 shapes, 2.9 points; benchmarks/packed_shapes.py).
CUDA_GRAPH_SHAPE_MULTIPLE = ShapeMultiple(rows=8, width=128)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def packed_width(longest: int, multiple: ShapeMultiple | None = None) -> int:
    """The width a packed mini-batch whose longest text has ``longest`` tokens is packed at."""
    width = max(int(longest), 1)
    return _round_up(width, multiple.width) if multiple else width


def packed_rows(bins: int, width: int, multiple: ShapeMultiple | None = None, max_rows: int | None = None,
                max_slots: int | None = None) -> int:
    """The packed rows of a mini-batch whose texts fill ``bins`` rows of ``width``: ``bins`` rounded up to
    the multiple, but never past the mini-batch's memory (``max_slots`` token slots, else ``max_rows``
    rows) unless the texts themselves need more."""
    if not multiple or multiple.rows == 1:
        return bins
    rounded = _round_up(bins, multiple.rows)
    room = max_slots // width if max_slots else max_rows
    return rounded if room is None else max(bins, min(rounded, room))


def resolve_shape_multiple(setting: Any, cuda_graphs: bool) -> ShapeMultiple | None:
    """``packed_shape_multiple`` as configured: ``[rows, width]``, ``null`` (exact shapes) or ``auto``
    (:data:`CUDA_GRAPH_SHAPE_MULTIPLE` where the layers record CUDA graphs, exact elsewhere: rounding only
    adds padding when nothing records per shape)."""
    if setting == "auto":
        return CUDA_GRAPH_SHAPE_MULTIPLE if cuda_graphs else None
    if setting is None:
        return None
    if isinstance(setting, ShapeMultiple):
        return setting
    if isinstance(setting, (list, tuple)) and len(setting) == 2:
        return ShapeMultiple(*setting)
    raise ValueError(f"packed_shape_multiple: [rows, width], null or auto, got {setting!r}")


def first_fit(lengths: Sequence[int], width: int) -> tuple[list[int], list[int], list[int]]:
    """Rows (longest first for a tight fit) into bins of ``width`` slots: each row's bin and offset in
    it, and each bin's used slots. A row wider than ``width`` is an error (the width is the longest row)."""
    bins_used: list[int] = []
    bin_of, offset_of = [0] * len(lengths), [0] * len(lengths)
    for row in sorted(range(len(lengths)), key=lambda r: -lengths[r]):
        length = lengths[row]
        if length > width:
            raise ValueError(f"row of {length} tokens does not fit a packing width of {width}")
        target = next((b for b, used in enumerate(bins_used) if used + length <= width), None)
        if target is None:
            target = len(bins_used)
            bins_used.append(0)
        bin_of[row], offset_of[row] = target, bins_used[target]
        bins_used[target] += length
    return bin_of, offset_of, bins_used


def packing_unsupported(model: Any) -> str | None:
    """Why a sentence-transformers model cannot train on packed rows, or None when it can."""
    first = next(iter(model), None)
    reason = getattr(first, "packing_unsupported", None)
    if reason is None:
        return f"the backbone is {type(first).__name__}, not st-code's CodeTransformer"
    return reason()


def check_stage_packing(model: Any, stage: Any) -> None:
    """Refuse ``pack_sequences: true`` for a model that cannot train on packed rows, naming the stage,
    the reason and the fix (the curriculum checks every stage before it reads any data). ``auto`` is
    never refused: it packs only where the model can (:func:`stage_packs`)."""
    reason = packing_unsupported(model) if stage.pack_sequences is True else None
    if reason:
        raise UsageError(f"stage {stage.name!r}: pack_sequences: true, but {reason}; set pack_sequences: auto "
                         "or false for this model")


def stage_packs(model: Any, stage: Any, log: Callable[[str], None] = lambda message: None,
                device: str | None = None) -> bool:
    """Whether a stage's GradCache mini-batches are packed. ``true``: yes (refused where the model
    cannot); ``false``: no; ``auto`` (the default): on a CUDA device, for length-sorted GradCache and a
    model that can. Measured on an H200 (C2LLM-0.5B shape, batch 128, docs/benchmarks.md): 1.29 s a
    step packed against 2.12 s for the unpacked cut, the same loss curve over 50 steps, and 0.96 s since
    the columns are packed together (one mini-batch a step, 1.0% padding); on 2 CPU
    cores, where compute is the cost, packing gains nothing at the 0.5B's width (1.01x) and loses with
    a small model (0.45x), so ``auto`` leaves a CPU unpacked. ``device``: where the model trains (default:
    where its parameters are)."""
    if stage.pack_sequences is True:
        check_stage_packing(model, stage)
        return True
    if stage.pack_sequences != "auto" or not (stage.gradcache and stage.length_sorted):
        return False
    if not str(device or next(model.parameters()).device).startswith("cuda"):
        return False
    reason = packing_unsupported(model)
    if reason:
        log(f"  pack_sequences auto: not packed, {reason}")
    return reason is None


def packed_ranges(lengths: Sequence[int], max_rows: int, max_slots: int | None,
                  multiple: ShapeMultiple | None = None) -> list[tuple[int, int]]:
    """GradCache mini-batches of a column sorted longest first, each packed (:func:`first_fit`) at the
    width of its first row (rounded up to ``multiple``), as many rows as fit ``max_slots`` packed slots.
    Without a slot budget, the budget is ``max_rows`` rows of the column's longest: the first mini-batch
    is the stock one, and no later one holds more slots."""
    if not lengths:
        return []
    budget = max_slots if max_slots is not None else max_rows * packed_width(lengths[0], multiple)
    ranges: list[tuple[int, int]] = []
    begin = 0
    while begin < len(lengths):
        width = packed_width(lengths[begin], multiple)
        free: list[int] = []  # free slots per bin; rows come longest first, so first fit stays exact
        end = begin
        while end < len(lengths):
            length = int(lengths[end])
            target = next((b for b, room in enumerate(free) if room >= length), None)
            if target is None:
                if end > begin and (len(free) + 1) * width > budget:
                    break
                free.append(width)
                target = len(free) - 1
            free[target] -= length
            end += 1
        ranges.append((begin, end))
        begin = end
    return ranges


def packed_shape(lengths: Sequence[int], multiple: ShapeMultiple | None = None, max_rows: int | None = None,
                 max_slots: int | None = None) -> tuple[int, int]:
    """(packed rows, width) of the packed mini-batch of texts of these ``lengths``, as :func:`pack_feature`
    builds it."""
    width = packed_width(max(lengths), multiple)
    bins = len(first_fit([int(n) for n in lengths], width)[2])
    return packed_rows(bins, width, multiple, max_rows, max_slots), width


def packed_slots(lengths: Sequence[int], ranges: Sequence[tuple[int, int]], multiple: ShapeMultiple | None = None,
                 max_rows: int | None = None, max_slots: int | None = None) -> int:
    """The token slots the packed mini-batches of :func:`packed_ranges` compute (packed rows x width)."""
    slots = 0
    for begin, end in ranges:
        rows, width = packed_shape(lengths[begin:end], multiple, max_rows, max_slots)
        slots += rows * width
    return slots


class PackedRows:
    """How a packed mini-batch maps back to its padded rows: the original attention mask and, for each
    padded slot, the packed slot holding its token (or the zero row appended at the end, for padding)."""

    def __init__(self, attention_mask: Tensor, source: Tensor) -> None:
        self.attention_mask = attention_mask
        self.source = source

    def token_embeddings(self, packed: Tensor) -> Tensor:
        """(bins, width, d) -> (rows, length, d), zeros on padding; differentiable."""
        flat = packed.reshape(-1, packed.shape[-1])
        flat = torch.cat([flat, flat.new_zeros(1, flat.shape[-1])])
        rows, length = self.attention_mask.shape
        return flat[self.source].view(rows, length, flat.shape[-1])


def pack_feature(feature: dict[str, Any], pad_token_id: int, multiple: ShapeMultiple | None = None,
                 max_rows: int | None = None, max_slots: int | None = None) -> dict[str, Any]:
    """A tokenized mini-batch (``input_ids`` + ``attention_mask``, either padding side) as packed rows:
    ``input_ids`` and ``position_ids`` of shape (bins, width), no attention mask (transformers then
    reads the sequences off the position ids), and :class:`PackedRows` under :data:`PACKED_ROWS`. With a
    ``multiple``, the shape is rounded up (:func:`packed_shape`; ``max_rows``/``max_slots``: the memory
    the rounding may not exceed)."""
    mask = feature["attention_mask"].bool()
    input_ids = feature["input_ids"]
    rows, length = mask.shape
    lengths = mask.sum(dim=1).tolist()
    width = packed_width(max(lengths), multiple)
    bin_of, offset_of, used = first_fit(lengths, width)
    used = used + [0] * (packed_rows(len(used), width, multiple, max_rows, max_slots) - len(used))  # filler rows
    device = input_ids.device
    starts = torch.tensor([b * width + o for b, o in zip(bin_of, offset_of)], device=device)
    rank = mask.long().cumsum(dim=1) - 1  # a token's place among its row's real tokens
    destination = starts[:, None] + rank  # its packed slot
    total = len(used) * width
    packed_ids = input_ids.new_full((total,), pad_token_id)
    packed_ids[destination[mask]] = input_ids[mask]
    # position ids: each text from 0; the filler at a bin's end is a sequence of its own, also from 0,
    # so that transformers never reads it as the continuation of the text before it
    positions = torch.arange(total, device=device) % width
    bin_fill = torch.tensor(used, device=device).repeat_interleave(width)
    positions = torch.where(positions >= bin_fill, positions - bin_fill, positions)
    positions[destination[mask]] = rank[mask]
    source = torch.full((rows, length), total, dtype=torch.long, device=device)  # `total`: the zero row
    source[mask] = destination[mask]
    packed = {key: value for key, value in feature.items()
              if not (isinstance(value, Tensor) and value.ndim >= 1 and value.shape[0] == rows)}
    packed.update(input_ids=packed_ids.view(len(used), width), position_ids=positions.view(len(used), width))
    packed[PACKED_ROWS] = PackedRows(feature["attention_mask"], source.view(-1))
    return packed


__all__ = ["CUDA_GRAPH_SHAPE_MULTIPLE", "PACKED_ROWS", "PackedRows", "ShapeMultiple", "check_stage_packing",
           "first_fit", "pack_feature", "packed_ranges", "packed_rows", "packed_shape", "packed_slots", "packed_width",
           "packing_unsupported", "resolve_shape_multiple"]
