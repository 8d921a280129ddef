"""st-code: code-retrieval embedding models on sentence-transformers.

Build (``build_model``), load (``load_model``), and adapt (``add_lora``/``merge_lora``) models whose
backbone is a code LLM or any encoder, with C2LLM's PMA pooling or CodeR's last-token pooling and
task instructions carried as sentence-transformers prompts.
"""

from __future__ import annotations

from st_code.lazy import lazy_exports

__version__ = "0.2.0"

# Names resolve on first use, so light users (the task registry, data_gen's CLI) do not pay for
# importing torch and sentence-transformers (~10 s of CPU) until they need a model.
_EXPORTS = {
    "POOLINGS": "st_code.builder", "build_model": "st_code.builder",
    "LoraSettings": "st_code.lora", "add_lora": "st_code.lora", "has_lora": "st_code.lora",
    "merge_lora": "st_code.lora", "merged_copy": "st_code.lora",
    "CodeSentenceTransformer": "st_code.model", "load_model": "st_code.model",
    "CodeTransformer": "st_code.modules", "PMAPooling": "st_code.modules",
    "INSTRUCTION_FORMATS": "st_code.prompts", "build_prompts": "st_code.prompts",
    "format_instruction": "st_code.prompts",
}


__getattr__, __dir__ = lazy_exports("st_code", _EXPORTS, globals())

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
