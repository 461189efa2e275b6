"""Resolve targets into one DAG: walk tracked dependencies, dedupe by key, skip what exists.

Cycles are detected on object identity before any key is computed (a key of a cyclic
graph does not exist); nodes are then merged by ``(payload_name, key)`` so that one
upstream shared by many targets becomes one node, and the graph is pruned to the
nodes that must run: a node whose artifact is already committed is reported as
"loaded" and its own upstream is not visited on its behalf.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from persistable._keys import current_epoch, dependency_order, describe
from persistable._mutability import key_changes_only_by_assignment
from persistable._persistable import Persistable, key_cache
from persistable.exceptions import DependencyError

__all__ = ["Graph", "Node", "describe", "iter_persistables", "resolve"]

logger = logging.getLogger(__name__)

#: Existence checks on remote stores run in threads from this many nodes of one level.
_PARALLEL_CHECKS_FROM = 8
_CHECK_THREADS = 16


@dataclass(eq=False)
class Node:
    """One distinct artifact of the run: the first persistable seen with its key."""

    persistable: Persistable[Any, Any]
    payload_name: str
    key: str
    #: Upstream nodes (deduplicated) this run must generate before this one.
    upstream: list[Node] = field(default_factory=list)
    #: Downstream nodes of this run that wait for this one.
    downstream: list[Node] = field(default_factory=list)
    #: Whether a committed artifact already existed when the run was resolved.
    exists: bool = False
    #: Whether one of the run's targets is this node.
    is_target: bool = False

    @property
    def label(self) -> str:
        """``payload_name`` and a short key, for logs and reports."""
        return f"{self.payload_name}[{short_key(self.key)}]"


def short_key(key: str) -> str:
    """The first 12 hex digits of a key, after its scheme prefix."""
    _, _, digest = key.rpartition("-")
    return digest[:12]


@dataclass
class Graph:
    """The resolved run: every needed node in topological order (upstream first)."""

    nodes: list[Node]
    targets: list[Node]
    #: The keys resolved (``id -> (object, key)``) of objects whose key only an assignment
    #: can change (``_mutability``), and the mutation epoch they were resolved in:
    #: in-process nodes reuse them while nothing is assigned.
    keys: dict[int, tuple[object, str]] = field(default_factory=dict)
    epoch: int = -1

    @property
    def to_run(self) -> list[Node]:
        """The nodes without a committed artifact, in topological order."""
        return [node for node in self.nodes if not node.exists]

    @property
    def existing(self) -> list[Node]:
        """The nodes whose artifact already existed."""
        return [node for node in self.nodes if node.exists]


def _dependencies(persistable: Persistable[Any, Any]) -> list[Persistable[Any, Any]]:
    dependencies = list(persistable.tracked_persistable_dependencies)
    for dependency in dependencies:
        if not isinstance(dependency, Persistable):
            raise DependencyError(
                f"tracked_persistable_dependencies of {describe(persistable)} must hold "
                f"Persistable instances (got {dependency!r:.80} that is a "
                f"{type(dependency).__name__}); remove it or wrap it in a Persistable."
            )
    return dependencies


def _post_order(targets: list[Persistable[Any, Any]]) -> list[Persistable[Any, Any]]:
    """Every persistable reachable from ``targets``, dependencies first; raises on cycles."""
    listed: set[int] = set()
    order: list[Persistable[Any, Any]] = []
    for root in targets:
        walk = dependency_order(
            root, known=lambda item: id(item) in listed, dependencies=_dependencies
        )
        listed.update(id(item) for item in walk)
        order.extend(walk)
    return order


def _exists(nodes: list[Node]) -> list[bool]:
    remote = [node for node in nodes if node.persistable.store.local_path("") is None]
    if len(remote) < _PARALLEL_CHECKS_FROM:
        return [_committed(node) for node in nodes]
    with concurrent.futures.ThreadPoolExecutor(_CHECK_THREADS) as pool:
        return list(pool.map(_committed, nodes))


def _committed(node: Node) -> bool:
    return node.persistable.store.has_artifact(node.payload_name, node.key)


def iter_persistables(targets: Iterable[Persistable[Any, Any]]) -> list[Persistable[Any, Any]]:
    """Every distinct persistable object reachable from ``targets`` (dependencies first)."""
    return _post_order(list(targets))


def resolve(targets: Iterable[Persistable[Any, Any]], *, skip_existing: bool = True) -> Graph:
    """Turn ``targets`` and their tracked dependencies into the graph of one run.

    Parameters
    ----------
    targets
        The persistables the run must leave committed in their stores.
    skip_existing
        Ask each needed node's store whether its artifact exists; existing nodes are
        not run and their own upstream is not needed for them.

    Returns
    -------
    Graph
        The needed nodes in topological order.

    Raises
    ------
    DependencyError
        The tracked dependencies form a cycle or hold something that is not a Persistable.
    """
    target_list = list(targets)
    for target in target_list:
        if not isinstance(target, Persistable):
            raise DependencyError(
                f"persistable.run() expects Persistable targets (got {target!r:.80} that is a "
                f"{type(target).__name__}); pass a list of Persistable instances."
            )
    objects = _post_order(target_list)
    with key_cache() as memo:  # dependencies come first: each key hashes its upstream keys once
        keys = [persistable.persist_hash for persistable in objects]
    epoch = current_epoch()
    # Only keys that nothing but an assignment can alter are reused (not those of params
    # that can change in place, like a list appended to, nor of code_changes="rerun").
    trusted = {
        ident: entry
        for ident, entry in memo.items()
        if key_changes_only_by_assignment(cast(Persistable[Any, Any], entry[0]))
    }
    by_object: dict[int, Node] = {}
    by_key: dict[tuple[str, str], Node] = {}
    ordered: list[Node] = []
    for persistable, key in zip(objects, keys, strict=True):
        identity = (persistable.payload_name, key)
        node = by_key.get(identity)
        if node is None:
            node = Node(persistable, identity[0], identity[1])
            by_key[identity] = node
            ordered.append(node)
            for dependency in persistable.tracked_persistable_dependencies:
                upstream = by_object[id(dependency)]
                if upstream not in node.upstream:
                    node.upstream.append(upstream)
        by_object[id(persistable)] = node
    target_nodes: list[Node] = []
    listed: set[int] = set()  # a list lookup per target made 100,000 targets take minutes
    for target in target_list:
        node = by_object[id(target)]
        node.is_target = True
        if id(node) not in listed:
            listed.add(id(node))
            target_nodes.append(node)

    # Breadth-first from the targets: a node is needed if it is a target or the upstream of
    # a needed node that is not committed. Each level's existence checks run together
    # (in threads on remote stores, where each is a round trip).
    needed: set[int] = {id(node) for node in target_nodes}
    frontier = list(target_nodes)
    while frontier:
        found = _exists(frontier) if skip_existing else [False] * len(frontier)
        upcoming: list[Node] = []
        for node, exists in zip(frontier, found, strict=True):
            node.exists = exists
            if exists:
                logger.debug(
                    "%s is committed in %s: nothing to do", node.label, node.persistable.store
                )
                continue
            logger.debug("%s has no artifact: it will be generated", node.label)
            for upstream in node.upstream:
                if id(upstream) not in needed:
                    needed.add(id(upstream))
                    upcoming.append(upstream)
        frontier = upcoming
    nodes = [node for node in ordered if id(node) in needed]
    for node in nodes:  # committed upstream nodes are satisfied already: no edge to wait on
        node.upstream = [] if node.exists else [up for up in node.upstream if not up.exists]
        node.downstream = []
    for node in nodes:
        for upstream in node.upstream:
            upstream.downstream.append(node)
    return Graph(nodes=nodes, targets=target_nodes, keys=trusted, epoch=epoch)
