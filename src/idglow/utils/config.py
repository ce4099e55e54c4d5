"""Typed configuration: dataclasses with help text, loaded from YAML plus ``--key value`` overrides.

Every config in IdGlow is a (possibly nested) dataclass whose fields are declared with :func:`option`,
which carries the help text shown by ``--help`` and ``idglow config``. Loading is strict:

- an unknown key is a :class:`ConfigError` that names it (with a close match when there is one);
- a value of the wrong type is a :class:`ConfigError` that names the key, the expected and the given type;
- a dataclass may define ``validate()`` to check relations between fields; it runs after loading.

Overrides use dotted keys (``--gate.age.sigma_lo 0.25``); their values are parsed as YAML scalars or
flow sequences (``0.25``, ``true``, ``[0, 2]``), so they follow the same typing rules as the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is unknown, mistyped or inconsistent. The message names the key."""


def option(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = dataclasses.MISSING) -> Any:
    """Declare a config field with help text.

    Args:
        default: the default value (immutable values only).
        help: one sentence on what the field does, shown by ``--help``.
        factory: a zero-argument callable for mutable defaults (nested configs, lists).
    """
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"list[{_type_name(args[0])}]" if args else "list"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(value: Any, tp: Any, key: str, base: Any = None) -> Any:
    """Check ``value`` against type ``tp``; return it converted (ints to floats, lists to tuples).

    ``base`` is the field's default; a nested config mapping is applied on top of it.
    """
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {type(value).__name__}")
        return from_dict(tp, value, prefix=f"{key}.", base=base)
    if origin in (Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                nested_base = base if dataclasses.is_dataclass(arg) and isinstance(base, arg) else None
                return _coerce(value, arg, key, nested_base)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        (item_tp,) = [a for a in typing.get_args(tp) if a is not Ellipsis][:1] or [Any]
        items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{key}: expected null, got {value!r}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected bool (true/false), got {type(value).__name__} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected int, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            value = float(value)  # PyYAML (YAML 1.1) reads `1e-4`, with no dot, as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected float, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):  # YAML's .nan / .inf: no setting of ours means them
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected str, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported config type {tp!r}")


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "", base: T | None = None) -> T:
    """Build config ``cls`` from a mapping applied on top of ``base`` (default: ``cls()``).

    Missing keys keep the base's values, including a nested section's own defaults; unknown keys are errors.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    try:
        base = cls() if base is None else base
    except TypeError as err:  # a field without default
        raise ConfigError(f"{prefix or cls.__name__}: {err}") from None
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ConfigError(f"unknown config key {prefix}{key}{hint}; valid keys: {', '.join(names)}")
        kwargs[key] = _coerce(value, hints[key], prefix + key, base=getattr(base, key))
    cfg = dataclasses.replace(base, **kwargs)
    validate_tree(cfg, prefix)
    return cfg


def validate_tree(cfg: Any, prefix: str = "") -> None:
    """Run ``validate()`` on ``cfg``; errors are re-raised as ConfigError prefixed with the key path."""
    validate = getattr(cfg, "validate", None)
    if validate is None:
        return
    try:
        validate()
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"{prefix}{err}") from None


def require_min(cfg: Any, minimum: float, *names: str) -> None:
    """Raise ValueError naming the first field of ``names`` below ``minimum`` (None values are skipped)."""
    for name in names:
        value = getattr(cfg, name)
        if value is not None and value < minimum:
            raise ValueError(f"{name}: must be >= {minimum}, got {value}")


def validate_sections(cfg: Any, *names: str) -> None:
    """Validate nested config sections ``names``; errors are prefixed with the section name."""
    for name in names:
        try:
            getattr(cfg, name).validate()
        except ValueError as err:
            raise ValueError(f"{name}.{err}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain YAML-able data (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def parse_overrides(args: Sequence[str]) -> dict[str, Any]:
    """Turn ``["--a.b", "1", "--c=x"]`` into the nested mapping ``{"a": {"b": 1}, "c": "x"}``."""
    nested: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"expected an override of the form --key value, got {token!r}")
        if "=" in token:
            key, raw = token[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"override {token} has no value")
            key, raw = token[2:], args[i + 1]
            i += 2
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = nested
        parts = key.replace("-", "_").split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override --{key} conflicts with an earlier override")
        node[parts[-1]] = value
    return nested


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config YAML as a mapping; ``extends: other.yaml`` (relative to this file) is read first and deep-merged
    under this file's keys, so an ablation recipe states only what it changes."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: `extends` loops back to a file already being read")
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if loaded is not None and not isinstance(loaded, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    data = dict(loaded or {})
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends: expected a YAML file name, got {parent!r}")
    return _deep_merge(_read_yaml(path.parent / parent, (*seen, path.resolve())), data)


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Load config ``cls`` from an optional YAML file (which may ``extends:`` another), then apply
    ``--key value`` overrides.

    Raises:
        ConfigError: unreadable file, unknown key, wrong type or inconsistent values (the message names them).
    """
    data = _read_yaml(Path(path)) if path is not None else {}
    data = _deep_merge(data, parse_overrides(overrides))
    return from_dict(cls, data)


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """Rows ``(key, type, default, help)`` for every leaf field of config ``cls``, nested keys dotted."""
    rows = []
    hints = typing.get_type_hints(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.extend(describe(tp, prefix + f.name + "."))
            continue
        default = getattr(instance, f.name)
        rows.append((prefix + f.name, _type_name(tp), repr(default), f.metadata.get("help", "")))
    return rows


def format_help(cls: type) -> str:
    """Human-readable listing of every key of config ``cls`` with its type, default and help."""
    lines = []
    for key, tp, default, text in describe(cls):
        lines.append(f"  --{key} ({tp}, default {default})\n      {text}")
    return "\n".join(lines)


def differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "",
                defaults: Mapping[str, Any] | None = None) -> list[str]:
    """``key: old -> new`` for every dotted key whose value differs between two nested dicts (``to_dict`` output).

    ``defaults`` (the config class's defaults, same nesting): a key absent from ``old`` whose new value is its default
    is no difference, since ``old`` was written before the key existed and meant that default."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        default = (defaults or {}).get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differences(a, b, f"{prefix}{key}.", default if isinstance(default, Mapping) else None)
        elif key not in old and b == default:
            continue
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out
