"""What a code fingerprint sees of a value that the code reads: data, and the code inside it.

A module constant that is plain data (numbers, strings, containers, arrays, dataclasses)
is hashed by its canonical encoding (``persistable.params``). Code often reaches more
code through values: a dispatch table (``OPS = {"mean": mean}``), a list of functions,
a ``functools.partial``, a configured instance of one of the user's classes
(``scaler = Scale(k=2)``, called as ``scaler(x)``). :func:`describe` writes such a value
as data in which each piece of the user's code is named, and returns that code so the
fingerprint walks it too; an instance of a user class is its class plus its attributes.
Objects of libraries (a logger, a random generator) are left out, as before.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

__all__ = ["describe", "qualified"]

#: Containers nested deeper than this are not looked into (their depth is recorded).
_MAX_DEPTH = 32


def qualified(obj: Any) -> str:
    """``module.qualname`` of a function or class, as fingerprint entries name them."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def describe(
    name: str, value: Any, is_user_code: Callable[[Any], bool]
) -> tuple[Any | None, list[Any]]:
    """The canonical, JSON-able description of ``value`` and the user code found inside it.

    Returns ``(None, [])`` for a value with nothing the fingerprint can describe (an
    object of a library class). Plain data gets exactly its canonical encoding, so the
    fingerprints of code reading only plain data do not depend on this module.
    """
    from persistable.exceptions import PersistableError
    from persistable.params import encode_value

    code: list[Any] = []
    seen: set[int] = set()

    def walk(item: Any, depth: int) -> Any:
        if isinstance(item, types.MethodType):
            return {"method": walk(item.__func__, depth + 1), "of": walk(item.__self__, depth + 1)}
        if isinstance(item, (types.FunctionType, type)):
            if is_user_code(item):
                code.append(item)
                # The short name, as the entries' own digests: a script keys the same
                # run whether it is __main__ or imported.
                return {"code": item.__qualname__}
            return {"library": qualified(item)}
        if depth > _MAX_DEPTH or id(item) in seen:
            return {"nested": type(item).__qualname__}
        try:
            return encode_value(item, name)
        except (PersistableError, RecursionError, TypeError, ValueError):
            pass
        seen.add(id(item))
        try:
            return _container(item, depth)
        finally:
            seen.discard(id(item))

    def _container(item: Any, depth: int) -> Any:
        from persistable._hashing import canonical_json

        if isinstance(item, functools.partial):
            return {
                "partial": walk(item.func, depth + 1),
                "args": [walk(arg, depth + 1) for arg in item.args],
                "keywords": {key: walk(arg, depth + 1) for key, arg in item.keywords.items()},
            }
        if isinstance(item, (list, tuple)):
            return [walk(element, depth + 1) for element in item]
        if isinstance(item, (set, frozenset)):
            return {"set": sorted((walk(e, depth + 1) for e in item), key=canonical_json)}
        if isinstance(item, dict):
            pairs = [[walk(k, depth + 1), walk(v, depth + 1)] for k, v in item.items()]
            return {"dict": sorted(pairs, key=lambda pair: canonical_json(pair[0]))}
        cls = type(item)
        if is_user_code(cls):
            code.append(cls)
            state: dict[str, Any] = dict(getattr(item, "__dict__", {}))
            for slot in getattr(cls, "__slots__", ()):
                if isinstance(slot, str) and hasattr(item, slot):
                    state[slot] = getattr(item, slot)
            return {
                "instance": cls.__qualname__,
                "state": {key: walk(state[key], depth + 1) for key in sorted(state)},
            }
        return {"object": qualified(cls)}

    described = walk(value, 0)
    if not code and isinstance(described, dict) and set(described) == {"object"}:
        return None, []
    return described, code
