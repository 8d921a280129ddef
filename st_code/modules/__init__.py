"""st-code's sentence-transformers modules, one per file."""

from st_code.modules.code_transformer import CodeTransformer
from st_code.modules.pma_pooling import PMAPooling

__all__ = ["CodeTransformer", "PMAPooling"]
