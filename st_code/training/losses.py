"""GradCache InfoNCE that keeps padding out of the compute.

sentence-transformers' ``CachedMultipleNegativesRankingLoss`` cuts mini-batches from the batch as
sampled, so each is embedded at the width of its longest row. :class:`LengthSortedCachedMNRL` embeds
each column longest first and cuts it into mini-batches of similar length (at most ``mini_batch_size``
rows, ``mini_batch_num_tokens`` slots, ``max_padding``), then puts the embeddings back in batch order:
the loss, its in-batch negatives and its gradients are those of the unsorted batch; only the grouping
of the forward passes changes. On a GPU, where each mini-batch has a fixed launch cost, the cheapest cut
is found exactly (:func:`cheapest_ranges`, ``mini_batch_overhead``). With ``pack=True`` the rows of a
mini-batch are packed side by side (:mod:`st_code.training.packing`), all columns in one cut.
:class:`LengthSortedMNRL` does the same without GradCache in one pass. Flattened (flash-attention)
inputs have no padding and go through sentence-transformers' loss untouched. Measurements:
docs/benchmarks.md ("Speed and memory").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
from sentence_transformers.base.losses import gradcache
from sentence_transformers.base.losses.gradcache import RandContext, _create_minibatch
from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch import Tensor

from st_code.errors import UsageError
from st_code.training.packing import (
    ShapeMultiple, pack_feature, packed_ranges, packed_shape, packed_slots, packing_unsupported,
)

DEFAULT_MAX_PADDING = 0.1


def length_aware_ranges(lengths: list[int], max_rows: int, max_slots: int | None = None,
                        max_padding: float = DEFAULT_MAX_PADDING) -> list[tuple[int, int]]:
    """Cut rows sorted longest first into ``(begin, end)`` mini-batches: each ends at ``max_rows`` rows,
    at ``max_slots`` token slots (rows x its first row's length; a longer row goes alone), or before its
    padding share would pass ``max_padding``."""
    ranges: list[tuple[int, int]] = []
    begin = 0
    while begin < len(lengths):
        width = max(lengths[begin], 1)
        end, real = begin + 1, lengths[begin]
        while end < len(lengths) and end - begin < max_rows:
            rows = end + 1 - begin
            if max_slots is not None and rows * width > max_slots:
                break
            if real + lengths[end] < (1 - max_padding) * rows * width:
                break
            real += lengths[end]
            end += 1
        ranges.append((begin, end))
        begin = end
    return ranges


def cheapest_ranges(lengths: list[int], max_rows: int, max_slots: int | None, overhead_slots: float
                    ) -> list[tuple[int, int]]:
    """Cut rows sorted longest first into the ``(begin, end)`` mini-batches of least total cost, a
    mini-batch costing ``overhead_slots`` (its fixed cost, in token slots) plus rows x its first row's
    length, within ``max_rows`` rows and ``max_slots`` slots (a longer row goes alone). Exact: dynamic
    programming over the cut points, O(rows x the longest mini-batch)."""
    n = len(lengths)
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    start = np.zeros(n + 1, dtype=np.int64)
    for begin in range(n):
        width = max(int(lengths[begin]), 1)
        longest = min(n - begin, max_rows, max(1, max_slots // width) if max_slots is not None else n)
        ends = np.arange(begin + 1, begin + longest + 1)
        cost = best[begin] + overhead_slots + width * (ends - begin)
        better = cost < best[ends]
        best[ends[better]] = cost[better]
        start[ends[better]] = begin
    ranges, end = [], n
    while end > 0:
        ranges.append((int(start[end]), end))
        end = int(start[end])
    return ranges[::-1]


def trim_padding(feature: dict[str, Any]) -> dict[str, Any]:
    """Drop the columns that are padding in every row (leading and trailing), when positions are
    explicit (``position_ids``) or there is no leading padding to shift them."""
    mask = feature.get("attention_mask")
    if not isinstance(mask, Tensor) or mask.ndim != 2 or mask.shape[1] == 0:
        return feature
    active = mask.bool().any(dim=0).nonzero()
    if len(active) == 0:
        return feature
    first, last = int(active.min()), int(active.max()) + 1
    if first > 0 and "position_ids" not in feature:
        first = 0  # positions would come from the index: keep the leading columns
    if first == 0 and last == mask.shape[1]:
        return feature
    width = mask.shape[1]
    return {key: value[:, first:last] if isinstance(value, Tensor) and value.ndim >= 2 and value.shape[1] == width
            else value for key, value in feature.items()}


def merge_columns(features: list[dict[str, Any]], pad_token_id: int | None, padding_side: str
                  ) -> dict[str, Any] | None:
    """A batch's columns as one: rows stacked, each column padded to the widest on the tokenizer's side,
    so that packed mini-batches draw from every column (3 mini-batches a step become 1 where the batch's
    real tokens fit one token budget: each costs a fixed ~0.27 s of launches on an H200). None where a
    column carries anything but token rows and settings shared by all columns."""
    row_keys = ("input_ids", "attention_mask", "position_ids")
    shared = {k: v for k, v in features[0].items() if k not in row_keys}
    for feature in features:
        if not all(isinstance(feature.get(k), Tensor) and feature[k].ndim == 2 for k in row_keys[:2]):
            return None
        rest = {k: v for k, v in feature.items() if k not in row_keys}
        if rest.keys() != shared.keys() or any(isinstance(v, Tensor) or v != shared[k] for k, v in rest.items()):
            return None
        if ("position_ids" in feature) != ("position_ids" in features[0]):
            return None
    width = max(f["attention_mask"].shape[1] for f in features)
    merged = dict(shared)
    for key, fill in (("input_ids", pad_token_id or 0), ("attention_mask", 0), ("position_ids", 0)):
        if key not in features[0]:
            continue
        parts = []
        for feature in features:
            value = feature[key]
            pad = value.new_full((value.shape[0], width - value.shape[1]), fill)
            parts.append(torch.cat([pad, value] if padding_side == "left" else [value, pad], dim=1))
        merged[key] = torch.cat(parts)
    return merged


def _reorder(feature: dict[str, Any], order: Tensor) -> dict[str, Any]:
    rows = feature["attention_mask"].shape[0]
    return {key: value[order] if isinstance(value, Tensor) and value.ndim >= 1 and value.shape[0] == rows else value
            for key, value in feature.items()}


@contextmanager
def _boundaries(plans: dict[int, list[tuple[int, int]]]) -> Iterator[None]:
    """sentence-transformers computes a batch's GradCache boundaries once, in ``_minibatch_ranges``, and
    replays exactly those in the backward pass; for the features planned here, it gets ours."""
    stock = gradcache._minibatch_ranges

    def planned(feature, mini_batch_size, mini_batch_num_tokens=None):
        plan = plans.get(id(feature))
        return plan if plan is not None else stock(feature, mini_batch_size, mini_batch_num_tokens)

    gradcache._minibatch_ranges = planned
    try:
        yield
    finally:
        gradcache._minibatch_ranges = stock


class LengthSortedCachedMNRL(CachedMultipleNegativesRankingLoss):
    """``CachedMultipleNegativesRankingLoss`` that embeds each column longest row first, in mini-batches
    of similar length, each at its own width; same loss values and gradients.

    Args:
        max_padding: the largest share of padding a mini-batch may hold (it ends early rather than more).
        overhead_slots: when set, the cut is the cheapest one instead (:func:`cheapest_ranges`), one
            mini-batch costing this many token slots on top of its own; ``max_padding`` is then unused.
        pack: pack each mini-batch's rows side by side (:mod:`st_code.training.packing`); the cut then
            fills the token budget (``mini_batch_num_tokens``, else ``mini_batch_size`` rows of the
            column's longest) and the two settings above are unused. Decoders only (``packing_unsupported``).
        pack_columns: packed, embed all columns as one (:func:`merge_columns`), so that a mini-batch
            holds rows of every column; ``False`` packs each column on its own (for comparison).
        shape_multiple: packed, round each mini-batch's packed rows and width up to these multiples, within
            its memory (for CUDA graphs, which record one graph per shape); None: exact shapes.
        **kwargs: those of ``CachedMultipleNegativesRankingLoss``; ``mini_batch_size`` caps the rows and
            ``mini_batch_num_tokens`` the token slots (rows x width) of a mini-batch.
    """

    def __init__(self, model, *args, max_padding: float = DEFAULT_MAX_PADDING, overhead_slots: float | None = None,
                 pack: bool = False, pack_columns: bool = True, shape_multiple: ShapeMultiple | None = None,
                 **kwargs) -> None:
        super().__init__(model, *args, **kwargs)
        if not 0 <= max_padding < 1:
            raise ValueError(f"max_padding must be in [0, 1), got {max_padding}")
        if overhead_slots is not None and overhead_slots < 0:
            raise ValueError(f"overhead_slots must be >= 0, got {overhead_slots}")
        if pack and packing_unsupported(model):
            raise UsageError(f"sequence packing: {packing_unsupported(model)}")
        self.max_padding, self.overhead_slots, self.pack = max_padding, overhead_slots, pack
        self.pack_columns = pack_columns
        self.shape_multiple = shape_multiple if pack else None
        self.pad_token_id = model[0].tokenizer.pad_token_id if pack else None
        self.padding_side = getattr(model[0].tokenizer, "padding_side", "right") if pack else None
        self._inverse: list[Tensor] | None = None
        self._column_rows: list[int] | None = None  # packed: the rows of each column in the merged one

    def groups(self, features: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int] | None]:
        """What is embedded together: packed, all columns as one (:func:`merge_columns`) and each
        column's rows; else each column on its own."""
        if self.pack and self.pack_columns and len(features) > 1:
            merged = merge_columns(features, self.pad_token_id, self.padding_side)
            if merged is not None:
                return [merged], [f["attention_mask"].shape[0] for f in features]
        return features, None

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        features = list(sentence_features)
        if any("attention_mask" not in f or f["attention_mask"].ndim != 2 for f in features):
            self._inverse = self._column_rows = None  # flattened (unpadded) inputs: nothing to sort
            return super().forward(features, labels)
        if len(features) < 2:
            return super().forward(features, labels)  # sentence-transformers' own error
        groups, self._column_rows = self.groups(features)
        lengths = [f["attention_mask"].sum(dim=1) for f in groups]
        orders = [torch.argsort(n, descending=True, stable=True) for n in lengths]
        self._inverse = [torch.argsort(order) for order in orders]
        ordered = [_reorder(f, order) for f, order in zip(groups, orders)]
        plans = {id(f): self.plan(n[order].tolist()) for f, n, order in zip(ordered, lengths, orders)}
        with _boundaries(plans):
            return self.forward_cached(ordered, labels)

    def plan(self, lengths: list[int]) -> list[tuple[int, int]]:
        """The ``(begin, end)`` mini-batches of one column's lengths, sorted longest first."""
        if self.pack:
            return packed_ranges(lengths, self.mini_batch_size, self.mini_batch_num_tokens, self.shape_multiple)
        if self.overhead_slots is not None:
            return cheapest_ranges(lengths, self.mini_batch_size, self.mini_batch_num_tokens, self.overhead_slots)
        return length_aware_ranges(lengths, self.mini_batch_size, self.mini_batch_num_tokens, self.max_padding)

    def slots(self, lengths: list[int], ranges: list[tuple[int, int]]) -> int:
        """The token slots the mini-batches of :meth:`plan` compute, padding included."""
        if self.pack:
            return packed_slots(lengths, ranges, *self._packed_memory())
        return sum(max(lengths[begin:end]) * (end - begin) for begin, end in ranges)

    def _packed_memory(self) -> tuple[ShapeMultiple | None, int, int | None]:
        """(shape multiple, rows, token slots): how a packed mini-batch may be rounded up."""
        return self.shape_multiple, self.mini_batch_size, self.mini_batch_num_tokens

    def packed_shape(self, lengths: list[int]) -> tuple[int, int]:
        """(packed rows, width) of the packed mini-batch of texts of these ``lengths``: what a CUDA graph is
        recorded for."""
        return packed_shape(lengths, *self._packed_memory())

    def embed_minibatch(self, sentence_feature: dict[str, Tensor], begin: int, end: int, with_grad: bool,
                        copy_random_state: bool, random_state: RandContext | None = None):
        grad_context = torch.enable_grad if with_grad else torch.no_grad
        minibatch = trim_padding(_create_minibatch(sentence_feature, begin, end))
        with random_state if random_state is not None else nullcontext():
            with grad_context():
                state = RandContext(*minibatch.values()) if copy_random_state else None
                if self.pack:
                    minibatch = pack_feature(minibatch, self.pad_token_id, *self._packed_memory())
                reps = self.model(minibatch)["sentence_embedding"]
        return reps, state

    def calculate_loss(self, reps: list[list[Tensor]], labels: Tensor | None = None, *,
                       with_backward: bool = False) -> Tensor:
        if self._inverse is None:
            return super().calculate_loss(reps, labels, with_backward=with_backward)
        in_batch_order = [torch.cat(column)[back] for column, back in zip(reps, self._inverse)]
        if self._column_rows is not None:  # one merged group back to its columns
            in_batch_order = list(torch.split(in_batch_order[0], self._column_rows))
        in_batch_order = [[column] for column in in_batch_order]
        # one backward over the whole (small) score matrix: the reordering's graph is walked once
        loss = super().calculate_loss(in_batch_order, labels, with_backward=False)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss


def embed_length_sorted(model, feature: dict[str, Tensor], max_padding: float = DEFAULT_MAX_PADDING) -> Tensor:
    """A column's embeddings, with gradients, computed longest rows first in chunks of similar length (each
    ends before its padding passes ``max_padding``, each at its own width), returned in the column's order."""
    lengths = feature["attention_mask"].sum(dim=1)
    order = torch.argsort(lengths, descending=True, stable=True)
    ordered = _reorder(feature, order)
    ranges = length_aware_ranges(lengths[order].tolist(), len(order), None, max_padding)
    if len(ranges) == 1:
        return model(trim_padding(feature))["sentence_embedding"]
    parts = [model(trim_padding(_create_minibatch(ordered, begin, end)))["sentence_embedding"]
             for begin, end in ranges]
    return torch.cat(parts)[torch.argsort(order)]


class LengthSortedMNRL(MultipleNegativesRankingLoss):
    """In-batch InfoNCE without GradCache (one forward pass with gradients) that embeds each column in
    length-sorted chunks, each at its own width (:func:`embed_length_sorted`); the same loss and gradients.

    Why: the collator pads a column to its longest row, and sentence-transformers' loss embeds the
    candidate columns merged, padded to the longest of them all; on the offline default's batches 42% of
    the token slots of its columns were padding. On a CPU, where compute is the cost, chunks of at most 10%
    padding made a training step 1.3x as fast (docs/benchmarks.md). On a GPU one pass per column is kept:
    each extra chunk costs a round of kernel launches there.

    Args:
        max_padding: the largest share of padding a chunk may hold.
        **kwargs: those of ``MultipleNegativesRankingLoss``.
    """

    def __init__(self, model, *args, max_padding: float = DEFAULT_MAX_PADDING, **kwargs) -> None:
        super().__init__(model, *args, **kwargs)
        if not 0 <= max_padding < 1:
            raise ValueError(f"max_padding must be in [0, 1), got {max_padding}")
        self.max_padding = max_padding

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        features = list(sentence_features)
        if len(features) < 2 or any(not isinstance(f.get("attention_mask"), Tensor) or f["attention_mask"].ndim != 2
                                    for f in features):
            return super().forward(features, labels)  # flattened inputs, or sentence-transformers' own error
        embeddings = [embed_length_sorted(self.model, f, self.max_padding) for f in features]
        return self.compute_loss_from_embeddings(embeddings, labels)


__all__ = ["LengthSortedCachedMNRL", "LengthSortedMNRL", "embed_length_sorted", "length_aware_ranges", "cheapest_ranges",
           "merge_columns", "trim_padding", "DEFAULT_MAX_PADDING"]
