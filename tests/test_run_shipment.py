"""Nodes travel to worker processes flat, with their whole upstream and its resolved keys."""

from __future__ import annotations

import pickle

from _run_nodes import Grand, StepParams, step

from persistable import LocalStore, run
from persistable.run import resolve
from persistable.run._executors import dumps_node, execute_batch
from persistable.run._shipment import pack


def test_a_chain_deeper_than_the_pickle_recursion_limit_runs_on_processes(
    local_store: LocalStore,
) -> None:
    """A 250-node chain (nested, it exceeded the pickler's recursion limit) runs on a process pool."""
    node = step(local_store, "n0", value=0)
    for i in range(1, 250):
        node = step(local_store, f"n{i}", node, value=i)
    report = run([node], executor="processes", max_workers=2, progress=False)
    assert report.ok, str(report)
    assert len(report.generated) == 250
    assert node.payload == sum(range(250))


def test_a_node_reads_its_upstreams_upstream_in_a_worker(local_store: LocalStore) -> None:
    """The whole upstream travels: a node's code reaches two levels up in a worker process."""
    root = step(local_store, "root", value=5)
    middle = step(local_store, "middle", root, value=1)
    top = Grand(local_store, StepParams("top", value=2), [middle], payload_name="top")
    report = run([top], executor="processes", max_workers=2, progress=False)
    assert report.ok, str(report)
    assert top.payload == 2 + 5


def test_a_shipment_keeps_shared_upstream_shared_and_carries_its_keys(
    local_store: LocalStore,
) -> None:
    """Two nodes over one upstream object unpack over one object; only upstream keys are given."""
    root = step(local_store, "root")
    left, right = step(local_store, "left", root), step(local_store, "right", root)
    graph = resolve([left, right])
    shipment = pickle.loads(dumps_node(pack([left, right], graph.keys, {})))
    (left_copy, right_copy), memo = shipment.unpack()
    shared = left_copy.tracked_persistable_dependencies[0]
    assert right_copy.tracked_persistable_dependencies[0] is shared
    assert [entry[1] for entry in memo.values()] == [root.persist_hash]
    assert next(iter(memo.values()))[0] is shared
    assert left_copy.persist_hash == left.persist_hash
    assert not root.has_payload


def test_a_shipped_node_whose_key_differs_fails_and_writes_nothing(
    local_store: LocalStore,
) -> None:
    """With its upstream keys given, a node's own key is still checked against the resolved one."""
    root = step(local_store, "root")
    node = step(local_store, "a", root)
    graph = resolve([node])
    task = dumps_node(pack([node], graph.keys, {}))
    outcomes = execute_batch(task, [("a", "k1-" + "0" * 64)])
    assert outcomes is not None
    assert outcomes[0].status == "failed"
    assert outcomes[0].error is not None
    assert outcomes[0].error.startswith(f"KeyMismatchError: a has key {node.persist_hash}")
    assert not node.exists()
