"""A step's call arguments: bound to the signature, split into params and tracked dependencies."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from persistable._persistable import Persistable
from persistable.exceptions import DependencyError, UnhashableParamError
from persistable.params import UNTRACKED, PersistableParams, encode_value, untracked

__all__ = ["BoundCall", "StepParams", "bind_call"]


@dataclass
class StepParams(PersistableParams):
    """The params of one step call: its argument values by parameter name.

    ``to_dict()`` encodes every tracked argument with the canonical encoding of
    :mod:`persistable.params`, each under its parameter name; untracked arguments and
    the arguments that are tracked dependencies are held here but are not part of it.
    """

    #: Every argument that is not a dependency, by parameter name (defaults applied).
    arguments: dict[str, Any] = field(default_factory=dict, metadata={"persistable": UNTRACKED})
    #: Names of the arguments that enter the key.
    tracked: tuple[str, ...] = untracked(default=())
    #: The step's name, for error messages.
    step_name: str = untracked(default="step")

    def to_dict(self) -> dict[str, Any]:
        arguments = self.arguments
        try:
            return {
                name: encode_value(arguments[name], f"argument {name!r} of {self.step_name}()")
                for name in self.tracked
            }
        except RecursionError:
            raise UnhashableParamError(
                f"An argument of {self.step_name}() contains itself (a reference cycle) or is "
                "nested too deeply to encode; pass a finite tree of values."
            ) from None


@dataclass
class BoundCall:
    """One call's arguments: the params, and the dependencies by parameter name."""

    params: StepParams
    dependencies: dict[str, Persistable[Any, Any] | list[Persistable[Any, Any]]] = field(
        default_factory=dict
    )


def _as_dependency(
    value: Any, name: str, step_name: str
) -> Persistable[Any, Any] | list[Persistable[Any, Any]] | None:
    if isinstance(value, Persistable):
        return value
    if isinstance(value, (list, tuple)) and value:
        found = [isinstance(item, Persistable) for item in value]
        if all(found):
            return list(value)
        if any(found):
            raise DependencyError(
                f"argument {name!r} of {step_name}() mixes persistables and plain values; pass "
                "either a list of bound steps (a fan-in dependency) or plain values."
            )
    if isinstance(value, Mapping) and any(isinstance(item, Persistable) for item in value.values()):
        raise DependencyError(
            f"argument {name!r} of {step_name}() is a dict holding persistables, which cannot "
            "be tracked; pass each dependency as its own argument, or a list of them."
        )
    return None


def bind_call(
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    step_name: str,
    untracked_names: frozenset[str],
) -> BoundCall:
    """Bind ``args``/``kwargs`` to ``signature`` (defaults applied) and sort them into params and dependencies."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{step_name}(): {error}") from None
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    dependencies: dict[str, Persistable[Any, Any] | list[Persistable[Any, Any]]] = {}
    tracked: list[str] = []
    for name, value in list(arguments.items()):
        dependency = _as_dependency(value, name, step_name)
        if dependency is not None:
            if name in untracked_names:
                raise DependencyError(
                    f"argument {name!r} of {step_name}() is untracked but holds a persistable; "
                    "dependencies always take part in the key, so remove it from untracked=."
                )
            dependencies[name] = dependency
            del arguments[name]  # held once, by the persistable's dependencies
        elif name not in untracked_names:
            tracked.append(name)
    params = StepParams(arguments=arguments, tracked=tuple(tracked), step_name=step_name)
    return BoundCall(params=params, dependencies=dependencies)
