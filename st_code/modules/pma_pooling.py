"""PMAPooling's old import path (models saved before 0.2 name ``st_code.modules.pma_pooling.PMAPooling``).

The class lives in :mod:`st_code.modules.modeling_st_code`, the self-contained file saved models carry.
"""

from st_code.modules.modeling_st_code import PMAPooling, default_num_heads

__all__ = ["PMAPooling", "default_num_heads"]
