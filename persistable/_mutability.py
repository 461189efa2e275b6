"""Whether the params of a persistable can change without an assignment.

A payload held in memory is handed out without hashing its key again as long as no
params field was *assigned* since it was made (the mutation epoch of
:mod:`persistable._keys`). That shortcut is only sound when no params value can change
in place: a list that is appended to, a dict, a numpy array or a plain dataclass
changes the key without any assignment; so does code that is part of the key and is
redefined. For such nodes the key is hashed again on every access instead.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from persistable._keys import current_epoch, dependency_order
from persistable.params import PersistableParams

if TYPE_CHECKING:
    from persistable._persistable import Persistable

__all__ = ["key_changes_only_by_assignment"]

#: Values of these types cannot change in place (``File``/``Directory`` are paths).
_ATOMS: tuple[type, ...] = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    enum.Enum,
    PurePath,
    range,
)
#: Immutable types of modules that ``import persistable`` does not load: a value can
#: only be one of them once its module is imported, so they are looked up, not imported.
_LAZY_ATOMS = {
    "datetime": ("date", "time", "timedelta"),
    "decimal": ("Decimal",),
    "fractions": ("Fraction",),
    "uuid": ("UUID",),
}


#: The atoms by which of the modules of :data:`_LAZY_ATOMS` were loaded when they were made.
_atoms_made: dict[tuple[bool, ...], tuple[type, ...]] = {}


def _atoms() -> tuple[type, ...]:
    loaded = tuple(module_name in sys.modules for module_name in _LAZY_ATOMS)
    found = _atoms_made.get(loaded)
    if found is None:
        types = list(_ATOMS)
        for module_name, names in _LAZY_ATOMS.items():
            module = sys.modules.get(module_name)
            if module is not None:
                types.extend(getattr(module, name) for name in names)
        found = _atoms_made[loaded] = tuple(types)
    return found


def _mutable(value: Any) -> bool:
    atoms = _atoms()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, atoms):
            continue
        if isinstance(item, (tuple, frozenset)):
            stack.extend(item)
            continue
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            # Assigning a field of params bumps the epoch; a frozen dataclass cannot change.
            frozen = type(item).__dataclass_params__.frozen  # type: ignore[attr-defined]
            if frozen or isinstance(item, PersistableParams):
                stack.extend(getattr(item, field.name) for field in dataclasses.fields(item))
                continue
        return True
    return False


def key_changes_only_by_assignment(persistable: Persistable[Any, Any]) -> bool:
    """Whether the key of ``persistable`` can change only by assigning something.

    False when a params value here or upstream can change in place, or when a node's
    code is part of its key (``code_changes="rerun"``: a notebook may redefine it). The
    answer is memoized on each node for the current mutation epoch, so asking again costs
    nothing until something is assigned, and a deep chain is walked once.
    """
    epoch = current_epoch()

    def memo(item: Persistable[Any, Any]) -> bool | None:
        found: tuple[int, bool] | None = getattr(item, "_assignment_keyed", None)
        return found[1] if found is not None and found[0] == epoch else None

    for item in dependency_order(persistable, lambda item: memo(item) is not None):
        answer = (
            getattr(item, "code_changes", None) != "rerun"
            and not _mutable(item.params)
            and all(memo(dependency) for dependency in item.tracked_persistable_dependencies)
        )
        item._assignment_keyed = (epoch, answer)
    return bool(memo(persistable))
