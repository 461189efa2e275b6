"""Per-key generation locks on object stores: leases created with a conditional put.

An object store has no lock a crashed process gives back, so the lock of one key is
a *lease*: a small JSON object that names its holder (owner id, host, pid, since)
and an expiry, renewed by a background thread while the work runs. A worker that
dies stops renewing; once the lease has expired, the next worker takes it over.

Layout, one folder per key::

    <root>/.persistable/leases/<payload_name>/<key>/00000000.json
                                                   /00000001.json   <- the current lease

Each acquisition creates the *next generation* number with a create-if-absent put
(S3 ``If-None-Match: *``), so among workers racing for the same free or expired
lease exactly one creation succeeds: that is the whole mutual exclusion. Taking over
an expired lease is the same step (create generation n+1); nothing ever deletes or
overwrites a lease it does not own, which closes the classic "delete + create" race
in which two late workers both delete and both recreate. Released leases are marked
released by their owner (never deleted), and generations below the current one are
garbage-collected by the next holder, so the folder keeps one or two small objects.
The highest generation is never deleted: numbers only grow, so a worker acting on a
stale listing fails its create instead of reusing a number.

What a lease cannot do (documented in docs/reliability.md): a holder paused for
longer than the lease time (a stopped VM, a swap storm) loses its lease while it still
works, and a second worker may start the same generation. The commit protocol keeps
that harmless: ``metadata.json`` is written with a conditional put, the first
committer wins and the other copy is discarded, so the key still holds exactly one
complete artifact; only the work is done twice. Expiry is judged on the holder's
clock: keep the lease time well above the clock skew between hosts.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from persistable.exceptions import LockTimeoutError
from persistable.store._base import INTERNAL_DIR
from persistable.store._holders import describe_holder, holder_is_dead, holder_record
from persistable.store._lease_files import LeaseFiles

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "Lease",
    "LeaseFiles",
    "lease_lock",
]

logger = logging.getLogger(__name__)

#: Default lease time; the holder renews every third of it.
DEFAULT_LEASE_SECONDS = 60.0
_GENERATION = re.compile(r"^(\d{8,})\.json$")


def _now() -> float:
    return time.time()


def _iso(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).isoformat(timespec="seconds")


class Lease:
    """One held lease; renewed by a daemon thread until :meth:`release`.

    Attributes
    ----------
    path
        The lease object, relative to the store root.
    lost
        Set when the lease was found taken over (the holder had stalled past its expiry).
    """

    def __init__(self, files: LeaseFiles, folder: str, generation: int, seconds: float) -> None:
        self.files = files
        self.folder = folder
        self.generation = generation
        self.path = f"{folder}/{generation:08d}.json"
        self.seconds = seconds
        self.record = holder_record()
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def body(self, *, released: bool = False) -> bytes:
        """The JSON content of the lease as it is now."""
        now = _now()
        record = dict(self.record)
        record.update(
            generation=self.generation,
            renewed=_iso(now),
            expires_epoch=0.0 if released else now + self.seconds,
            released=released,
        )
        return json.dumps(record, sort_keys=True).encode("utf-8")

    def start_renewing(self) -> None:
        """Renew the lease every third of its time in a daemon thread."""
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"persistable-lease-{self.generation}", daemon=True
        )
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if _highest(self.files.list_names(self.folder)) > self.generation:
                    self.lost = True
                    logger.warning(
                        "The lease %s was taken over by another worker (this one stalled for more "
                        "than %.0f s); the first commit of the artifact will win.",
                        self.path,
                        self.seconds,
                    )
                    return
                self.files.overwrite(self.path, self.body())
                logger.debug("Renewed lease %s", self.path)
            except Exception:  # a transient network error must not kill the worker
                logger.warning("Could not renew the lease %s; retrying", self.path, exc_info=True)

    def release(self) -> None:
        """Stop renewing and mark the lease released (the next worker takes it at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost:
            try:
                self.files.overwrite(self.path, self.body(released=True))
            except Exception:  # it will expire by itself
                logger.warning("Could not release the lease %s", self.path, exc_info=True)


def _highest(names: list[str]) -> int:
    generations = [int(m.group(1)) for m in map(_GENERATION.match, names) if m]
    return max(generations, default=-1)


def _parse(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None  # unreadable: treated as expired
    return record if isinstance(record, dict) else None


def _is_live(record: dict[str, Any] | None, now: float) -> bool:
    if record is None or record.get("released"):
        return False
    expires = record.get("expires_epoch")
    if not isinstance(expires, (int, float)) or expires <= now:
        return False
    # A holder on this host whose process is gone will never renew: take over at once.
    return not holder_is_dead(record)


def key_of(folder: str) -> str:
    """``payload_name/key`` from a lease folder, for messages."""
    return "/".join(folder.rsplit("/", 2)[-2:])


def try_acquire(files: LeaseFiles, folder: str, seconds: float) -> Lease | dict[str, Any]:
    """One attempt: the new :class:`Lease`, or the record of the live holder."""
    names = files.list_names(folder)
    highest = _highest(names)
    previous = _parse(files.read(f"{folder}/{highest:08d}.json")) if highest >= 0 else None
    if previous is not None and _is_live(previous, _now()):
        return previous
    lease = Lease(files, folder, highest + 1, seconds)
    if not files.create(lease.path, lease.body()):
        # Another worker created that generation first: it holds the lease now.
        holder = _parse(files.read(lease.path))
        return holder if holder is not None else {}
    if previous is not None and not previous.get("released"):
        logger.warning(
            "Took over the expired lease of %s in %s (held by %s)",
            key_of(folder),
            folder,
            describe_holder(previous),
        )
    for name in names:  # older generations are dead: tidy them up (never the highest)
        match = _GENERATION.match(name)
        if match and int(match.group(1)) < lease.generation:
            files.delete(f"{folder}/{name}")
    return lease


@contextlib.contextmanager
def lease_lock(
    files: LeaseFiles,
    payload_name: str,
    key: str,
    timeout: float | None,
    *,
    seconds: float = DEFAULT_LEASE_SECONDS,
    url: str = "",
) -> Iterator[Lease]:
    """Hold the lease of one key while the block runs; others poll with backoff.

    Parameters
    ----------
    files
        The object operations of the store.
    payload_name, key
        The artifact the lease is for (never a store-wide lock).
    timeout
        Seconds to wait for a live holder, None to wait as long as it renews.
    seconds
        Lease time; a crashed holder blocks the key at most this long.
    url
        The store's URL, for messages.

    Raises
    ------
    LockTimeoutError
        The lease was not free within ``timeout``; the message names the holder.
    """
    folder = f"{INTERNAL_DIR}/leases/{payload_name}/{key}"
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.02
    while True:
        outcome = try_acquire(files, folder, seconds)
        if isinstance(outcome, Lease):
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise LockTimeoutError(
                f"Waited {timeout} s for the lease of {payload_name!r} key {key} in {url!r}, "
                f"held by {describe_holder(outcome)}; raise the timeout, or check that worker "
                f"(a crashed holder's lease expires within {seconds:.0f} s)."
            )
        pause = delay * (0.5 + random.random())  # jitter, not security
        if deadline is not None:
            pause = max(0.0, min(pause, deadline - time.monotonic()))
        time.sleep(pause)
        delay = min(delay * 1.5, 1.0)
    lease = outcome
    lease.start_renewing()
    logger.debug("Holding lease %s", lease.path)
    try:
        yield lease
    finally:
        lease.release()
        logger.debug("Released lease %s", lease.path)
