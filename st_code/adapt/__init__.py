"""``st-code adapt``: fine-tune an embedder on a repository's own documented code, gated on held-out files.

Names resolve on first use, so the command line's help does not wait for sentence-transformers."""

from st_code.lazy import lazy_exports

_EXPORTS = {"GateDecision": "st_code.adapt.gate", "decide": "st_code.adapt.gate", "GENERAL_SETS": "st_code.adapt.gate",
            "TrainingPlan": "st_code.adapt.plan", "AdaptOptions": "st_code.adapt.options",
            "AdaptResult": "st_code.adapt.runner", "adapt_repository": "st_code.adapt.runner"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = ["AdaptOptions", "AdaptResult", "GateDecision", "GENERAL_SETS", "TrainingPlan", "adapt_repository", "decide"]
