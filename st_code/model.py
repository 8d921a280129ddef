"""The model class and loader: a ``SentenceTransformer`` that saves portable folders.

A saved st-code model needs no st-code to load. ``CodeSentenceTransformer.save`` names
sentence-transformers' own modules wherever they compute the same thing (the backbone as a plain
``Transformer``, mean / last-token / CLS ``Pooling``, ``Normalize``), so such a folder loads with
``SentenceTransformer(folder)`` anywhere; where custom code is truly needed (PMA pooling,
bidirectional attention) the folder carries ``modeling_st_code.py``, a self-contained copy of the
classes, and loads with ``SentenceTransformer(folder, trust_remote_code=True)``.

``st_code.load_model`` loads every format without ``trust_remote_code`` (it maps the types to
st-code's own classes), including folders saved before 0.2, which named
``st_code.modules.code_transformer.CodeTransformer`` and ``st_code.modules.pma_pooling.PMAPooling``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer

from st_code.errors import MissingPathError, UsageError
from st_code.modules import CodeTransformer, PMAPooling
from st_code.modules import modeling_st_code
from st_code.modules.modeling_st_code import PORTABLE_CODE_MODULE, BidirectionalTransformer
from st_code.modules.saved_types import saved_type

#: modules.json types st-code resolves to its own classes, old formats included.
ST_CODE_MODULE_CLASSES: dict[str, type] = {
    "st_code.modules.code_transformer.CodeTransformer": CodeTransformer,  # saved before 0.2
    "st_code.modules.pma_pooling.PMAPooling": PMAPooling,  # saved before 0.2
    f"{PMAPooling.__module__}.PMAPooling": PMAPooling,
    f"{PORTABLE_CODE_MODULE}.PMAPooling": PMAPooling,
    f"{PORTABLE_CODE_MODULE}.BidirectionalTransformer": BidirectionalTransformer,
}
PORTABLE_CODE_FILE = f"{PORTABLE_CODE_MODULE}.py"


def needs_custom_code(folder: str | Path) -> bool:
    """Whether a saved folder loads only with ``trust_remote_code=True`` (its modules.json names a
    class outside sentence-transformers)."""
    entries = json.loads((Path(folder) / "modules.json").read_text(encoding="utf-8"))
    return any(not entry["type"].startswith("sentence_transformers.") for entry in entries)


class CodeSentenceTransformer(SentenceTransformer):
    """``SentenceTransformer`` that knows st-code's modules and saves folders that load without st-code.

    ``card_details`` (set by the curriculum before it saves) adds how the model was trained and how it
    scored to the model card every save writes (``st_code.model_card``).
    """

    _module_classes = ST_CODE_MODULE_CLASSES
    card_details: dict[str, Any] | None = None
    #: Dimensions a Matryoshka-trained model stays useful at (``truncate_dim=``); saved in
    #: config_sentence_transformers.json, where plain sentence-transformers ignores the key.
    matryoshka_dims: list[int] | None = None

    @classmethod
    def _load_with_module_classes(cls, model_name_or_path: str, module_classes: dict[str, type],
                                  **kwargs: Any) -> "CodeSentenceTransformer":
        """The trainer reloads its own checkpoints through this hook with the in-memory classes only;
        st-code's portable type names are added so a checkpoint resumes without ``trust_remote_code``."""
        return super()._load_with_module_classes(model_name_or_path, {**ST_CODE_MODULE_CLASSES, **module_classes},
                                                 **kwargs)

    def _get_model_config(self) -> dict[str, Any]:
        config = super()._get_model_config()
        if self.matryoshka_dims:
            config["matryoshka_dims"] = list(self.matryoshka_dims)
        return config

    def _parse_model_config(self, model_config: dict[str, Any]) -> None:
        super()._parse_model_config(model_config)
        self.matryoshka_dims = model_config.get("matryoshka_dims")

    def save(self, path: str, *args: Any, **kwargs: Any) -> None:
        super().save(path, *args, **kwargs)
        if path is not None:
            self._make_portable(Path(path))

    def _make_portable(self, folder: Path) -> None:
        """Rename st-code's module types in modules.json to their portable names and ship the custom
        code file where one is named (removing a stale one from an earlier save into the folder)."""
        modules_file = folder / "modules.json"
        entries = json.loads(modules_file.read_text(encoding="utf-8"))
        modules = list(self)
        for entry in entries:
            portable = saved_type(modules[entry["idx"]])
            if portable is not None:
                entry["type"] = portable
        modules_file.write_text(json.dumps(entries, indent=2), encoding="utf-8")
        code_file = folder / PORTABLE_CODE_FILE
        if any(entry["type"].startswith(f"{PORTABLE_CODE_MODULE}.") for entry in entries):
            shutil.copyfile(modeling_st_code.__file__, code_file)
        elif code_file.exists():
            code_file.unlink()

    def _create_model_card(self, path: str, model_name: str | None = None, train_datasets: Any = "deprecated") -> None:
        from st_code.model_card import write_model_card

        write_model_card(self, Path(path), self.card_details)


def load_model(path: str | Path, **kwargs: Any) -> CodeSentenceTransformer:
    """Load a saved st-code model (or any SentenceTransformer folder) without ``trust_remote_code``.

    Args:
        path: the saved model folder (or a hub id).
        **kwargs: passed to ``SentenceTransformer`` (``device``, ``model_kwargs={"dtype": ...}``, ...).
    """
    from st_code.assets import looks_local

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
