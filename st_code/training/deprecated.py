"""Names st-code 0.1 published that 0.2 renamed; each still works, with a warning naming its successor."""

from __future__ import annotations

import warnings
from typing import Any

from st_code.training.curriculum import CurriculumRunner


class AnnealingTrainer(CurriculumRunner):
    """Deprecated name of :class:`CurriculumRunner` (it runs stages of trainers; it is not a Trainer)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn("st_code.training.AnnealingTrainer is now CurriculumRunner; the old name will be removed in "
                      "st-code 0.3", DeprecationWarning, stacklevel=2)
        super().__init__(*args, **kwargs)


__all__ = ["AnnealingTrainer"]
