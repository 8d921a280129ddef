"""``st-code adapt``: fine-tune an embedder on a repository's own documented code, gated on held-out files."""

from st_code.adapt.gate import GateDecision, decide
from st_code.adapt.plan import TrainingPlan
from st_code.adapt.runner import GENERAL_SETS, AdaptOptions, AdaptResult, adapt_repository

__all__ = ["AdaptOptions", "AdaptResult", "GateDecision", "GENERAL_SETS", "TrainingPlan", "adapt_repository", "decide"]
