"""The runner on Dask distributed: a real LocalCluster with worker processes, shared by the module."""

from __future__ import annotations

import importlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _run_nodes import Step, journal_counts, journal_pids, step

from persistable import LocalStore, MemoryStore, run
from persistable.exceptions import RunInterrupted, StoreConfigurationError
from persistable.run import RunReport

pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A Client of a LocalCluster with two single-threaded worker processes."""
    distributed = importlib.import_module("distributed")
    tests_dir = str(Path(__file__).resolve().parent)
    with pytest.MonkeyPatch.context() as patch:
        # Worker processes import the test persistables from tests/ (pickle refers to them).
        patch.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))
        )
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


def diamond(store: LocalStore, journal: Path, n: int) -> list[Step]:
    """``n`` targets over one shared upstream."""
    root = step(store, "root", journal=str(journal))
    return [
        step(store, f"leaf{i}", root, payload_name="leaf", value=i, journal=str(journal))
        for i in range(n)
    ]


def test_client_runs_every_node_once_in_worker_processes(
    client: Any, local_store: LocalStore, tmp_path: Path
) -> None:
    """Through a Client, each node is generated once, in the cluster's worker processes."""
    journal = tmp_path / "journal"
    journal.mkdir()
    targets = diamond(local_store, journal, 10)
    report = run(targets, executor=client, progress=False)
    assert report.ok
    assert len(report.generated) == 11
    assert report.executor.startswith("dask (")
    assert journal_counts(journal) == {"root.root": 1} | {f"leaf.leaf{i}": 1 for i in range(10)}
    pids = journal_pids(journal)
    assert os.getpid() not in pids
    assert {int(str(r.worker).rsplit(":", 1)[1]) for r in report.generated} == pids
    assert [t.payload for t in targets] == list(range(10))
    assert [r.status for r in run(targets, executor=client)] == ["loaded"] * 10


def test_scheduler_address_string_uses_the_cluster(client: Any, local_store: LocalStore) -> None:
    """A scheduler address string connects to the existing cluster, which stays up."""
    address = client.scheduler.address
    report = run([step(local_store, "a"), step(local_store, "b")], executor=address)
    assert report.executor == f"dask ({address}, 2 threads)"
    assert len(report.generated) == 2
    assert client.submit(sum, [1, 2]).result() == 3


def test_failure_on_dask_skips_dependents_only(
    client: Any, local_store: LocalStore, tmp_path: Path
) -> None:
    """A node failing on a Dask worker has its dependents skipped and its traceback reported."""
    flag = tmp_path / "fail"
    flag.touch()
    bad = step(local_store, "bad", fail_if_exists=str(flag))
    targets = [step(local_store, "child", bad), step(local_store, "alone")]
    report = run(targets, executor=client)
    assert {r.payload_name: r.status for r in report} == {
        "bad": "failed",
        "child": "skipped",
        "alone": "generated",
    }
    assert report.failed[0].traceback is not None
    assert "boom in bad" in report.failed[0].traceback
    flag.unlink()
    assert len(run(targets, executor=client).generated) == 2


def test_memory_store_on_worker_processes_fails_clearly(
    client: Any, memory_store: MemoryStore
) -> None:
    """A memory store cannot reach Dask worker processes: a clear error before anything runs."""
    with pytest.raises(StoreConfigurationError, match="worker processes cannot see"):
        run([step(memory_store, "a")], executor=client)


def test_an_in_process_cluster_sees_a_memory_store_run_after_run(memory_store: MemoryStore) -> None:
    """Workers in this process (processes=False) share its memory store, on every run of a client."""
    distributed = importlib.import_module("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as in_process,
    ):
        for name in ("first", "second"):  # the second run reuses what the first asked
            report = run([step(memory_store, name)], executor=in_process, progress=False)
            assert report.ok
            assert [result.payload_name for result in report.generated] == [name]


def test_dask_name_starts_and_stops_a_local_cluster(client: Any, local_store: LocalStore) -> None:
    """executor='dask' starts a LocalCluster for the run and closes it afterwards."""
    targets = [step(local_store, f"n{i}", payload_name="n", value=i) for i in range(4)]
    report = run(targets, executor="dask", max_workers=2)
    assert report.executor == "dask (LocalCluster, 2 threads)"
    assert len(report.generated) == 4
    assert sorted(t.payload for t in targets) == [0, 1, 2, 3]


def test_ctrl_c_interrupts_the_wait_for_dask_completions(
    client: Any, local_store: LocalStore, tmp_path: Path
) -> None:
    """SIGINT while the run blocks on the cluster's completions raises RunInterrupted."""
    journal = tmp_path / "journal"
    journal.mkdir()
    targets = [
        step(local_store, f"s{i}", payload_name="s", journal=str(journal), sleep=2.0)
        for i in range(4)
    ]
    main = threading.get_ident()

    def interrupt_once_running() -> None:
        deadline = time.monotonic() + 120
        while not any(journal.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        signal.pthread_kill(main, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    sender = threading.Thread(target=interrupt_once_running, daemon=True)
    try:
        sender.start()
        with pytest.raises(RunInterrupted) as interrupted:
            run(targets, executor=client, progress=False)
    finally:
        sender.join()
        signal.signal(signal.SIGINT, previous)
    report = interrupted.value.report
    assert isinstance(report, RunReport)
    statuses = {result.status for result in report}
    assert "skipped" in statuses
    assert statuses <= {"generated", "skipped"}
