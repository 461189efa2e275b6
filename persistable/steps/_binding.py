"""A step's call arguments: bound to the signature, split into params and tracked dependencies."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from persistable._persistable import Persistable
from persistable.exceptions import DependencyError, UnhashableParamError
from persistable.params import UNTRACKED, PersistableParams, encode_value, untracked

__all__ = ["BoundCall", "Plain", "StepParams", "bind_call", "plain_parameters"]


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

    @classmethod
    def of(cls, arguments: dict[str, Any], tracked: tuple[str, ...], step_name: str) -> StepParams:
        """The same object as the constructor makes, without its per-field epoch bumps.

        The dataclass ``__init__`` assigns each field through ``__setattr__``, which bumps
        the mutation epoch (a payload in memory could be stale); a new object has no
        payload anywhere yet, so this sets its fields in one go (a step call makes one).
        """
        params = cls.__new__(cls)
        params.__dict__.update(arguments=arguments, tracked=tracked, step_name=step_name)
        return params

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


Plain = tuple[tuple[str, ...], frozenset[str], dict[str, Any]]

#: Types whose values are never dependencies (checked first: most arguments are these).
_ATOMS = frozenset({type(None), bool, int, float, str})


def plain_parameters(
    signature: inspect.Signature,
) -> Plain | None:
    """Names, name set and defaults of a signature of plain parameters only (else None)."""
    parameters = signature.parameters.values()
    if any(parameter.kind is not parameter.POSITIONAL_OR_KEYWORD for parameter in parameters):
        return None
    names = tuple(parameter.name for parameter in parameters)
    defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
    return names, frozenset(names), defaults


def _fast_bind(
    plain: Plain | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    """What ``signature.bind`` + ``apply_defaults`` give, for plain parameters; None to fall back.

    A cached call costs little more than its key, so binding matters: this takes a few
    microseconds where ``Signature.bind`` takes ten. Anything unusual (an unknown or
    repeated name, a missing argument, ``*args``...) falls back to ``Signature.bind``,
    which also words the error.
    """
    if plain is None:
        return None
    names, known, defaults = plain
    if len(args) > len(names):
        return None
    given = dict(zip(names, args, strict=False))
    for name, value in kwargs.items():
        if name in given or name not in known:
            return None
        given[name] = value
    if len(given) == len(names):
        return {name: given[name] for name in names}
    arguments = {}
    for name in names:
        if name in given:
            arguments[name] = given[name]
        elif name in defaults:
            arguments[name] = defaults[name]
        else:
            return None
    return arguments


def bind_call(
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    step_name: str,
    untracked_names: frozenset[str],
    plain: Plain | None = None,
) -> BoundCall:
    """Bind ``args``/``kwargs`` to ``signature`` (defaults applied) and sort them into params and dependencies."""
    arguments = _fast_bind(plain, args, kwargs)
    if arguments is None:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{step_name}(): {error}") from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
    dependencies: dict[str, Persistable[Any, Any] | list[Persistable[Any, Any]]] = {}
    tracked: list[str] = []
    for name, value in list(arguments.items()):
        dependency = None if type(value) in _ATOMS else _as_dependency(value, name, step_name)
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
    params = StepParams.of(arguments, tuple(tracked), step_name)
    return BoundCall(params=params, dependencies=dependencies)
