"""Keys: hashing a persistable's key tree, in dependency order and without recursion.

A key is the SHA-256 of the canonical key tree (:meth:`Persistable.key_tree`), which
holds the *keys* of the tracked dependencies. They are computed upstream first, by an
explicit walk of the dependency graph, so a chain of any depth needs no deeper call
stack than a chain of one. Each key is hashed once per operation: a per-call memo, or
the memo of :func:`key_cache` for longer operations (``load_generate``, a run).

The module also keeps a *mutation epoch*, bumped whenever a params field or an
identity attribute of a persistable is assigned: a payload held in memory is checked
against it before it is handed out (a payload is always the payload of the current key).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from persistable._hashing import key_from_tree
from persistable.exceptions import DependencyError

if TYPE_CHECKING:
    from persistable._persistable import Persistable

__all__ = [
    "bump_epoch",
    "current_epoch",
    "dependency_order",
    "describe",
    "key_cache",
    "key_cache_active",
    "key_given_upstream",
    "params_tree",
    "persist_hash",
    "resolved_keys",
    "suspended_key_cache",
    "tracked_dependencies",
]

#: Keys by object id while an operation runs (set by :func:`key_cache`). Holding the
#: object in the value keeps its id from being reused while the memo lives.
_key_cache: contextvars.ContextVar[dict[int, tuple[object, str]] | None] = contextvars.ContextVar(
    "persistable_key_cache", default=None
)

#: Keys an operation resolved (set by :func:`resolved_keys`), with the epoch they are
#: valid in. Unlike the memo above it stays visible to user code, and is dropped as soon
#: as the epoch moves.
_resolved: contextvars.ContextVar[tuple[int, dict[int, tuple[object, str]]] | None] = (
    contextvars.ContextVar("persistable_resolved_keys", default=None)
)

_epoch = 0


def bump_epoch() -> None:
    """Note that some params field or persistable identity attribute was assigned."""
    global _epoch
    _epoch += 1


def current_epoch() -> int:
    """The mutation epoch: equal values mean no params field was assigned in between."""
    return _epoch


@contextlib.contextmanager
def key_cache() -> Iterator[dict[int, tuple[object, str]]]:
    """Memoize keys by object for the duration (the objects must not change meanwhile).

    Yields the memo: ``id(persistable) -> (persistable, key)``.
    """
    memo: dict[int, tuple[object, str]] = {}
    token = _key_cache.set(memo)
    try:
        yield memo
    finally:
        _key_cache.reset(token)


@contextlib.contextmanager
def resolved_keys(memo: dict[int, tuple[object, str]], epoch: int) -> Iterator[None]:
    """Trust the keys of ``memo`` (taken at ``epoch``) for the duration, in user code too.

    What a run resolved, while its nodes generate: the user code of a node that reads
    a dependency's payload then hashes no upstream keys again. The keys are trusted only
    while :func:`current_epoch` equals ``epoch``: once any params field or identity
    attribute is assigned, every key is hashed anew.
    """
    token = _resolved.set((epoch, memo))
    try:
        yield
    finally:
        _resolved.reset(token)


def _resolved_key(persistable: object) -> str | None:
    resolved = _resolved.get()
    if resolved is None or resolved[0] != _epoch:
        return None
    hit = resolved[1].get(id(persistable))
    return None if hit is None else hit[1]


def key_given_upstream(
    persistable: Persistable[Any, Any], upstream: dict[int, tuple[object, str]]
) -> str:
    """The key of ``persistable`` hashed again, its dependencies' keys taken from ``upstream``.

    Its own params (and input files) are encoded anew; the upstream keys are not (a
    chain of any depth costs one node).
    """
    token = _key_cache.set(dict(upstream))
    try:
        return key_from_tree(persistable.key_tree())
    finally:
        _key_cache.reset(token)


def key_cache_active() -> bool:
    """Whether a :func:`key_cache` memo is in force."""
    return _key_cache.get() is not None


@contextlib.contextmanager
def suspended_key_cache() -> Iterator[None]:
    """No memoized keys for the duration: user code that may change persistables runs inside."""
    token = _key_cache.set(None)
    try:
        yield
    finally:
        _key_cache.reset(token)


def describe(persistable: Persistable[Any, Any]) -> str:
    """A short human label of a persistable that needs no key (usable inside cycles)."""
    return f"{type(persistable).__name__}({persistable.payload_name!r}, params={persistable.params!r:.60})"


_ON_PATH = 1
_DONE = 2


def tracked_dependencies(persistable: Persistable[Any, Any]) -> list[Persistable[Any, Any]]:
    """The persistables ``persistable`` tracks directly (its key holds their keys)."""
    return list(getattr(persistable, "tracked_persistable_dependencies", ()))


def dependency_order(
    root: Persistable[Any, Any],
    known: Callable[[Persistable[Any, Any]], bool] | None = None,
    dependencies: Callable[
        [Persistable[Any, Any]], list[Persistable[Any, Any]]
    ] = tracked_dependencies,
) -> list[Persistable[Any, Any]]:
    """``root`` and every persistable it tracks, transitively, each once, dependencies first.

    The walk does not descend into persistables for which ``known`` is true (they are
    not listed either). ``dependencies`` gives the children of a node (the runner's
    version also checks their types). Raises :class:`DependencyError` naming the loop
    on a cycle.
    """
    if known is not None and known(root):
        return []
    children = dependencies(root)
    if not children:
        return [root]  # a leaf, the usual node: no walk (every load and commit asks)
    state: dict[int, int] = {id(root): _ON_PATH}
    order: list[Persistable[Any, Any]] = []
    path = [root]
    stack: list[Iterator[Persistable[Any, Any]]] = [iter(children)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            done = path.pop()
            state[id(done)] = _DONE
            order.append(done)
            continue
        seen = state.get(id(child))
        if seen == _DONE:
            continue
        if seen == _ON_PATH:
            start = next(i for i, item in enumerate(path) if item is child)
            cycle = " -> ".join(describe(item) for item in [*path[start:], child])
            raise DependencyError(
                f"The tracked dependencies form a cycle: {cycle}; a persistable cannot "
                "depend on itself, remove the dependency that closes the loop."
            )
        if known is not None and known(child):
            state[id(child)] = _DONE
            continue
        state[id(child)] = _ON_PATH
        path.append(child)
        stack.append(iter(dependencies(child)))
    return order


def persist_hash(persistable: Persistable[Any, Any]) -> str:
    """The key of ``persistable``: its upstream keys are hashed first, each once."""
    resolved = _resolved_key(persistable)
    if resolved is not None:
        return resolved
    cache = _key_cache.get()
    if cache is not None:
        hit = cache.get(id(persistable))
        if hit is not None:
            return hit[1]
        _fill(persistable, cache)
        return cache[id(persistable)][1]
    memo: dict[int, tuple[object, str]] = {}
    token = _key_cache.set(memo)  # key_tree() reads upstream keys through persist_hash
    try:
        _fill(persistable, memo)
    finally:
        _key_cache.reset(token)
    return memo[id(persistable)][1]


def _fill(root: Persistable[Any, Any], cache: dict[int, tuple[object, str]]) -> None:
    def known(item: Persistable[Any, Any]) -> bool:
        if id(item) in cache:
            return True
        resolved = _resolved_key(item)
        if resolved is None:
            return False
        cache[id(item)] = (item, resolved)
        return True

    for item in dependency_order(root, known):
        # By its key_tree method, not by class: this module is below _persistable.py.
        if not callable(getattr(item, "key_tree", None)):
            raise DependencyError(
                f"tracked_persistable_dependencies must hold Persistable instances (got "
                f"{item!r:.80} that is a {type(item).__name__})."
            )
        cache[id(item)] = (item, key_from_tree(item.key_tree()))


def params_tree(persistable: Persistable[Any, Any]) -> dict[str, Any]:
    """Own params and, under each dependency's name or role, its params tree (built without recursion)."""
    trees: dict[int, dict[str, Any]] = {}
    for item in dependency_order(persistable):
        trees[id(item)] = item.params.to_dict() | item._by_role(
            lambda dependency: trees[id(dependency)]
        )
    return trees[id(persistable)]
