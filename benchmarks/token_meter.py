"""Counts the token slots a model's backbone computes and how many hold real tokens (not padding)."""

from __future__ import annotations

from st_code.modules.code_transformer import PACKED_ROWS


class TokenMeter:
    """A forward pre-hook on the backbone (``model[0]``); flattened (unpadded) batches count as all real,
    packed rows (st_code.training.packing) as their slots against the real tokens of the rows they hold."""

    def __init__(self, model) -> None:
        self.slots = self.real = 0
        self.packed_shapes: set[tuple[int, ...]] = set()  # distinct (packed rows, width): CUDA graphs record each
        model[0].register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs) -> None:
        features = args[0] if args else kwargs["features"]
        packed = features.get(PACKED_ROWS)
        if packed is not None:
            self.packed_shapes.add(tuple(features["input_ids"].shape))
            self.slots += features["input_ids"].numel()
            self.real += int(packed.attention_mask.sum())
            return
        mask = features.get("attention_mask")
        if mask is None:  # one packed row: every slot is a token
            tokens = features["input_ids"].numel()
            self.slots += tokens
            self.real += tokens
            return
        self.slots += mask.numel()
        self.real += int(mask.sum())

    def reset(self) -> None:
        self.slots = self.real = 0

    @property
    def padding_share(self) -> float:
        return 1 - self.real / self.slots if self.slots else 0.0
