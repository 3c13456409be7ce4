"""One way to register and select a component for every config slot.

A :class:`Registry` holds the components of one slot (``task``, ``upstream``, ``peft``,
``aggregation``, ``head``, ``loss``): each entry has a name, the dataclass of its config
section and a builder.  A config section of that slot is a tagged union: its tag key
(``type``; ``method`` for PEFT, ``name`` for the task) names the entry, and the strict
config reader (:mod:`spkpeft.config`) builds the entry's dataclass from the rest of the
section, so unknown keys and wrong types are errors naming the file and the dotted key.

Adding a component is a registration next to its code::

    HEADS.register("ecapa", EcapaConfig, build_ecapa, description="ECAPA-TDNN embedding head")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from spkpeft.errors import SpkpeftError


@dataclass
class Entry:
    """A registered component: its config dataclass, its builder and free-form ``info``."""

    name: str
    config: type
    build: Callable[..., Any]
    description: str = ""
    info: dict[str, Any] = field(default_factory=dict)


class Registry:
    """The components of one config slot, selected by ``<slot>.<tag_key>``."""

    def __init__(self, slot: str, tag_key: str = "type") -> None:
        self.slot = slot
        self.tag_key = tag_key
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, config: type, build: Callable[..., Any], description: str = "", **info: Any) -> Entry:
        """Add a component; a name registered twice is an error."""
        if name in self._entries:
            raise SpkpeftError(f"{self.slot} '{name}' is registered twice")
        entry = Entry(name, config, build, description, dict(info))
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> Entry:
        """The entry called ``name``, or an error listing the registered names."""
        entry = self._entries.get(name)
        if entry is None:
            raise SpkpeftError(
                f"unknown {self.slot}.{self.tag_key} '{name}' (expected one of: {', '.join(self._entries)})"
            )
        return entry

    def names(self) -> list[str]:
        return list(self._entries)

    def variants(self) -> dict[str, type]:
        """``name -> config dataclass``: the tagged union read by :mod:`spkpeft.config`."""
        return {name: entry.config for name, entry in self._entries.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries.values())


def tagged_section(registry: Registry):
    """Class decorator for a slot's base config dataclass: sets ``TAG_KEY`` and ``variants()``
    so that the config reader treats the section as a tagged union over ``registry``."""

    def decorate(cls: type) -> type:
        cls.TAG_KEY = registry.tag_key
        cls.REGISTRY = registry
        cls.variants = classmethod(lambda _cls: registry.variants())
        return cls

    return decorate
