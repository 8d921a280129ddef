"""Reading a curriculum: YAML or plain data into the config dataclasses, every key typed and named in its
error (``stages[1].learning_rate: expected a number``), then checked (``config_checks``) before any work."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from st_code.training.config import ConfigError, CurriculumConfig
from st_code.training.config_checks import validate


def _build(cls: type, value: Any, where: str) -> Any:
    """Recursively build dataclass ``cls`` from plain data, naming the offending key on error."""
    if dataclasses.is_dataclass(cls):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(value).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ConfigError(f"{where + '.' if where else ''}{unknown[0]}: unknown key (known keys: {sorted(known)})")
        kwargs = {}
        hints = __import__("typing").get_type_hints(cls)
        for name, spec in known.items():
            if name in value:
                kwargs[name] = _convert(hints[name], value[name], f"{where + '.' if where else ''}{name}")
            elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where + '.' if where else ''}{name}: required key is missing")
        return cls(**kwargs)
    return value


def _convert(hint: Any, value: Any, where: str) -> Any:
    import types
    import typing

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        for candidate in non_none[:-1]:  # e.g. int | str: the first type that takes the value
            try:
                return _convert(candidate, value, where)
            except ConfigError:
                continue
        return _convert(non_none[-1], value, where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if hint is int and not (isinstance(value, int) and not isinstance(value, bool)):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def config_from_dict(data: dict[str, Any]) -> CurriculumConfig:
    config = _build(CurriculumConfig, data, "")
    validate(config)
    return config


def load_config(path: str | Path) -> CurriculumConfig:
    """Read and validate a YAML curriculum; every problem is reported before any training starts."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return config_from_dict(data)


__all__ = ["config_from_dict", "load_config"]
