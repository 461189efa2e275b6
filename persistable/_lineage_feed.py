"""Writers feed the shared lineage index, so that the first ``explain()`` on an object store is fast too.

Each commit to a store that keeps a lineage index (:func:`~persistable._lineage_index.index_store`)
records the ``params.json`` it wrote here, in a buffer of this process by store and
payload name. The buffer becomes index objects (one per payload name, all in one
batch, replacing none: :func:`~persistable._lineage_index.add_to_index`)

- when a payload name holds :data:`THRESHOLD` entries (by the commit that filled it),
- when ``persistable.run``, ``samples.map`` or ``sync`` finishes (covering, with one object,
  the objects this process's full buffers wrote since: one object per payload name per run), and
- at interpreter exit (for commits made outside them, e.g. ``load_generate()`` in a loop).

Worker processes of a run or a map do not write: what they commit is :func:`capture`\\ d
and sent back with each outcome, and the caller records it. An index entry is only
ever used for a key that the live listing of the payload folder holds (see
:mod:`persistable._lineage_index`), and a key's ``params.json`` is fixed by the key, so
a record cannot make ``explain()`` describe a deleted artifact. The index is an
optimisation only: a write that fails is logged at debug level and never raised into a
commit, a run or a map; an entry that is lost only means that ``explain()`` reads that
``params.json`` itself.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from persistable._lineage_cache import parse_lineage
from persistable._lineage_index import add_to_index, index_store

if TYPE_CHECKING:
    from persistable.store import Store
    from persistable.store._fsspec import FsspecStore

__all__ = ["THRESHOLD", "Record", "add", "capture", "discard", "flush", "pending", "record"]

logger = logging.getLogger(__name__)

#: Entries of one payload name that are written as an index object at once.
THRESHOLD = 256
#: Entries of one payload name held after their full buffers were written, so that a
#: flush can cover them with one object (beyond this, their objects stay as they are).
KEEP = 65_536
#: Seconds the exit hook waits for its writes (an unreachable store must not hold up exit).
EXIT_SECONDS = 10.0

#: (store, payload name, key, the params.json bytes committed).
Record = tuple["Store", str, str, bytes]

_lock = threading.Lock()
#: One store object per URL (commits arrive through many equal store objects).
_stores: dict[str, FsspecStore] = {}
_buffers: dict[tuple[str, str], dict[str, bytes]] = {}
#: The index objects written from full buffers since the last flush, and their entries.
_written: dict[tuple[str, str], tuple[list[str], dict[str, bytes]]] = {}
_capturing: ContextVar[list[Record] | None] = ContextVar("persistable_lineage_feed", default=None)


def record(store: Store, payload_name: str, key: str, params: bytes) -> None:
    """Note that ``key`` of ``payload_name`` is committed in ``store`` with this ``params.json``."""
    captured = _capturing.get()
    if captured is not None:
        captured.append((store, payload_name, key, params))
        return
    add([(store, payload_name, key, params)])


def add(records: Iterable[Record]) -> None:
    """Buffer ``records``; write the payload names that reach :data:`THRESHOLD`. Never raises."""
    full: list[tuple[FsspecStore, str, dict[str, bytes]]] = []
    try:
        with _lock:
            for store, payload_name, key, params in records:
                shared = index_store(store)
                if shared is None or shared.read_only:
                    continue
                _stores[shared.url] = shared  # the latest: its credentials are the freshest
                where = (shared.url, payload_name)
                buffer = _buffers.setdefault(where, {})
                buffer[key] = params
                _hook_exit()
                if len(buffer) >= THRESHOLD:
                    full.append((shared, payload_name, _buffers.pop(where)))
        _write(full, consolidate=False)
    except Exception as error:  # the index is an optimisation: never a commit's failure
        logger.debug("could not buffer lineage index entries: %s", error)


@contextlib.contextmanager
def capture() -> Iterator[list[Record]]:
    """Collect the records made in this context instead of buffering them (to send them back)."""
    captured: list[Record] = []
    token = _capturing.set(captured)
    try:
        yield captured
    finally:
        _capturing.reset(token)


def flush() -> None:
    """Write everything buffered, one index object per payload name. Never raises.

    A payload name whose full buffers this process wrote since the last flush gets one
    object covering them and the rest, and those objects are deleted: a run leaves one
    object per payload name for readers to fetch, not one per :data:`THRESHOLD` commits.
    """
    with _lock:
        taken = [
            (_stores[url], name, _buffers.pop((url, name), {}))
            for url, name in {*_buffers, *_written}
        ]
    try:
        _write(taken, consolidate=True)
    except Exception as error:
        logger.debug("could not write lineage index entries: %s", error)


def pending() -> int:
    """How many entries are buffered."""
    with _lock:
        return sum(len(buffer) for buffer in _buffers.values())


def discard() -> None:
    """Drop what is buffered, unwritten (its stores are going away)."""
    with _lock:
        _buffers.clear()
        _written.clear()
        _stores.clear()


def _write(batches: list[tuple[FsspecStore, str, dict[str, bytes]]], *, consolidate: bool) -> None:
    by_store: dict[int, tuple[FsspecStore, dict[str, dict[str, bytes]], dict[str, list[str]]]] = {}
    for store, payload_name, buffer in batches:
        entries, replaces = buffer, []
        if consolidate:
            with _lock:
                kept = _written.pop((store.url, payload_name), None)
            if kept is not None and (buffer or len(kept[0]) > 1):
                replaces, entries = kept[0], {**kept[1], **buffer}
        if not entries:
            continue
        _, names, old = by_store.setdefault(id(store), (store, {}, {}))
        names.setdefault(payload_name, {}).update(entries)
        old.setdefault(payload_name, []).extend(replaces)
    for store, names, old in by_store.values():
        trees: dict[str, dict[str, dict[str, Any]]] = {
            payload_name: {
                key: tree
                for key, params in entries.items()
                if (tree := parse_lineage(params.decode("utf-8", "replace"))) is not None
            }
            for payload_name, entries in names.items()
        }
        written = add_to_index(store, trees, old if consolidate else None)
        if consolidate:
            continue
        with _lock:  # kept, to be covered by one object at the next flush
            for payload_name, path in written.items():
                where = (store.url, payload_name)
                paths, entries = _written.setdefault(where, ([], {}))
                paths.append(path)
                entries.update(names[payload_name])
                if len(entries) > KEEP:
                    del _written[where]  # too many to hold: its objects stay as they are


def _flush_at_exit() -> None:
    if not pending():
        return
    # In a thread with a deadline: a store that no longer answers must not hold up exit.
    writer = threading.Thread(target=flush, name="persistable-lineage-index", daemon=True)
    try:
        writer.start()
    except RuntimeError:  # no new threads at this stage of the exit
        flush()
        return
    writer.join(EXIT_SECONDS)


def _forget_in_child() -> None:
    """A forked child starts with an empty buffer: its parent writes what it had buffered."""
    global _lock
    _lock = threading.Lock()
    _buffers.clear()
    _written.clear()


_hooked = False


def _hook_exit() -> None:
    """Register the exit hook, once, when the first entry is buffered (call it under the lock).

    Not at import: a process that only writes to local stores never loads what it needs.
    """
    global _hooked
    if _hooked:
        return
    _hooked = True
    # Before concurrent.futures' own exit hook: after it, asyncio (and so s3fs) cannot
    # resolve a host name any more, its default executor refusing new work. Hooks run
    # last registered first, so concurrent.futures' is registered before ours.
    import concurrent.futures.thread  # noqa: F401

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        with contextlib.suppress(RuntimeError):  # the interpreter is shutting down already
            register(_flush_at_exit)
            return
    atexit.register(_flush_at_exit)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
