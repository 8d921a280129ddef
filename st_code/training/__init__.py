"""The Annealing curriculum on top of sentence-transformers' trainer."""

from st_code.training.config import (
    ConfigError, CurriculumConfig, DataConfig, DatasetSource, EvaluationConfig, FilterConfig, HardNegativesConfig,
    ModelConfig, OfflineDataConfig, StageConfig, config_from_dict, load_config,
)
from st_code.training.curriculum import AnnealingTrainer, CurriculumRunner
from st_code.training.data import DataError, Sample, load_samples, read_beir

__all__ = [
    "CurriculumRunner", "AnnealingTrainer", "ConfigError", "CurriculumConfig", "DataConfig", "DatasetSource", "EvaluationConfig",
    "FilterConfig", "HardNegativesConfig", "ModelConfig", "OfflineDataConfig", "StageConfig", "config_from_dict",
    "load_config", "DataError", "Sample", "load_samples", "read_beir",
]
