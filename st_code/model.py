"""The model class and loader: a ``SentenceTransformer`` that knows st-code's module classes.

sentence-transformers 6 imports a saved model's non-``sentence_transformers`` module classes only
with ``trust_remote_code=True``. This subclass declares st-code's classes itself, so
``st_code.load_model(path)`` needs no flag, while plain
``SentenceTransformer(path, trust_remote_code=True)`` loads the very same folder. Saved configs name
st-code as a requirement, so a machine without it fails with an install hint, not an import error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer

from st_code.modules import CodeTransformer, PMAPooling

ST_CODE_MODULE_CLASSES: dict[str, type] = {
    f"{cls.__module__}.{cls.__name__}": cls for cls in (CodeTransformer, PMAPooling)
}


def _requirement() -> dict[str, Any]:
    from st_code import __version__

    major_minor = ".".join(__version__.split(".")[:2])
    return {
        "st-code": {
            "specifier": f">={major_minor}",
            "reason": "The model uses st-code modules (pip install st-code), loaded with trust_remote_code=True "
            "or st_code.load_model().",
        }
    }


class CodeSentenceTransformer(SentenceTransformer):
    """``SentenceTransformer`` with st-code's modules declared; saves an ``st-code`` requirement."""

    _module_classes = ST_CODE_MODULE_CLASSES

    def _get_model_config(self) -> dict[str, Any]:
        config = super()._get_model_config()
        config["requirements"] = _requirement()
        return config


def load_model(path: str | Path, **kwargs: Any) -> CodeSentenceTransformer:
    """Load a saved st-code model (or any SentenceTransformer folder) without ``trust_remote_code``.

    Args:
        path: the saved model folder (or a hub id).
        **kwargs: passed to ``SentenceTransformer`` (``device``, ``model_kwargs={"dtype": ...}``, ...).
    """
    path = str(path)
    if not Path(path).exists() and ("/" not in path or path.startswith((".", "/"))):
        raise FileNotFoundError(f"no saved model at {path!r}: pass the folder that model.save() wrote")
    return CodeSentenceTransformer(path, **kwargs)
