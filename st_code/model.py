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

from st_code.errors import MissingPathError, UsageError
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
    from st_code.builder import looks_local

    path = str(path)
    folder = Path(path).expanduser()
    if not folder.exists() and ("/" not in path or looks_local(path)):
        raise MissingPathError(f"no saved model at {path!r}: pass the folder that model.save() wrote")
    if folder.is_dir():
        _check_saved_folder(folder)
    try:
        return CodeSentenceTransformer(str(folder) if folder.exists() else path, **kwargs)
    except OSError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"could not load the model {path!r} ({first_line}); pass a saved model folder, or check the "
                         "hub id and that the hub can be reached") from None


def _check_saved_folder(folder: Path) -> None:
    """A damaged saved folder is named, file by file, before sentence-transformers trips over it."""
    import json

    for name in ("modules.json", "config_sentence_transformers.json"):
        file = folder / name
        if file.is_file():
            try:
                json.loads(file.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise UsageError(f"{file} is damaged ({exc}); re-save the model (model.save) or copy the folder "
                                 "again") from None
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise MissingPathError(f"{folder} holds no saved model (no modules.json or config.json); pass the folder "
                               "that model.save() wrote")
