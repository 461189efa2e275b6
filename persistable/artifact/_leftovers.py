"""The internal areas of a store (``.persistable/``): their size, and what is safe to remove.

Leftovers are what no running writer needs: staging folders of dead processes of this
host, lock files nobody holds, released or expired leases, the files folders of replaces
that died before their commit and the old files of replaces that died after it, and (only
when asked) the quarantine.
"""

from __future__ import annotations

import os
import time
from typing import Any

from persistable.store._base import INTERNAL_DIR, Store

__all__ = ["AREAS", "internal_usage", "remove_leftovers", "empty_quarantine"]

#: The internal areas, as folders of ``.persistable/``.
AREAS = ("staging", "quarantine", "locks", "leases", "claims")


def _files(store: Store, folder: str) -> list[str]:
    """Relative paths of every file under ``folder`` (recursive, on any store)."""
    local = store.local_path(folder)
    if local is not None:
        found = []
        for directory, _, names in os.walk(local):
            for name in names:
                path = os.path.join(directory, name)
                found.append(os.path.relpath(path, store.local_path("")).replace(os.sep, "/"))
        return found
    result: list[str] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        for name in store.list_dir(current):
            path = f"{current}/{name}"
            if store.exists(path):
                result.append(path)
            else:
                pending.append(path)
    return result


def _size(store: Store, path: str) -> int:
    try:
        return store.size(path)
    except OSError:
        return 0


def internal_usage(store: Store) -> dict[str, int]:
    """Bytes used by each internal area (areas that do not exist are left out)."""
    usage = {}
    for area in AREAS:
        files = _files(store, f"{INTERNAL_DIR}/{area}")
        if files:
            usage[area] = sum(_size(store, path) for path in files)
    return usage


def empty_quarantine(store: Store, *, dry_run: bool) -> list[str]:
    """Remove every quarantined artifact folder; returns their names."""
    folder = f"{INTERNAL_DIR}/quarantine"
    removed = []
    for payload_name in store.list_dir(folder):
        for name in store.list_dir(f"{folder}/{payload_name}"):
            removed.append(f"{payload_name}/{name}")
            if not dry_run:
                store.remove_dir(f"{folder}/{payload_name}/{name}")
    return removed


def remove_leftovers(store: Store, *, dry_run: bool) -> list[str]:
    """Remove what no live writer needs; returns the paths removed (or to remove)."""
    removed: list[str] = []
    clean = getattr(store, "clean_staging", None)
    if clean is not None:
        if dry_run:
            removed += [f"{INTERNAL_DIR}/staging/{name}" for name in _dead_staging(store)]
        else:
            removed += [f"{INTERNAL_DIR}/staging/{name}" for name in clean()]
    removed += _free_lock_files(store, dry_run=dry_run)
    removed += _dead_leases(store, dry_run=dry_run)
    removed += _abandoned_replacements(store, dry_run=dry_run)
    return removed


def _abandoned_replacements(store: Store, *, dry_run: bool) -> list[str]:
    """What replaces left in artifact folders: files folders (``<key>/.r-<id>/``) of
    replaces that died before their commit, and old files a replace died removing.

    The folder ``metadata.json`` names is the artifact's, and a key being replaced now
    (a live commit claim on object stores, a held lock on a local disk) stays as it is.
    """
    if store.local_path("") is not None:
        return _local_abandoned_replacements(store, dry_run=dry_run)
    import json

    from persistable._artifact import is_files_folder

    find = getattr(store, "_find", None)
    if find is None:
        return []
    folders: dict[tuple[str, str], set[str]] = {}
    for path in find(""):
        parts = path.split("/")
        if len(parts) > 3 and not parts[0].startswith(".") and is_files_folder(parts[2]):
            folders.setdefault((parts[0], parts[1]), set()).add(parts[2])
    from persistable.store._fsspec import _is_abandoned  # find: an FsspecStore

    removed = []
    claim_ttl = float(getattr(store, "claim_ttl", 3600.0))
    for (payload_name, key), names in sorted(folders.items()):
        try:
            claim: Any = json.loads(
                store.read_bytes(f"{INTERNAL_DIR}/claims/{payload_name}/{key}.json")
            )
        except (OSError, ValueError):
            claim = None
        if isinstance(claim, dict) and not _is_abandoned(claim, claim_ttl):
            continue  # a writer is replacing it now
        try:
            current = store.read_metadata(payload_name, key).get("files_folder")
        except (OSError, ValueError):
            continue  # not committed, or unreadable: not for gc to judge
        for name in sorted(names - {current}):
            folder = f"{payload_name}/{key}/{name}"
            removed.append(folder)
            if not dry_run:
                store.remove_dir(folder)
    return removed


def _local_abandoned_replacements(store: Store, *, dry_run: bool) -> list[str]:
    """:func:`_abandoned_replacements` on a local disk, each key under its lock (held: skipped)."""
    from persistable._artifact import is_files_folder
    from persistable.exceptions import LockTimeoutError
    from persistable.store._base import METADATA_FILE
    from persistable.store._local import remove_all_but

    root = store.local_path("")
    assert root is not None
    removed: list[str] = []
    for payload_name in store.list_dir(""):
        if payload_name.startswith("."):
            continue
        for key in store.list_dir(payload_name):
            names = store.list_dir(f"{payload_name}/{key}")
            if not any(is_files_folder(name) for name in names):
                continue  # never replaced here, or nothing left behind
            try:
                with store.lock(payload_name, key, timeout=0):
                    try:
                        current = store.read_metadata(payload_name, key).get("files_folder")
                    except (OSError, ValueError):
                        continue  # not committed, or unreadable: not for gc to judge
                    keep = (METADATA_FILE, current) if current else None
                    extra = [
                        name
                        for name in store.list_dir(f"{payload_name}/{key}")
                        if (name not in keep if keep else is_files_folder(name))
                    ]
                    removed += [f"{payload_name}/{key}/{name}" for name in extra]
                    if extra and not dry_run:
                        if keep:
                            remove_all_but(root / payload_name / key, keep)
                        else:
                            for name in extra:
                                store.remove_dir(f"{payload_name}/{key}/{name}")
            except LockTimeoutError:
                continue  # a writer is replacing it now
    return removed


def _dead_staging(store: Store) -> list[str]:
    from persistable.store._holders import pid_alive
    from persistable.store._local import _host_tag

    found = []
    for name in store.list_dir(f"{INTERNAL_DIR}/staging"):
        parts = name.split("-", 2)
        ours = len(parts) == 3 and parts[2] == _host_tag() and parts[1].isdigit()
        if ours and not pid_alive(int(parts[1])):
            found.append(name)
    return found


def _free_lock_files(store: Store, *, dry_run: bool) -> list[str]:
    """Lock files (of older versions, or of killed holders) that nobody holds now."""
    root = store.local_path("")
    if root is None or os.name == "nt":
        return []
    import fcntl

    removed = []
    for path in _files(store, f"{INTERNAL_DIR}/locks"):
        full = root / path
        try:
            fd = os.open(full, os.O_RDWR)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # held: a writer is working
            removed.append(path)
            if not dry_run:
                # Unlinked while locked, as the holders themselves do (see store._locks).
                os.unlink(full)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    return removed


def _epoch(iso: object) -> float:
    import datetime as _dt

    if not isinstance(iso, str):
        return 0.0
    try:
        return _dt.datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0


def _dead_leases(store: Store, *, dry_run: bool) -> list[str]:
    """Lease folders whose newest lease is released or expired for more than an hour."""
    import json

    removed = []
    now = time.time()
    leases = f"{INTERNAL_DIR}/leases"
    for payload_name in store.list_dir(leases):
        for key in store.list_dir(f"{leases}/{payload_name}"):
            folder = f"{leases}/{payload_name}/{key}"
            names = sorted(store.list_dir(folder))
            if not names:
                continue
            try:
                record: Any = json.loads(store.read_bytes(f"{folder}/{names[-1]}"))
            except (OSError, ValueError):
                continue
            if not isinstance(record, dict):
                continue
            # Judged by the last renewal (a released lease has expiry 0): an hour of quiet.
            last = _epoch(record.get("renewed"))
            expires = record.get("expires_epoch")
            if isinstance(expires, int | float):
                last = max(last, expires)
            if last and now - last > 3600:
                removed.append(folder)
                if not dry_run:
                    store.remove_dir(folder)
    return removed
