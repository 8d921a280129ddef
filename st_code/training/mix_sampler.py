"""A multi-dataset batch sampler that gives each dataset a fixed number of batches per epoch.

sentence-transformers' proportional sampler reads every dataset exactly once per epoch, so a stage's
``mix`` (CodeXEmbed's text:code share) could only be met by throwing rows of the larger datasets away.
This sampler meets it by reading a dataset too small for its share several times instead: each pass
is a fresh shuffle of that dataset alone, so a batch never holds the same row twice (a copy of a row
in its own batch would be a false in-batch negative). Batches from all datasets come in random order,
as in the proportional sampler; a quota of ``len(dataset) // batch_size`` for every dataset is
exactly the proportional sampler.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate

from sentence_transformers.base.sampler import MultiDatasetDefaultBatchSampler
from torch.utils.data import SubsetRandomSampler


class QuotaBatchSampler(MultiDatasetDefaultBatchSampler):
    """Yield ``quota[i]`` batches of dataset ``i`` per epoch, in seeded random order.

    Args:
        dataset, batch_samplers, generator, seed: as sentence-transformers passes them to any
            multi-dataset batch sampler (one batch sampler per dataset, in the ConcatDataset's order).
        quota: batches per epoch of each dataset, in the same order. A dataset that cannot form one
            batch gives none, whatever its quota.
    """

    def __init__(self, dataset, batch_samplers, generator=None, seed: int = 0, quota: list[int] | None = None) -> None:
        super().__init__(dataset, batch_samplers=batch_samplers, generator=generator, seed=seed)
        if quota is None or len(quota) != len(batch_samplers):
            raise ValueError(f"QuotaBatchSampler: give one quota per dataset ({len(batch_samplers)}), got {quota!r}")
        if any(q < 0 for q in quota):
            raise ValueError(f"QuotaBatchSampler: quotas must be >= 0, got {quota}")
        self.quota = [q if len(sampler) else 0 for q, sampler in zip(quota, batch_samplers)]

    def __iter__(self) -> Iterator[list[int]]:
        if self.generator is not None and self.seed is not None:
            self.generator.manual_seed(self.seed + self.epoch)
        offsets = [0] + list(accumulate(len(d) for d in self.dataset.datasets))
        order = [index for index, count in enumerate(self.quota) for _ in range(count)]
        passes = [iter(sampler) for sampler in self.batch_samplers]
        for index in SubsetRandomSampler(order, generator=self.generator):
            batch = next(passes[index], None)
            if batch is None:  # this dataset's pass is used up: a fresh shuffle of it
                passes[index] = iter(self.batch_samplers[index])
                batch = next(passes[index])
            yield [row + offsets[index] for row in batch]

    def __len__(self) -> int:
        return sum(self.quota)


__all__ = ["QuotaBatchSampler"]
