"""A worker process for the concurrency and crash tests: real processes, real stores.

Run as ``python reliability_worker.py '<json config>'``. It builds the store named in
the config, then, per mode:

- ``load_generate``: calls ``Blob.load_generate()`` for each seed (or for ever from
  ``start`` with ``loop``), printing ``done <seed> <sha256 of the payload>``;
- ``lock``: takes the store's lock of one key with a timeout and prints ``locked``
  or ``timeout <message>``.

Every generation appends one line to the ``counter`` file with ``O_APPEND`` before
it starts, so the tests can count generations across processes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from persistable import LocalStore, NpyFileIO, Persistable, PersistableParams, Store, make_store

PAYLOAD_NAME = "blob"


@dataclass(frozen=True)
class BlobParams(PersistableParams):
    """Which blob: its seed and size in bytes."""

    seed: int
    size: int


class Blob(Persistable[NDArray[np.uint8], BlobParams]):
    """Deterministic random bytes; each generation is counted in a side file."""

    default_payload_io = NpyFileIO()
    counter: str | None = None
    sleep: float = 0.0

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.uint8]:
        if self.counter is not None:
            fd = os.open(self.counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{self.params.seed} {os.getpid()}\n".encode())
            finally:
                os.close(fd)
        if self.sleep:
            time.sleep(self.sleep)
        return expected_payload(self.params.seed, self.params.size)


def expected_payload(seed: int, size: int) -> NDArray[np.uint8]:
    """The payload every generation of ``seed`` must produce (cheap, so kills hit the writes)."""
    head = min(size, 1 << 16)
    payload: NDArray[np.uint8] = _pattern(size).copy()
    payload[:head] = np.frombuffer(np.random.default_rng(seed).bytes(head), dtype=np.uint8)
    payload[head:] += np.uint8(seed % 256)
    return payload


@functools.cache
def _pattern(size: int) -> NDArray[np.uint8]:
    pattern: NDArray[np.uint8] = np.resize(np.arange(256, dtype=np.uint8), size)
    return pattern


def digest(payload: NDArray[np.uint8]) -> str:
    """SHA-256 of the payload bytes."""
    return hashlib.sha256(payload.tobytes()).hexdigest()


def build_store(spec: dict[str, Any]) -> Store:
    """The store described by ``spec`` (``{"kind": "local", "path": ...}`` or an fsspec URL)."""
    if spec["kind"] == "local":
        local = LocalStore(spec["path"])
        if "stale_staging_age" in spec:
            local.stale_staging_age = float(spec["stale_staging_age"])
        return local
    store = make_store(spec["url"], storage_options=spec.get("storage_options"))
    if "lease_seconds" in spec:
        store.lease_seconds = float(spec["lease_seconds"])  # type: ignore[attr-defined]
    return store


def blob(store: Store, config: dict[str, Any], seed: int) -> Blob:
    """The Blob of ``seed`` on ``store`` configured by ``config``."""
    item = Blob(store, BlobParams(seed=seed, size=int(config["size"])), payload_name=PAYLOAD_NAME)
    item.counter = config.get("counter")
    item.sleep = float(config.get("sleep", 0.0))
    item.lock_timeout = config.get("lock_timeout", 120.0)
    return item


def main(config: dict[str, Any]) -> int:
    """Run one worker; see the module docstring."""
    store = build_store(config["store"])
    print("ready", flush=True)
    if config["mode"] == "lock":
        from persistable.exceptions import LockTimeoutError

        key = config.get("key") or blob(store, config, int(config["seed"])).key
        try:
            with store.lock(PAYLOAD_NAME, key, timeout=float(config["timeout"])):
                print("locked", flush=True)
        except LockTimeoutError as error:
            print(f"timeout {error}", flush=True)
        return 0
    go = config.get("go")
    while go is not None and not os.path.exists(go):  # start line shared by all workers
        time.sleep(0.002)
    seeds: Any = config.get("seeds")
    if config.get("loop"):
        # Loop from ``start``, or from the seed written into the go file.
        start = config.get("start")
        if start is None:
            start = int(Path(go).read_text()) if go is not None else 0
        seeds = range(int(start), 1 << 30)
    for seed in seeds:
        item = blob(store, config, int(seed))
        item.load_generate()
        print(f"done {seed} {digest(item.payload)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
