"""What a task carries to another process: a batch of nodes and their whole upstream, flat.

A persistable pickled as it is nests its tracked dependencies inside itself, so the
pickler recurses once per level: a chain of about 150 nodes could not be sent to a
process pool or Dask at all (``RecursionError``). A :class:`Shipment` holds every
distinct object of the batch's closure side by side, each a copy without payload
(:func:`detached`, made once per run) whose dependencies are replaced by positions; the
worker links them again (:meth:`Shipment.unpack`). The keys the run resolved for the
upstream objects travel along, so the worker hashes only the nodes it runs (which it
still checks against the resolved keys) instead of the whole upstream of each one.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from persistable._keys import dependency_order
from persistable._persistable import Persistable

__all__ = ["Shipment", "detached", "pack"]


@dataclass
class Shipment:
    """Payload-free copies of a batch's closure, dependencies as positions (upstream first)."""

    objects: list[Persistable[Any, Any]]
    #: ``links[i]``: the positions of the tracked dependencies of ``objects[i]``, in order.
    links: list[tuple[int, ...]]
    #: The positions of the batch's nodes.
    roots: list[int]
    #: Position -> key the run resolved, for upstream objects whose key only an
    #: assignment can change (``Graph.keys``).
    keys: dict[int, str]

    def unpack(self) -> tuple[list[Persistable[Any, Any]], dict[int, tuple[object, str]]]:
        """Link the copies again; return the batch's nodes and the resolved upstream keys.

        The keys come as a ``resolved_keys`` memo (``id -> (object, key)``); use it with
        the mutation epoch taken after this call.
        """
        objects = self.objects
        for item, link in zip(objects, self.links, strict=True):
            if link:
                item.tracked_persistable_dependencies = [objects[index] for index in link]
        memo: dict[int, tuple[object, str]] = {
            id(objects[index]): (objects[index], key) for index, key in self.keys.items()
        }
        return [objects[index] for index in self.roots], memo


def detached(persistable: Persistable[Any, Any], memo: dict[int, Any]) -> Persistable[Any, Any]:
    """A shallow copy without its payload in memory and without dependencies (memoized by id)."""
    copied: Persistable[Any, Any] | None = memo.get(id(persistable))
    if copied is None:
        copied = copy.copy(persistable)
        copied.reset_payload()
        copied.tracked_persistable_dependencies = []
        memo[id(persistable)] = copied
    return copied


def pack(
    nodes: Sequence[Persistable[Any, Any]],
    resolved: dict[int, tuple[object, str]],
    memo: dict[int, Any],
) -> Shipment:
    """The shipment of ``nodes``: their closure in dependency order, copies from ``memo``.

    ``resolved`` is the run's ``Graph.keys`` (``id -> (object, key)`` of the originals).
    """
    order: list[Persistable[Any, Any]] = []
    listed: set[int] = set()
    for node in nodes:
        walk = dependency_order(node, known=lambda item: id(item) in listed)
        listed.update(id(item) for item in walk)
        order.extend(walk)
    position = {id(item): index for index, item in enumerate(order)}
    roots = [position[id(node)] for node in nodes]
    batch = set(roots)
    keys: dict[int, str] = {}
    for index, item in enumerate(order):
        entry = resolved.get(id(item))
        if index not in batch and entry is not None and entry[0] is item:
            keys[index] = entry[1]
    return Shipment(
        objects=[detached(item, memo) for item in order],
        links=[
            tuple(position[id(dependency)] for dependency in item.tracked_persistable_dependencies)
            for item in order
        ],
        roots=roots,
        keys=keys,
    )
