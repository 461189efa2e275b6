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

__all__ = ["lineage_cache", "parse_lineage"]

_FILE = "lineages.sqlite"
#: Keys per SELECT (SQLite's older limit of bound variables is 999).
_CHUNK = 500


_DECODER = json.JSONDecoder()
#: What JSON allows after a document.
_JSON_SPACE = " \t\n\r"


def parse_lineage(text: str) -> dict[str, Any] | None:
    """The JSON object ``text`` holds, or None: json.loads' answer, with less overhead per call.

    Thousands of small params.json files are parsed per explain(): the decoder's C scanner
    is called directly, and only a text it does not take whole goes through json.loads.
    """
    try:
        tree, end = _DECODER.raw_decode(text)
    except ValueError:
        try:
            tree = json.loads(text)  # leading white space, or not JSON at all
        except ValueError:
            return None
    else:
        if end != len(text) and text[end:].strip(_JSON_SPACE):
            return None  # more than one document: not a params.json
    return tree if isinstance(tree, dict) else None


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
                        tree = parse_lineage(text)
                        if tree is not None:
                            self._memory[key] = found[key] = tree
            except (sqlite3.Error, ValueError):
                pass  # the cache is an optimisation: reading params.json is always right
        return found

    def put_many(
        self, trees: dict[str, dict[str, Any]], texts: dict[str, str] | None = None
    ) -> None:
        """Remember lineages read from committed ``params.json`` files.

        ``texts`` holds the JSON each tree was parsed from, when known (stored as is).
        """
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
                    [
                        (key, texts[key] if texts and key in texts else json.dumps(tree))
                        for key, tree in trees.items()
                    ],
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
