"""What each artifact's ``params.json`` holds, by key, in memory and in a SQLite file per user.

An artifact's ``params.json`` (its lineage: own params and the key of each
dependency) is fixed by its key, since the key is hashed from exactly those params
and dependency keys. So once read, it never needs reading again, in any store or
process: :func:`explain` over 10,000 artifacts then costs one listing and one query
instead of 10,000 reads. The file lives beside the content-digest cache
(``PERSISTABLE_CACHE_DIR`` overrides the folder); when it cannot be written, the cache
lives in memory only. (A ``File`` path shown in the lineage is the path it had when
first read; its content digest, which the key covers, is the same.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persistable._content import _cache_root

if TYPE_CHECKING:
    import sqlite3

__all__ = ["lineage_cache"]

_FILE = "lineages.sqlite"
#: Keys per SELECT (SQLite's older limit of bound variables is 999).
_CHUNK = 500


class _LineageCache:
    def __init__(self) -> None:
        self._memory: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._db_root: Path | None = None

    def _connection(self) -> sqlite3.Connection | None:
        root = _cache_root()
        if self._db_root == root:
            return self._db  # None: that folder could not hold the file
        import sqlite3  # only when explain() first looks for lineages

        if self._db is not None:
            self._db.close()
        self._db_root, self._db = root, None
        try:
            root.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(root / _FILE, timeout=30, check_same_thread=False)
            db.execute("CREATE TABLE IF NOT EXISTS lineages (key TEXT PRIMARY KEY, tree TEXT)")
            db.commit()
        except (OSError, sqlite3.Error):
            return None  # a read-only or full home folder: memory only
        self._db = db
        return db

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The lineages known for ``keys`` (the others are left out)."""
        found: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        with self._lock:
            for key in keys:
                hit = self._memory.get(key)
                if hit is None:
                    missing.append(key)
                else:
                    found[key] = hit
            if not missing:
                return found
            db = self._connection()
            if db is None:
                return found
            import sqlite3

            try:
                for start in range(0, len(missing), _CHUNK):
                    chunk = missing[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(
                        f"SELECT key, tree FROM lineages WHERE key IN ({marks})",
                        chunk,
                    ).fetchall()
                    for key, text in rows:
                        tree = json.loads(text)
                        if isinstance(tree, dict):
                            self._memory[key] = found[key] = tree
            except (sqlite3.Error, ValueError):
                pass  # the cache is an optimisation: reading params.json is always right
        return found

    def put_many(self, trees: dict[str, dict[str, Any]]) -> None:
        """Remember lineages read from committed ``params.json`` files."""
        if not trees:
            return
        with self._lock:
            self._memory.update(trees)
            db = self._connection()
            if db is None:
                return
            import sqlite3

            try:
                db.executemany(
                    "INSERT OR REPLACE INTO lineages VALUES (?, ?)",
                    [(key, json.dumps(tree, sort_keys=True)) for key, tree in trees.items()],
                )
                db.commit()
            except sqlite3.Error:
                pass

    def clear_memory(self) -> None:
        """Forget what is held in memory (the next lookups read the SQLite file)."""
        with self._lock:
            self._memory.clear()
            if self._db is not None:
                self._db.close()
            self._db, self._db_root = None, None


lineage_cache = _LineageCache()
