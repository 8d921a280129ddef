"""The Annealing curriculum on top of sentence-transformers' trainer.

Names resolve on first use: importing one piece (the loss, the model builder, the config) does not
import the curriculum's evaluation stack (mteb), so a benchmark or a GPU machine with only the
training packages installed can use the pieces it needs.
"""

from __future__ import annotations

from st_code.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(
        ["ConfigError", "CurriculumConfig", "DataConfig", "DatasetSource", "EvaluationConfig", "FilterConfig",
         "HardNegativesConfig", "ModelConfig", "OfflineDataConfig", "StageConfig"],
        "st_code.training.config"),
    **dict.fromkeys(["config_from_dict", "load_config"], "st_code.training.config_loading"),
    "AnnealingTrainer": "st_code.training.deprecated", "CurriculumRunner": "st_code.training.curriculum",
    **dict.fromkeys(["DataError", "load_samples", "read_beir"], "st_code.data.readers"),
    "Sample": "st_code.data.records",
}


__getattr__, __dir__ = lazy_exports("st_code.training", _EXPORTS, globals())

__all__ = [
    "CurriculumRunner", "AnnealingTrainer", "ConfigError", "CurriculumConfig", "DataConfig", "DatasetSource", "EvaluationConfig",
    "FilterConfig", "HardNegativesConfig", "ModelConfig", "OfflineDataConfig", "StageConfig", "config_from_dict",
    "load_config", "DataError", "Sample", "load_samples", "read_beir",
]
