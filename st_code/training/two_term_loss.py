"""C2LLM's objective (section 3): two InfoNCE terms, each at the stage's temperature, summed with weight 1.

* in-batch: each query against every positive of the batch (gathered across processes when the stage
  gathers), its own positive the target;
* hard-negative: each query against its own positive and its own hard negatives only.

sentence-transformers' ``MultipleNegativesRankingLoss`` (what CodeR and CodeXEmbed train with) puts all of
them in one joint softmax instead. The two-term loss is offered for both paths: without GradCache
(:class:`TwoTermMNRL`) and with it (:class:`TwoTermCachedMNRL`, whose score matrix is small enough to take
whole), and with st-code's length-sorted cuts on top (``LengthSortedTwoTerm*``). Stage key:
``infonce: two_term``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from sentence_transformers.util import all_gather_with_grad, get_rank
from torch import Tensor

from st_code.training.losses import LengthSortedCachedMNRL, LengthSortedMNRL

INFONCE_KINDS = ("joint", "two_term")


def two_term_infonce(queries: Tensor, docs: list[Tensor], scale: float, similarity_fct,
                     gather_across_devices: bool = False) -> Tensor:
    """The in-batch term plus the hard-negative term for ``queries`` and ``docs`` = [positives, negatives_1,
    ...] (rows aligned with the queries). With no negatives it is the in-batch term alone."""
    positives, offset = docs[0], 0
    if gather_across_devices:
        positives = all_gather_with_grad(positives)
        offset = get_rank() * len(queries)
    targets = torch.arange(offset, offset + len(queries), device=queries.device)
    loss = F.cross_entropy(similarity_fct(queries, positives) * scale, targets)
    if len(docs) > 1:
        own = torch.stack([similarity_fct(queries, column).diagonal() for column in docs], dim=1)
        loss = loss + F.cross_entropy(own * scale, torch.zeros(len(queries), dtype=torch.long, device=queries.device))
    return loss


class TwoTermMNRL(MultipleNegativesRankingLoss):
    """:func:`two_term_infonce` in one forward pass with gradients."""

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        return two_term_infonce(embeddings[0], embeddings[1:], self.scale, self.similarity_fct,
                                self.gather_across_devices)


class TwoTermCachedMNRL(CachedMultipleNegativesRankingLoss):
    """:func:`two_term_infonce` under GradCache: the loss over the cached embeddings, its gradients cached
    back into them for the replay."""

    def calculate_loss(self, reps: list[list[Tensor]], labels: Tensor | None = None, *,
                       with_backward: bool = False) -> Tensor:
        loss = two_term_infonce(torch.cat(reps[0]), [torch.cat(column) for column in reps[1:]], self.scale,
                                self.similarity_fct, self.gather_across_devices)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss


class LengthSortedTwoTermMNRL(LengthSortedMNRL, TwoTermMNRL):
    """Length-sorted chunks (:class:`LengthSortedMNRL`) with the two-term loss."""


class LengthSortedTwoTermCachedMNRL(LengthSortedCachedMNRL, TwoTermCachedMNRL):
    """Length-sorted (or packed) GradCache (:class:`LengthSortedCachedMNRL`) with the two-term loss."""


__all__ = ["INFONCE_KINDS", "two_term_infonce", "TwoTermMNRL", "TwoTermCachedMNRL", "LengthSortedTwoTermMNRL",
           "LengthSortedTwoTermCachedMNRL"]
