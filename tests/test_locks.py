"""Per-key locks: N real processes asking for one key generate it once and all get it.

Workers are real subprocesses (``reliability_worker.py``) on a real local folder; the
lease is exercised with real threads on a memory store and, in the S3 tests, with
real processes against the loopback S3 server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_worker import PAYLOAD_NAME, blob, digest, expected_payload

from persistable import LocalStore, MemoryStore
from persistable.exceptions import LockTimeoutError
from persistable.store._lease import Lease, lease_lock
from persistable.store._memory import MemoryLeaseFiles

WORKER = Path(__file__).resolve().parent / "reliability_worker.py"
N_PROCESSES = 8


def start_workers(config: dict[str, Any], count: int = 1) -> list[subprocess.Popen[str]]:
    """Start worker processes (in parallel) and wait until each has imported everything."""
    processes = [
        subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for process in processes:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            _, err = process.communicate()
            raise AssertionError(f"worker failed to start: {line!r} {err}")
    return processes


def start_worker(config: dict[str, Any]) -> subprocess.Popen[str]:
    """Start one worker process and wait until it has imported everything."""
    return start_workers(config)[0]


def finish(process: subprocess.Popen[str], timeout: float = 120) -> list[str]:
    """Wait for a worker and return its output lines; fail with its stderr if it failed."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"worker exited with {process.returncode}: {err}"
    return out.splitlines()


def wait_for_lines(path: Path, count: int, timeout: float = 30) -> list[str]:
    """Wait until the generation counter file has ``count`` lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= count:
                return lines
        time.sleep(0.01)
    raise AssertionError(f"{path} did not reach {count} lines")


def run_many(store_spec: dict[str, Any], tmp_path: Path, size: int) -> tuple[list[str], set[str]]:
    """Start N workers on one key at once; return the generation lines and payload digests."""
    counter = tmp_path / "generations.txt"
    config = {
        "store": store_spec,
        "mode": "load_generate",
        "seeds": [7],
        "size": size,
        "counter": str(counter),
        "sleep": 0.3,
        "go": str(tmp_path / "go"),
    }
    # Start every worker first (imports done), then let them race for the key at once.
    started = time.monotonic()
    processes = start_workers(config, N_PROCESSES)
    ready = time.monotonic()
    (tmp_path / "go").touch()
    outputs = [finish(process) for process in processes]
    print(
        f"\n[locks] {store_spec['kind']}: workers started in {ready - started:.1f} s, "
        f"all {N_PROCESSES} done {time.monotonic() - ready:.1f} s after the start signal"
    )
    digests = {line.split()[2] for lines in outputs for line in lines if line.startswith("done")}
    done = sum(1 for lines in outputs for line in lines if line.startswith("done"))
    assert done == N_PROCESSES
    generations = counter.read_text().splitlines() if counter.exists() else []
    return generations, digests


def test_eight_processes_on_a_local_store_generate_once(tmp_path: Path) -> None:
    """8 processes calling load_generate() on one key of a local store generate it exactly once and all get the same payload."""
    size = 1 << 20
    generations, digests = run_many(
        {"kind": "local", "path": str(tmp_path / "store")},
        tmp_path,
        size,
    )
    print(f"\n[locks] local: {N_PROCESSES} processes, {len(generations)} generation(s)")
    assert len(generations) == 1
    assert digests == {digest(expected_payload(7, size))}


def test_lock_timeout_names_the_holder(tmp_path: Path) -> None:
    """A waiter that times out gets LockTimeoutError naming the holder's host and pid."""
    store_spec = {"kind": "local", "path": str(tmp_path / "store")}
    counter = tmp_path / "generations.txt"
    holder = start_worker(
        {
            "store": store_spec,
            "mode": "load_generate",
            "seeds": [3],
            "size": 1000,
            "counter": str(counter),
            "sleep": 30,
        }
    )
    try:
        wait_for_lines(counter, 1)
        store = LocalStore(tmp_path / "store")
        key = blob(store, {"size": 1000}, 3).key
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as caught, store.lock(PAYLOAD_NAME, key, timeout=0.3):
            pass
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert f"pid {holder.pid}" in message
        assert repr(socket.gethostname()) in message
        assert key in message
    finally:
        holder.kill()
        holder.communicate()


def test_lock_file_of_a_killed_holder_never_blocks(tmp_path: Path) -> None:
    """The lock file left by a SIGKILLed holder does not block: the kernel released the lock, the next worker generates at once."""
    store_spec = {"kind": "local", "path": str(tmp_path / "store")}
    counter = tmp_path / "generations.txt"
    config = {
        "store": store_spec,
        "mode": "load_generate",
        "seeds": [5],
        "size": 1000,
        "counter": str(counter),
        "sleep": 60,
    }
    holder = start_worker(config)
    wait_for_lines(counter, 1)
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate()
    lock_files = list((tmp_path / "store" / ".persistable" / "locks" / PAYLOAD_NAME).glob("*.lock"))
    assert len(lock_files) == 1  # left behind by the killed process
    started = time.monotonic()
    lines = finish(start_worker(config | {"sleep": 0, "lock_timeout": 5.0}))
    assert time.monotonic() - started < 5
    assert lines == [f"done 5 {digest(expected_payload(5, 1000))}"]
    assert len(counter.read_text().splitlines()) == 2  # the killed one and the new one


def test_threads_of_one_process_take_the_local_lock_in_turn(tmp_path: Path) -> None:
    """The local lock also excludes threads of one process (flock is per open file)."""
    store = LocalStore(tmp_path / "store")
    inside = 0
    most = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with store.lock(PAYLOAD_NAME, "k1-abc", timeout=30):
            with guard:
                inside += 1
                most = max(most, inside)
            time.sleep(0.02)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


# -- leases (object stores), exercised on the memory store with real threads ---------


def test_lease_excludes_concurrent_holders() -> None:
    """Of 8 threads asking for one lease, never more than one holds it at a time, and all get it."""
    files = MemoryLeaseFiles(MemoryStore("lease-exclusion"))
    inside = 0
    most = 0
    count = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most, count
        for _ in range(3):
            with lease_lock(files, "blob", "k1-x", timeout=30, seconds=5):
                with guard:
                    inside += 1
                    count += 1
                    most = max(most, inside)
                time.sleep(0.005)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    MemoryStore.clear("lease-exclusion")
    assert (most, count) == (1, 24)


def _plant_lease(files: MemoryLeaseFiles, expires: float, *, released: bool = False) -> None:
    record = {
        "owner": "crashed",
        "host": "elsewhere",
        "pid": 4242,
        "since": "2026-01-01T00:00:00+00:00",
        "generation": 0,
        "expires_epoch": expires,
        "released": released,
    }
    files.overwrite(
        ".persistable/leases/blob/k1-y/00000000.json", json.dumps(record).encode("utf-8")
    )


def test_live_lease_times_out_naming_the_holder() -> None:
    """Waiting for a live lease ends with LockTimeoutError naming its host, pid and since."""
    files = MemoryLeaseFiles(MemoryStore("lease-live"))
    _plant_lease(files, time.time() + 60)
    with (
        pytest.raises(LockTimeoutError, match=r"host 'elsewhere', pid 4242, since 2026-01-01"),
        lease_lock(files, "blob", "k1-y", timeout=0.2, seconds=5),
    ):
        pass
    MemoryStore.clear("lease-live")


def test_expired_lease_of_a_crashed_holder_is_taken_over() -> None:
    """An expired lease (its holder died) is taken over at once as the next generation, and the old one is removed."""
    files = MemoryLeaseFiles(MemoryStore("lease-expired"))
    _plant_lease(files, time.time() - 1)
    started = time.monotonic()
    with lease_lock(files, "blob", "k1-y", timeout=2, seconds=5) as lease:
        assert lease.generation == 1
    assert time.monotonic() - started < 1
    assert files.list_names(".persistable/leases/blob/k1-y") == ["00000001.json"]
    MemoryStore.clear("lease-expired")


def test_lease_is_renewed_while_the_work_runs() -> None:
    """A lease shorter than the work is renewed by its holder, so a waiter keeps waiting."""
    files = MemoryLeaseFiles(MemoryStore("lease-renew"))
    holding = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with lease_lock(files, "blob", "k1-z", timeout=10, seconds=1.0):
            holding.set()
            done.wait(15)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(10)
    try:
        with (
            pytest.raises(LockTimeoutError),
            lease_lock(files, "blob", "k1-z", timeout=3.5, seconds=1.0),
        ):
            pass  # 3.5 s is more than three lease times: only renewal keeps it held
            # (a lease of 1 s: a renewal thread stalled by a loaded machine is not a takeover)
    finally:
        done.set()
        thread.join()
    with lease_lock(files, "blob", "k1-z", timeout=3.0, seconds=1.0) as lease:
        assert isinstance(lease, Lease)  # released: the next worker gets it at once
    MemoryStore.clear("lease-renew")


def test_holder_that_stalled_past_expiry_notices_it_lost_the_lease() -> None:
    """A holder whose lease was taken over while it stalled marks itself lost and does not release the new holder's lease."""
    files = MemoryLeaseFiles(MemoryStore("lease-lost"))
    folder = ".persistable/leases/blob/k1-w"
    with lease_lock(files, "blob", "k1-w", timeout=1, seconds=0.3) as first:
        first._stop.set()  # simulate a stalled holder: it stops renewing
        assert first._thread is not None
        first._thread.join()
        first._stop.clear()
        time.sleep(0.35)
        with lease_lock(files, "blob", "k1-w", timeout=1, seconds=5) as second:
            assert second.generation == first.generation + 1
            first.start_renewing()
            time.sleep(0.2)
            assert first.lost
            live = json.loads(files.read(f"{folder}/{second.generation:08d}.json") or b"{}")
            assert live["released"] is False
    MemoryStore.clear("lease-lost")


# -- the same on the loopback S3 server (leases with conditional puts) ----------------


def s3_spec(s3_bucket: tuple[str, dict[str, Any]], lease_seconds: float) -> dict[str, Any]:
    """The worker's store spec for the test bucket."""
    url, storage_options = s3_bucket
    return {
        "kind": "s3",
        "url": url,
        "storage_options": storage_options,
        "lease_seconds": lease_seconds,
    }


@pytest.mark.s3
def test_eight_processes_on_s3_generate_once(
    tmp_path: Path, s3_bucket: tuple[str, dict[str, Any]]
) -> None:
    """8 processes calling load_generate() on one key of an S3 store generate it exactly once and all get the same payload."""
    size = 1 << 20
    generations, digests = run_many(s3_spec(s3_bucket, 10.0), tmp_path, size)
    print(f"\n[locks] s3: {N_PROCESSES} processes, {len(generations)} generation(s)")
    assert len(generations) == 1
    assert digests == {digest(expected_payload(7, size))}


@pytest.mark.s3
def test_s3_lease_of_a_killed_holder_expires_and_is_taken_over(
    tmp_path: Path, s3_bucket: tuple[str, dict[str, Any]]
) -> None:
    """On S3 a waiter times out naming the live holder; once the SIGKILLed holder's lease expires the next worker takes over and generates."""
    from persistable.store import make_store

    counter = tmp_path / "generations.txt"
    config = {
        "store": s3_spec(s3_bucket, 1.5),
        "mode": "load_generate",
        "seeds": [9],
        "size": 1000,
        "counter": str(counter),
        "sleep": 60,
    }
    holder = start_worker(config)
    wait_for_lines(counter, 1)
    url, storage_options = s3_bucket
    store = make_store(url, storage_options=storage_options)
    key = blob(store, {"size": 1000}, 9).key
    with pytest.raises(LockTimeoutError) as caught, store.lock(PAYLOAD_NAME, key, timeout=2.0):
        pass  # 2 s > the lease time: the live holder keeps renewing it
    assert f"pid {holder.pid}" in str(caught.value)
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate()
    started = time.monotonic()
    lines = finish(start_worker(config | {"sleep": 0, "lock_timeout": 10.0}))
    waited = time.monotonic() - started
    print(f"\n[locks] s3: killed holder's lease taken over after {waited:.1f} s")
    assert lines == [f"done 9 {digest(expected_payload(9, 1000))}"]
    assert len(counter.read_text().splitlines()) == 2


def test_eight_threads_on_a_memory_store_generate_once(memory_store: MemoryStore) -> None:
    """8 threads calling load_generate() on one key of a memory store generate it once (the lease works in-process too)."""
    from reliability_worker import Blob, BlobParams

    generated: list[int] = []

    class Slow(Blob):
        def _generate_payload(self, **untracked_payload_params: Any) -> Any:
            generated.append(1)
            time.sleep(0.2)
            return expected_payload(self.params.seed, self.params.size)

    digests: list[str] = []

    def work() -> None:
        item = Slow(memory_store, BlobParams(seed=11, size=1000), payload_name=PAYLOAD_NAME)
        item.load_generate()
        digests.append(digest(item.payload))

    threads = [threading.Thread(target=work) for _ in range(N_PROCESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(generated) == 1
    assert digests == [digest(expected_payload(11, 1000))] * N_PROCESSES
