"""A shared index of lineages in an object store: a cold ``explain()`` does a few GETs, not one per artifact.

Each artifact's ``params.json`` is fixed by its key (see :mod:`persistable._lineage_cache`),
so a record ``key -> params.json`` never goes stale: it can only describe an artifact
that was deleted since. The index is a handful of objects per payload name::

    <root>/.persistable/lineages/<payload_name>/<sha256 of the object>.json
    {"format": 1, "payload_name": "...", "lineages": {"k1-...": {...params.json...}}}

A reader lists that folder, reads every object in one concurrent batch, drops any whose
content does not hash to its name (torn, edited or foreign), and uses an entry only for a
key that the live listing of the payload folder holds: a deleted artifact is never
described from the index. Keys no index covers are read from their ``params.json``, all at
once (fsspec's multi-path read). When that was many (:data:`MIN_NEW`), ``explain()`` writes
one new object covering every key it knows that is still listed, and deletes the objects it
read (the new one covers them), as it does when it read more than :data:`MAX_OBJECTS`
objects. Committers add objects too (:mod:`persistable._lineage_feed`: one per payload
name per run, or per 256 commits), so the first explain() after a run reads a few objects
and no ``params.json``. Two writers at once leave two objects; the next writer
merges them. A reader that finds an object gone reads the keys it covered one by one. The
index is an optimisation only: when it cannot be read or written, the answer is the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from persistable._lineage_cache import parse_lineage
from persistable.store._base import INTERNAL_DIR

if TYPE_CHECKING:
    from persistable.store import Store
    from persistable.store._fsspec import FsspecStore

__all__ = [
    "MAX_OBJECTS",
    "MIN_NEW",
    "IndexRead",
    "add_to_index",
    "encode_index",
    "fetch_params",
    "index_store",
    "read_index",
    "write_index",
]

logger = logging.getLogger(__name__)

_FOLDER = f"{INTERNAL_DIR}/lineages"
_FORMAT = 1
#: Keys read one by one in an explain() above which it writes a new index object.
MIN_NEW = 32
#: Index objects of a payload name above which an explain() merges them into one.
MAX_OBJECTS = 64
_PARAMS_FILE = "params.json"


@dataclass
class IndexRead:
    """What the index objects of a payload name hold for the keys asked about."""

    trees: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Names of the valid index objects read (a new object covering them replaces them).
    objects: list[str] = field(default_factory=list)


def index_store(store: Store) -> FsspecStore | None:
    """``store`` when it keeps a lineage index (an fsspec store not on local disk), else None."""
    if "persistable.store._fsspec" not in sys.modules:
        return None  # no FsspecStore exists before its module is loaded (every commit asks)
    from persistable.store._fsspec import FsspecStore

    if isinstance(store, FsspecStore) and store.local_path("") is None:
        return store
    return None


def _folder(store: FsspecStore, payload_name: str) -> str:
    return f"{store.root}/{_FOLDER}/{payload_name}"


def _cat_many(store: FsspecStore, paths: list[str]) -> list[bytes | None]:
    """The content of each full path (None when it cannot be read), in one concurrent batch."""
    if not paths:
        return []
    # One GET each: s3fs would ask for the size first unless told to read in one request.
    options: dict[str, Any] = {"max_concurrency": 1} if store.protocol in ("s3", "s3a") else {}
    try:
        out = store.fs.cat_ranges(paths, None, None, on_error="return", **options)
    except Exception as error:  # the index and the batch are optimisations
        logger.debug("batch read of %d objects in %s failed: %s", len(paths), store.url, error)
        return [None] * len(paths)
    return [bytes(item) if isinstance(item, (bytes, bytearray)) else None for item in out]


def read_index(store: FsspecStore, payload_name: str, wanted: set[str]) -> IndexRead:
    """The entries of the payload name's index objects for the keys in ``wanted``."""
    result = IndexRead()
    folder = _folder(store, payload_name)
    try:
        names = [
            str(entry).rsplit("/", 1)[-1]
            for entry in store.fs.ls(folder, detail=False, refresh=True)
        ]
    except FileNotFoundError:
        return result
    except Exception as error:
        logger.debug("cannot list the lineage index %s: %s", folder, error)
        return result
    names = sorted(name for name in names if name.endswith(".json"))
    for name, data in zip(
        names, _cat_many(store, [f"{folder}/{name}" for name in names]), strict=True
    ):
        if data is None or hashlib.sha256(data).hexdigest() != name[: -len(".json")]:
            continue  # gone since the listing, or not what its name promises
        try:
            record = json.loads(data)
        except ValueError:
            continue
        if (
            not isinstance(record, dict)
            or record.get("format") != _FORMAT
            or record.get("payload_name") != payload_name
            or not isinstance(record.get("lineages"), dict)
        ):
            continue
        lineages = record["lineages"]
        result.objects.append(name)
        for key in wanted.intersection(lineages):
            tree = lineages[key]
            if isinstance(tree, dict):
                result.trees[key] = tree
    return result


def fetch_params(
    store: FsspecStore, payload_name: str, keys: list[str]
) -> tuple[dict[str, tuple[dict[str, Any], str]], list[str]]:
    """Each key's ``params.json`` (tree and text) read in one batch; and the keys not found so."""
    paths = [f"{store.root}/{payload_name}/{key}/{_PARAMS_FILE}" for key in keys]
    found: dict[str, tuple[dict[str, Any], str]] = {}
    left: list[str] = []
    for key, data in zip(keys, _cat_many(store, paths), strict=True):
        text = None
        if data is not None:
            with contextlib.suppress(UnicodeDecodeError):
                text = data.decode("utf-8")
        tree = None if text is None else parse_lineage(text)
        if tree is None or text is None:
            left.append(key)  # not at its usual place (a replaced artifact), or unreadable
        else:
            found[key] = (tree, text)
    return found, left


def write_index(
    store: FsspecStore, payload_name: str, trees: dict[str, dict[str, Any]], replaces: list[str]
) -> str | None:
    """Write one index object holding ``trees`` and delete the ``replaces`` objects; its name or None."""
    if store.read_only or not trees:
        return None
    name, data = encode_index(payload_name, trees)
    folder = _folder(store, payload_name)
    try:
        store.fs.pipe_file(f"{folder}/{name}", data)
    except Exception as error:  # no write permission, a full quota...: explain() still answers
        logger.debug("cannot write the lineage index %s: %s", folder, error)
        return None
    stale = [f"{folder}/{old}" for old in replaces if old != name]
    if stale:
        with contextlib.suppress(Exception):
            store.fs.rm(stale)  # one bulk request on S3
    return name


def encode_index(payload_name: str, trees: dict[str, dict[str, Any]]) -> tuple[str, bytes]:
    """The name and content of an index object holding ``trees``."""
    data = json.dumps(
        {"format": _FORMAT, "payload_name": payload_name, "lineages": trees},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    return f"{hashlib.sha256(data).hexdigest()}.json", data


def add_to_index(
    store: FsspecStore,
    by_name: dict[str, dict[str, dict[str, Any]]],
    replaces: dict[str, list[str]] | None = None,
) -> dict[str, str]:
    """Write one new index object per payload name, all in one batch; the paths written.

    The objects of other writers stay (explain() merges them); ``replaces`` names, by
    payload name, paths of objects the new one covers, deleted once it is written.
    """
    objects: dict[str, bytes] = {}
    written: dict[str, str] = {}
    for payload_name, trees in by_name.items():
        if trees:
            name, data = encode_index(payload_name, trees)
            written[payload_name] = path = f"{_folder(store, payload_name)}/{name}"
            objects[path] = data
    if store.read_only or not objects:
        return {}
    try:
        store.fs.pipe(objects)
    except Exception as error:  # no write permission, a full quota...: explain() still answers
        logger.debug("cannot add to the lineage index of %s: %s", store.url, error)
        return {}
    stale = [
        path
        for payload_name in written
        for path in (replaces or {}).get(payload_name, [])
        if path not in objects
    ]
    if stale:
        with contextlib.suppress(Exception):
            store.fs.rm(stale)  # one bulk request on S3
    return written
