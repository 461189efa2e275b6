"""Crash safety: SIGKILL a worker at random moments while it generates and persists.

A real worker process (``reliability_worker.py``) generates one large payload after
another with ``load_generate()``; the test kills it with SIGKILL at a random moment,
then checks the store as any other process would see it:

- every visible artifact is complete: it passes ``verify()`` and loads the exact
  payload (no partial artifact is ever visible or loadable);
- leftovers of the killed writer (staging folders, lock files, leases, claims) do not
  block anyone and are cleaned up by the next writer;
- the next worker's ``load_generate()`` of the interrupted key produces a complete
  artifact.

The figures (kills, kills that hit a write in progress, artifacts verified) are
printed for docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_worker import PAYLOAD_NAME, Blob, build_store, digest, expected_payload

from persistable import Store
from persistable.exceptions import ArtifactNotFoundError

WORKER = Path(__file__).resolve().parent / "reliability_worker.py"
SIZE = 8 << 20  # 8 MiB: writing and hashing take long enough to be hit mid-way


def _spawn(config: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ready(process: subprocess.Popen[str]) -> subprocess.Popen[str]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        _, err = process.communicate()
        raise AssertionError(f"worker failed to start: {line!r} {err}")
    return process


def _start(config: dict[str, Any]) -> subprocess.Popen[str]:
    return _ready(_spawn(config))


def _wait_for_generation(counter: Path, pid: int, timeout: float = 60) -> None:
    """Wait until the worker ``pid`` has started a generation (its line in the counter)."""
    deadline = time.monotonic() + timeout
    needle = f" {pid}\n"
    while time.monotonic() < deadline:
        if counter.exists() and needle in counter.read_text():
            return
        time.sleep(0.002)
    raise AssertionError(f"worker {pid} started no generation within {timeout} s")


def _blob(store: Store, seed: int) -> Blob:
    return Blob(store, _params(seed), payload_name=PAYLOAD_NAME)


def _params(seed: int) -> Any:
    from reliability_worker import BlobParams

    return BlobParams(seed=seed, size=SIZE)


class Checker:
    """Checks what any process sees in the store after a kill."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.key_to_seed: dict[str, int] = {}
        self.verified: set[str] = set()
        self.not_loadable = 0

    def seed_keys(self, upto: int) -> None:
        """Learn the keys of seeds below ``upto``."""
        for seed in range(len(self.key_to_seed), upto):
            self.key_to_seed[_blob(self.store, seed).key] = seed

    def check(self) -> None:
        """Every visible artifact is complete; a folder without metadata.json is not loadable."""
        for key in self.store.list_dir(PAYLOAD_NAME):
            assert key in self.key_to_seed, f"unexpected folder {PAYLOAD_NAME}/{key}"
            item = _blob(self.store, self.key_to_seed[key])
            if not self.store.has_artifact(PAYLOAD_NAME, key):
                # Only object stores show uncommitted files (no rename); they are not an artifact.
                with pytest.raises(ArtifactNotFoundError):
                    item.load()
                self.not_loadable += 1
                continue
            if key in self.verified:
                continue
            item.verify()
            item.load(verify=True)
            assert digest(item.payload) == digest(expected_payload(item.params.seed, SIZE))
            self.verified.add(key)


def crash_loop(
    store_spec: dict[str, Any], tmp_path: Path, kills: int, window: tuple[float, float]
) -> dict[str, Any]:
    """Kill ``kills`` workers at random moments; return the figures.

    ``window`` is where the kills fall after a worker started a generation, in units
    of the time one key takes on this machine (measured first).
    """
    rng = random.Random(20261121)
    store = build_store(store_spec)
    checker = Checker(store)
    counter = tmp_path / "generations.txt"
    base = {
        "store": store_spec,
        "mode": "load_generate",
        "size": SIZE,
        "counter": str(counter),
        "lock_timeout": 60.0,
    }
    go = tmp_path / "go"
    # The next worker is started (imports done) while the current one works: only the
    # time after its start signal counts, which keeps 50 kills fast.
    waiting = _spawn(base | {"loop": True, "go": f"{go}0"})
    # One uninterrupted key first, while that worker imports (as during the kills):
    # the time from the start of its generation to its commit sets the kill window.
    warm = _start(base | {"seeds": [0]})
    assert warm.stdout is not None
    _wait_for_generation(counter, warm.pid)
    began = time.monotonic()
    assert warm.stdout.readline().startswith("done 0 ")
    one_key = time.monotonic() - began
    warm.communicate()
    low, high = window[0] * one_key, window[1] * one_key
    next_seed = 1
    mid_write = 0
    staging_left = 0
    started = time.monotonic()
    for kill in range(kills):
        process = _ready(waiting)
        Path(f"{go}.tmp").write_text(str(next_seed))
        os.replace(f"{go}.tmp", f"{go}{kill}")  # atomic: the worker never sees it half-written
        if kill + 1 < kills:
            waiting = _spawn(base | {"loop": True, "go": f"{go}{kill + 1}"})
        # Kill at a random moment after this worker has started a generation: during the
        # generation, the write of the payload, the commit, or the next key.
        _wait_for_generation(counter, process.pid)
        time.sleep(rng.uniform(low, high))
        os.kill(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        assert process.returncode == -signal.SIGKILL
        done = [int(line.split()[1]) for line in out.splitlines() if line.startswith("done")]
        if done:
            next_seed = done[-1] + 1
        generations = counter.read_text().splitlines() if counter.exists() else []
        if generations and generations[-1] == f"{next_seed} {process.pid}":
            mid_write += 1  # killed between the start of its generation and its "done"
        staging = store.local_path(".persistable/staging")
        if staging is not None and staging.exists():
            staging_left += sum(1 for name in os.listdir(staging) if f"-{process.pid}-" in name)
        checker.seed_keys(next_seed + 1)
        checker.check()
    # The next worker finishes the interrupted key and one more, on the same store.
    process = _start(base | {"seeds": [next_seed, next_seed + 1]})
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["done", str(next_seed)],
        ["done", str(next_seed + 1)],
    ]
    checker.seed_keys(next_seed + 2)
    checker.verified.clear()
    checker.check()
    for seed in range(next_seed + 2):  # every key generated so far is a complete artifact
        assert store.has_artifact(PAYLOAD_NAME, _blob(store, seed).key)
    # Leases of killed workers were taken over and tidied: one (released) object per key.
    leases = f".persistable/leases/{PAYLOAD_NAME}"
    lease_objects = [len(store.list_dir(f"{leases}/{key}")) for key in store.list_dir(leases)]
    assert all(count == 1 for count in lease_objects), lease_objects
    return {
        "kills": kills,
        "kills_during_generate_or_persist": mid_write,
        "artifacts_verified": len(checker.verified),
        "kills_that_left_a_staging_folder": staging_left,
        "uncommitted_folders_seen_not_loadable": checker.not_loadable,
        "generations_started": len(counter.read_text().splitlines()),
        "lease_objects_left": sum(lease_objects),
        "seconds_generate_to_commit_uninterrupted": round(one_key, 2),
        "seconds": round(time.monotonic() - started, 1),
    }


@pytest.mark.slow
def test_sigkill_during_generate_and_persist_on_a_local_store(tmp_path: Path) -> None:
    """40 SIGKILLs at random moments on a local store never leave a partial artifact; staging leftovers are removed by the next writer."""
    root = tmp_path / "store"
    spec = {"kind": "local", "path": str(root), "stale_staging_age": 0}
    figures = crash_loop(spec, tmp_path, kills=40, window=(0.0, 1.5))
    staging = root / ".persistable" / "staging"
    leftovers = sorted(p.name for p in staging.iterdir()) if staging.exists() else []
    print(f"\n[crash] local: {json.dumps(figures)}; staging leftovers at the end: {len(leftovers)}")
    assert leftovers == []
    assert figures["kills_during_generate_or_persist"] >= 20
    assert figures["kills_that_left_a_staging_folder"] >= 1  # some kills hit the write itself


@pytest.mark.slow
@pytest.mark.s3
def test_sigkill_during_generate_and_persist_on_s3(
    tmp_path: Path, s3_bucket: tuple[str, dict[str, Any]]
) -> None:
    """SIGKILLs at random moments on S3 never leave a loadable partial artifact; the dead worker's lease expires and the next worker completes the key."""
    url, storage_options = s3_bucket
    spec = {"kind": "s3", "url": url, "storage_options": storage_options, "lease_seconds": 1.0}
    figures = crash_loop(spec, tmp_path, kills=10, window=(0.0, 1.5))
    print(f"\n[crash] s3: {json.dumps(figures)}")
    assert figures["kills_during_generate_or_persist"] >= 5


def test_clean_staging_removes_only_dead_writers_of_this_host(tmp_path: Path) -> None:
    """clean_staging() removes staging folders of dead pids on this host at once (or once older than max_age), never those of live pids or other hosts."""
    from persistable import LocalStore
    from persistable.store._local import _host_tag

    store = LocalStore(tmp_path / "store")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    staging = tmp_path / "store" / ".persistable" / "staging"
    names = {
        "dead": f"{'a' * 32}-{dead_pid}-{_host_tag()}",
        "alive": f"{'b' * 32}-{os.getpid()}-{_host_tag()}",
        "other_host": f"{'c' * 32}-{dead_pid}-some_other_host",
        "foreign": "not-ours",
    }
    for name in names.values():
        (staging / name).mkdir(parents=True)
        (staging / name / "payload.npy").write_bytes(b"partial")
    assert store.clean_staging(max_age=3600) == []  # younger than the age asked for
    assert store.clean_staging() == [names["dead"]]  # a dead writer's folder goes at once
    assert sorted(p.name for p in staging.iterdir()) == sorted(
        names[k] for k in ("alive", "other_host", "foreign")
    )
