"""Strict YAML configuration: reading, composition through ``base:``, typed checking.

Schema-agnostic: the dataclasses of a config's sections live with their components and the
whole schema with the tasks (:mod:`spkpeft.tasks.config`); this module turns YAML files into
instances of any dataclass schema.

* Overlays (``run.sh --overlay``, e.g. ``conf/overlays/large_margin.yaml``) are merged over the
  config the same way, deep, one after the other; the keys they set are theirs in errors.
* ``base: other.yaml`` or ``base: [a.yaml, b.yaml]`` (relative to the including file) names
  files whose values are deep-merged *under* this file's own, recursively, in order; a
  mapping whose tag (``method`` or ``type``) differs from the base's replaces the base
  mapping instead of merging (so a variant can switch ``peft.method`` or ``head.type``
  without inheriting the old component's keys).
* Validation is strict: an unknown key, a value of the wrong type or a value outside a
  field's ``choices`` (or failing its ``check``) raises :class:`SpkpeftError` naming the file
  and the full dotted key, e.g. ``conf/sv/lora.yaml: unknown key 'peft.rnak' (expected one
  of: ...)``.  An int is accepted for a float field.
* A section whose dataclass has ``TAG_KEY`` and ``variants()`` (:func:`spkpeft.registry.tagged_section`)
  is a tagged union: the tag selects the dataclass; a plain string is shorthand for the tag
  (``task: cls``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Sequence

import yaml

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.textfile import read_text

BASE_KEY = "base"
OVERRIDE_SOURCE = "<overrides>"
#: keys whose differing values make a mapping replace, not merge into, its base
TAG_KEYS = ("method", "type")


def read_yaml(path: str | Path, kind: str = "config") -> dict:
    """Parse one YAML file (a config, an overlay, a saved ``config.yaml``) into a mapping
    (empty file -> {}).  The text is read by :func:`spkpeft.textfile.read_text` (UTF-8 with an
    optional BOM); invalid YAML, a value YAML cannot build (a date such as ``2001-13-45``)
    or a top level that is not a mapping is one error naming the file (and line)."""
    path = Path(path)
    text = read_text(path, kind)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if line is None and isinstance(getattr(err, "position", None), int):  # a reader error: a bad character
            line = text.count("\n", 0, err.position) + 1
        problem = getattr(err, "problem", None) or getattr(err, "reason", None) or str(err)
        raise file_error(path, f"invalid YAML: {problem}", line) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as err:  # from YAML's value constructors
        raise file_error(path, f"invalid YAML value ({type(err).__name__}: {err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise file_error(path, f"a {kind} file must be a mapping of sections, got {type(data).__name__}")
    return data


def _record(data: dict, source: str, prefix: str, provenance: dict[str, str]) -> None:
    """Note ``source`` as the origin of every (nested) key of ``data``."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        provenance[dotted] = source
        if isinstance(value, dict):
            _record(value, source, dotted + ".", provenance)


def _forget(prefix: str, provenance: dict[str, str]) -> None:
    for key in [k for k in provenance if k.startswith(prefix)]:
        del provenance[key]


def deep_merge(base: dict, top: dict, provenance: dict[str, str], source: str, prefix: str = "") -> dict:
    """``top`` merged over ``base`` (recursively for mappings), updating ``provenance``."""
    merged = dict(base)
    for key, value in top.items():
        dotted = f"{prefix}{key}"
        old = merged.get(key)
        same_kind = isinstance(old, dict) and isinstance(value, dict) and all(
            old.get(tag, value.get(tag)) == value.get(tag, old.get(tag)) for tag in TAG_KEYS
        )
        if same_kind:
            provenance[dotted] = source
            merged[key] = deep_merge(old, value, provenance, source, dotted + ".")
        else:
            _forget(dotted + ".", provenance)
            provenance[dotted] = source
            if isinstance(value, dict):
                _record(value, source, dotted + ".", provenance)
            merged[key] = value
    return merged


def _base_names(path: Path, value: Any) -> list[str]:
    """The ``base`` entry of a file: one file name or a list of them."""
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(n, str) and n for n in names):
        raise file_error(path, f"key '{BASE_KEY}' must be a file name or a list of file names, got {value!r}")
    return names


def _load_tree(path: Path, chain: tuple[Path, ...]) -> tuple[dict, dict[str, str]]:
    """The merged raw mapping of ``path`` and its ``base`` files, with key provenance.

    ``base: a.yaml`` or ``base: [a.yaml, b.yaml]`` (relative to ``path``): the bases are
    merged in order (``b`` over ``a``), then the file's own values over them.
    """
    resolved = path.resolve()
    if resolved in chain:
        raise file_error(path, "circular 'base' chain: " + " -> ".join(str(p) for p in chain + (resolved,)))
    data = read_yaml(path)
    base_value = data.pop(BASE_KEY, None)
    provenance: dict[str, str] = {}
    merged: dict = {}
    if base_value is not None:
        for base_name in _base_names(path, base_value):
            base_path = path.parent / base_name
            if not base_path.is_file():
                raise file_error(path, f"base config '{base_name}' not found (looked for {base_path})")
            tree, tree_provenance = _load_tree(base_path, chain + (resolved,))
            merged = deep_merge(merged, tree, provenance, "")
            provenance.update(tree_provenance)
    return deep_merge(merged, data, provenance, str(path)), provenance


def _expand_overrides(overrides: dict[str, Any]) -> dict:
    """``{"upstream.name": x}`` -> ``{"upstream": {"name": x}}`` (nested dicts pass through)."""
    tree: dict = {}
    for key, value in overrides.items():
        node = tree
        parts = str(key).split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]].update(value)
        else:
            node[parts[-1]] = value
    return tree


# ---------------------------------------------------------------------------- typing


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return f"list of {_type_name(item)}"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _value_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


class _Checker:
    """Convert raw YAML values to typed dataclasses, with errors naming file and dotted key."""

    def __init__(self, provenance: dict[str, str], default_source: str) -> None:
        self.provenance = provenance
        self.default_source = default_source

    def where(self, key: str) -> str:
        """The file that set ``key`` (or its closest parent)."""
        probe = key
        while probe:
            if probe in self.provenance:
                return self.provenance[probe]
            probe = probe[: probe.rindex("[")] if probe.endswith("]") else probe.rpartition(".")[0]
        return self.default_source

    def fail(self, key: str, message: str) -> SpkpeftError:
        return SpkpeftError(f"{self.where(key)}: {message}")

    def section(self, cls: type, data: Any, key: str) -> Any:
        """Build dataclass ``cls`` from mapping ``data`` found at ``key``."""
        tag_key = getattr(cls, "TAG_KEY", None)
        if data is None:
            data = {}
        if isinstance(data, str) and tag_key is not None:  # `task: cls` == `task: {type: cls}`
            data = {tag_key: data}
        if not isinstance(data, dict):
            raise self.fail(key, f"key '{key}' must be a mapping, got {_value_name(data)}")
        if tag_key is not None:
            cls = self.variant(cls, data, key, tag_key)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name in data:
            if name not in fields:
                expected = ", ".join(fields)
                raise self.fail(f"{key}.{name}", f"unknown key '{key}.{name}' (expected one of: {expected})")
        values = {name: self.value(data[name], hints[name], f"{key}.{name}", fields[name]) for name in data}
        try:
            return cls(**values)
        except SpkpeftError as err:  # a section's own checks (__post_init__) name the dotted key first
            message = str(err)
            raise self.fail(message.split()[0], message) from None

    def variant(self, cls: type, data: dict, key: str, tag_key: str) -> type:
        """The dataclass chosen by the tag (e.g. ``peft.method``) of a tagged-union section."""
        variants = cls.variants()
        tag = data.get(tag_key, cls().__dict__[tag_key])
        if not isinstance(tag, str) or tag not in variants:
            raise self.fail(
                f"{key}.{tag_key}", f"key '{key}.{tag_key}' must be one of: {', '.join(variants)}; got {tag!r}"
            )
        return variants[tag]

    def value(self, value: Any, tp: Any, key: str, fld: dataclasses.Field | None = None) -> Any:
        """Check/convert one value against type ``tp`` (and the field's ``choices``)."""
        result = self.convert(value, tp, key)
        metadata = fld.metadata if fld is not None else {}
        allowed = metadata.get("choices")
        if allowed is not None:
            for item in result if isinstance(result, list) else [result]:
                if item not in allowed:
                    raise self.fail(key, f"key '{key}' must be one of: {', '.join(map(str, allowed))}; got {item!r}")
        check = metadata.get("check")
        problem = check(result) if check is not None else None
        if problem:
            raise self.fail(key, f"key '{key}' {problem}")
        return result

    def convert(self, value: Any, tp: Any, key: str) -> Any:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            for option in typing.get_args(tp):
                try:
                    return self.convert(value, option, key)
                except SpkpeftError:
                    continue
            raise self.fail(key, f"key '{key}' must be {_type_name(tp)}, got {_value_name(value)}")
        if tp is type(None):
            if value is None:
                return None
        elif origin is list:
            if isinstance(value, list):
                (item,) = typing.get_args(tp) or (Any,)
                return [self.convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        elif dataclasses.is_dataclass(tp):
            return self.section(tp, value, key)
        elif tp is Any:
            return value
        elif tp is bool:
            if isinstance(value, bool):
                return value
        elif tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif tp is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif tp is str:
            if isinstance(value, str):
                return value
        raise self.fail(key, f"key '{key}' must be {_type_name(tp)}, got {_value_name(value)}")


def read_overlay(path: str | Path) -> dict:
    """An overlay file: a mapping of config sections (no ``base``), e.g. ``conf/overlays/*.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "overlay file not found")
    data = read_yaml(path, "overlay")
    if BASE_KEY in data:
        raise file_error(path, f"an overlay is a mapping of config sections without '{BASE_KEY}'")
    return data


def read_tree(path: str | Path, overrides: dict[str, Any] | None = None,
              overlays: Sequence[str | Path] = ()) -> tuple[dict, dict[str, str]]:
    """The merged raw mapping of the config at ``path`` (bases, then each overlay deep-merged in
    order, then the overrides) and the file that set each dotted key (an overlay's keys: the
    overlay file)."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "config file not found")
    data, provenance = _load_tree(path, ())
    for overlay in overlays:
        data = deep_merge(data, read_overlay(overlay), provenance, str(overlay))
    if overrides:
        data = deep_merge(data, _expand_overrides(overrides), provenance, OVERRIDE_SOURCE)
    return data, provenance


def record_provenance(data: dict, source: str) -> dict[str, str]:
    """Every dotted key of ``data`` attributed to ``source``."""
    provenance: dict[str, str] = {}
    _record(data, source, "", provenance)
    return provenance


def build(schema: type, data: dict, provenance: dict[str, str], source: str, validate=None) -> Any:
    """Instantiate the dataclass ``schema`` (one field per section) from ``data``.

    ``validate(instance)`` runs the cross-field checks; its error message must start with
    the dotted key, so that the file that set the key can be named.
    """
    checker = _Checker(provenance, source)
    sections = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    for name in data:
        if name not in sections:
            raise checker.fail(name, f"unknown section '{name}' (expected one of: {', '.join(sections)})")
    instance = schema(**{name: checker.section(hints[name], data[name], name) for name in data})
    if validate is not None:
        try:
            validate(instance)
        except SpkpeftError as err:
            message = str(err)
            raise SpkpeftError(f"{checker.where(message.split()[0])}: {message}") from None
    return instance
