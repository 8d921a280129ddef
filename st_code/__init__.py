"""st-code: code-retrieval embedding models on sentence-transformers.

Build (``build_model``), load (``load_model``), and adapt (``add_lora``/``merge_lora``) models whose
backbone is a code LLM or any encoder, with C2LLM's PMA pooling or CodeR's last-token pooling and
task instructions carried as sentence-transformers prompts.
"""

from __future__ import annotations

__version__ = "0.1.0"

from st_code.builder import POOLINGS, build_model
from st_code.lora import LoraSettings, add_lora, has_lora, merge_lora, merged_copy
from st_code.model import CodeSentenceTransformer, load_model
from st_code.modules import CodeTransformer, PMAPooling
from st_code.prompts import INSTRUCTION_FORMATS, build_prompts, format_instruction

__all__ = [
    "__version__",
    "build_model",
    "load_model",
    "CodeSentenceTransformer",
    "CodeTransformer",
    "PMAPooling",
    "LoraSettings",
    "add_lora",
    "merge_lora",
    "merged_copy",
    "has_lora",
    "build_prompts",
    "format_instruction",
    "INSTRUCTION_FORMATS",
    "POOLINGS",
]
