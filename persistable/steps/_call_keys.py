"""The keys of a step's calls with plain arguments, remembered by the step (a repeated call skips the hash).

A cached call costs little more than finding its key, and hashing the canonical key
tree is a large share of that. For a call whose tracked arguments are all plain atoms
(``None``, ``bool``, ``int``, ``float``, short ``str``), the key is a function of the
step's identity options and of those arguments alone, so the step remembers it under
a tuple that tells apart everything the canonical encoding tells apart: each atom is
taken with its exact type (``1``, ``1.0`` and ``True`` are three entries) and a float
by its ``repr`` (``0.0`` and ``-0.0`` are two). Equal memo entries therefore always
have equal key trees. Anything else (containers, arrays, files, dependencies) is
hashed as usual.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from persistable.steps._binding import StepParams

__all__ = ["CallKeys"]

#: Longest ``str`` argument remembered (a long text is hashed on every call instead).
MAX_TEXT = 256
#: Entries kept per step; the memo starts over when it is full.
MAX_ENTRIES = 4096

_EXACT = frozenset({type(None), bool, int})


def memo_entry(params: StepParams) -> tuple[Hashable, ...] | None:
    """The memo entry of these params, or None when an argument is not a plain atom."""
    arguments = params.arguments
    parts: list[Hashable] = []
    for name in params.tracked:
        value = arguments[name]
        kind = type(value)
        if kind is float:
            parts.append((name, kind, repr(value)))
        elif kind is str:
            if len(value) > MAX_TEXT:
                return None
            parts.append((name, kind, value))
        elif kind in _EXACT:
            parts.append((name, kind, value))
        else:
            return None
    return tuple(parts)


class CallKeys:
    """Keys of one step's plain-argument calls, by identity options and memo entry.

    Both are in one dictionary key (not an identity "for the whole memo"), so threads
    that call a step while another assigns one of its options never mix the two.
    """

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[tuple[tuple[Any, ...], tuple[Hashable, ...]], str] = {}

    def get(self, identity: tuple[Any, ...], entry: tuple[Hashable, ...]) -> str | None:
        """The remembered key of ``entry`` under these identity options, if any."""
        return self._keys.get((identity, entry))

    def put(self, identity: tuple[Any, ...], entry: tuple[Hashable, ...], key: str) -> None:
        """Remember ``key`` for ``entry`` under these identity options."""
        if len(self._keys) >= MAX_ENTRIES:
            self._keys = {}
        self._keys[identity, entry] = key
