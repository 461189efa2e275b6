"""Build many persistables of one class from a list (or a grid) of params, sharing one store.

``Persistable.map`` is this module's :func:`map_persistables`. It needs the class only as
an argument, so it does not import ``_persistable`` (which imports it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar, cast

from persistable.exceptions import DependencyError
from persistable.store import StoreLike, make_store

if TYPE_CHECKING:
    from typing import TypeAlias

    from persistable._persistable import Persistable

    #: What ``Persistable.map`` accepts as ``tracked_persistable_dependencies``.
    DependenciesArg: TypeAlias = (
        Sequence[Persistable[Any, Any]]
        | Sequence[Sequence[Persistable[Any, Any]]]
        | Callable[[Any], Iterable[Persistable[Any, Any]]]
        | None
    )

__all__ = ["grid", "map_persistables"]

P = TypeVar("P", bound="Persistable[Any, Any]")


def grid(**axes: Iterable[Any]) -> list[dict[str, Any]]:
    """The cartesian product of named axes as a list of keyword dicts (last axis fastest).

    ``[NormParams(**p) for p in grid(cell=range(3), sigma=[1.0, 2.0])]`` gives six params.
    """
    names = list(axes)
    values = [list(axis) for axis in axes.values()]
    return [
        dict(zip(names, combination, strict=True)) for combination in itertools.product(*values)
    ]


def map_persistables(
    cls: type[P],
    params: Iterable[Any],
    *,
    data_dir: StoreLike,
    tracked_persistable_dependencies: DependenciesArg = None,
    storage_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> list[P]:
    """One ``cls`` per params item, all sharing one store object; see :meth:`Persistable.map`.

    Raises
    ------
    DependencyError
        A per-item list of dependencies does not have one entry per params item.
    """
    items = list(params)
    store = make_store(data_dir, storage_options=storage_options)
    per_item: list[list[Persistable[Any, Any]] | None]
    dependencies = tracked_persistable_dependencies
    if dependencies is None:
        per_item = [None] * len(items)
    elif callable(dependencies):
        per_item = [list(dependencies(item)) for item in items]
    elif not any(_is_list(entry) for entry in dependencies):
        # One list of persistables (never sequences themselves), shared by every item.
        shared = cast("list[Persistable[Any, Any]]", list(dependencies))
        per_item = [shared] * len(items)
    else:
        nested = [list(entry) for entry in dependencies if _is_list(entry)]
        if len(nested) != len(dependencies) or len(nested) != len(items):
            raise DependencyError(
                f"{cls.__name__}.map() got {len(dependencies)} dependency entries for "
                f"{len(items)} params; pass one list of dependencies per params item, one list "
                "shared by all, or a function params -> dependencies."
            )
        per_item = list(nested)
    made: list[P] = []
    for item, deps in zip(items, per_item, strict=True):
        if deps is None:
            made.append(cls(store, item, **kwargs))
        else:
            made.append(cls(store, item, tracked_persistable_dependencies=deps, **kwargs))
    return made


def _is_list(entry: object) -> TypeGuard[Sequence[Persistable[Any, Any]]]:
    return isinstance(entry, Sequence) and not isinstance(entry, (str, bytes))
