"""``explain()``: why a persistable would load or generate, and what differs from the nearest artifact.

The current identity (own params, upstream keys, code fingerprint, version, key scheme)
is compared with the ``params.json`` of every artifact of the same payload name; the
nearest one (fewest differing fields) is reported with its differences. An upstream
key that differs is followed down the chain, to the upstream field or file that changed.
An artifact's ``params.json`` is fixed by its key, so each is read once per user
(:mod:`persistable._lineage_cache`); on object stores the store's shared index
(:mod:`persistable._lineage_index`, fed by the writers) spares even that first read.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from persistable import _lineage_index as shared_index
from persistable._hashing import KEY_SCHEME
from persistable._lineage_cache import lineage_cache, parse_lineage
from persistable.exceptions import ArtifactNotFoundError

if TYPE_CHECKING:
    from persistable._persistable import Persistable
    from persistable.store import Store

__all__ = ["Difference", "Explanation", "explain"]

_PARAMS_FILE = "params.json"
_THREADS = 32
#: Below this many unknown keys, each params.json is read on its own (no index, no threads).
_FEW = 8
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
#: Bytes per read of a local params.json (most are far smaller).
_READ_SIZE = 1 << 16


def _short(key: Any) -> str:
    if isinstance(key, str) and key.startswith("k") and "-" in key:
        prefix, _, digest = key.partition("-")
        return f"{prefix}-{digest[:12]}…"
    return _value(key)


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class Difference:
    """One thing that differs between the nearest artifact and the current identity."""

    #: What differs: ``params.alpha``, ``upstream load_raw``, ``code``, ``version``.
    where: str
    old: Any
    new: Any
    #: A readable account of the change.
    text: str
    #: For an upstream whose key changed: what differs in that upstream.
    details: list[Difference] = field(default_factory=list)


@dataclass
class Explanation:
    """The answer of :meth:`Persistable.explain`; printable, and shown as HTML in notebooks."""

    class_name: str
    payload_name: str
    key: str
    store_url: str
    #: Whether the artifact of the current key exists (then it is loaded, not generated).
    exists: bool
    location: str | None = None
    #: How many artifacts of the payload name were compared.
    compared: int = 0
    nearest: str | None = None
    differences: list[Difference] = field(default_factory=list)
    #: Why the existing artifact is refused on load (an ``added_later`` default changed since).
    refused: str | None = None

    def __str__(self) -> str:
        if self.exists and self.refused is not None:
            return (
                f"The artifact of {self.class_name} key {_short(self.key)} exists at "
                f"{self.location}, but load_generate() refuses it: {self.refused}"
            )
        if self.exists:
            return (
                f"The artifact of {self.class_name} key {_short(self.key)} exists at "
                f"{self.location}: load_generate() loads it."
            )
        if self.nearest is None:
            return (
                f"No artifact for {self.class_name} key {_short(self.key)}, and no other "
                f"{self.payload_name} artifact in {self.store_url!r}: load_generate() generates it."
            )
        lines = [
            f"No artifact for {self.class_name} key {_short(self.key)}; the nearest of "
            f"{self.compared} existing {self.payload_name} artifacts ({_short(self.nearest)}) "
            "differs in:"
        ]
        stack = [(item, 1) for item in reversed(self.differences)]
        while stack:
            item, depth = stack.pop()
            lines.append("  " * depth + item.text)
            stack.extend((detail, depth + 1) for detail in reversed(item.details))
        if not self.differences:
            lines.append("  nothing that explain() can see (the artifact may be incomplete)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


# -- comparing trees -------------------------------------------------------------------


def _comparable(value: Any) -> Any:
    """A File/Directory encoding without its path: content is what the key covers."""
    if isinstance(value, dict) and value.get("__type__") in ("file", "directory", "remote_file"):
        return {name: item for name, item in value.items() if name != "path"}
    return value


def _leaves(tree: Any) -> dict[str, Any]:
    """Every leaf of a params tree by its dotted path (tagged values are leaves)."""
    if isinstance(tree, dict) and not any(isinstance(value, dict) for value in tree.values()):
        return tree  # flat params, the common case: nothing to walk (callers only read)
    leaves: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [("", tree)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict) and value and "__type__" not in value and not _is_link(value):
            stack.extend((f"{path}.{name}" if path else name, item) for name, item in value.items())
        else:
            leaves[path] = _comparable(value)
    return leaves


def _is_link(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"payload_name", "key"}


def _same(old: Any, new: Any) -> bool:
    """Equal as the key sees them: ``1``, ``1.0`` and ``True`` differ (``==`` says they match)."""
    if type(old) is not type(new) or old != new:
        return False
    if isinstance(old, (dict, list)):
        return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)
    return True


def _distance(old: dict[str, Any], new: dict[str, Any]) -> int:
    """How many leaves differ (:func:`_same`, unrolled: it runs once per artifact and leaf)."""
    count = len(old.keys() - new.keys())
    for name, value in new.items():
        other = old.get(name, _ABSENT)
        if (
            type(other) is not type(value)
            or other != value
            or (isinstance(value, (dict, list)) and not _same(other, value))
        ):
            count += 1
    return count


def _as_stored(tree: dict[str, Any]) -> dict[str, Any]:
    """``tree`` as it reads back from ``params.json`` (tuples become lists, and so on)."""
    stored: dict[str, Any] = json.loads(json.dumps(tree))
    return stored


#: Leaves of each candidate's params.json, by key (like the lineage cache).
_leaves_cache: dict[str, dict[str, Any]] = {}


def _cached_leaves(key: str, tree: dict[str, Any]) -> dict[str, Any]:
    leaves = _leaves_cache.get(key)
    if leaves is None:
        leaves = _leaves_cache[key] = _leaves(tree)
    return leaves


class _Absent:
    """A field one side does not have (not a string: a params value may be ``"<absent>"``)."""

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()


def _describe(path: str, old: Any, new: Any) -> str:
    if isinstance(new, dict) and new.get("__type__") in ("file", "directory", "remote_file"):
        shown = new.get("path", "?")
        if isinstance(old, dict) and old.get("__type__") == new.get("__type__"):
            digest = "xxh3_128" if "xxh3_128" in new else "checksum"
            return (
                f"params.{path}: content of {shown} changed (size {old.get('size')} -> "
                f"{new.get('size')}, {digest} {str(old.get(digest))[:12]}… -> "
                f"{str(new.get(digest))[:12]}…)"
            )
    shown_old = repr(old) if old is _ABSENT else _value(old)
    shown_new = repr(new) if new is _ABSENT else _value(new)
    return f"params.{path}: {shown_old} -> {shown_new}"


def _read_stored(store: Store, payload_name: str, key: str) -> dict[str, Any] | None:
    try:
        tree = json.loads(store.read_bytes(f"{payload_name}/{key}/{_PARAMS_FILE}"))
    except FileNotFoundError:
        # Not committed yet, or replaced on an object store (its files are in the
        # folder metadata.json names): the handle knows where.
        from persistable.artifact import Artifact

        try:
            tree = Artifact(store, payload_name, key).read_params()
        except (OSError, ValueError):
            return None
    except (OSError, ValueError):
        return None  # unreadable: not a candidate
    return tree if isinstance(tree, dict) else None


def _read_local(folder: str, key: str) -> tuple[dict[str, Any], str] | None:
    """The params.json of ``key`` in the local payload folder, and its text.

    Plain ``os`` calls: no buffered file object per read (thousands are read at once).
    """
    try:
        handle = os.open(f"{folder}/{key}/{_PARAMS_FILE}", _READ_FLAGS)
    except OSError:
        return None
    try:
        chunks = [os.read(handle, _READ_SIZE)]
        while len(chunks[-1]) == _READ_SIZE:  # a large params.json: read to the end
            chunks.append(os.read(handle, _READ_SIZE))
    except OSError:
        return None
    finally:
        os.close(handle)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        return None
    tree = parse_lineage(text)
    return None if tree is None else (tree, text)


def _read_each(store: Store, payload_name: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The params.json of each key through the store, in threads when there are many."""
    if len(keys) < _FEW:
        trees = [_read_stored(store, payload_name, key) for key in keys]
    else:
        with ThreadPoolExecutor(_THREADS) as pool:  # one round trip each
            trees = list(pool.map(lambda key: _read_stored(store, payload_name, key), keys))
    return {key: tree for key, tree in zip(keys, trees, strict=True) if tree is not None}


def _read_params(store: Store, payload_name: str, key: str) -> dict[str, Any] | None:
    return _read_all(store, payload_name, [key])[0]


def _read_all(store: Store, payload_name: str, keys: list[str]) -> list[dict[str, Any] | None]:
    """The params.json of each key: from the lineage cache, else read (and remembered)."""
    known = lineage_cache.get_many(keys)
    missing = [key for key in keys if key not in known]
    if missing:
        folder = store.local_path(payload_name)
        texts: dict[str, str] = {}
        read: dict[str, dict[str, Any]] = {}
        if folder is not None:
            base = str(folder)
            for key in missing:
                found = _read_local(base, key)
                if found is not None:
                    read[key], texts[key] = found
        else:
            shared = shared_index.index_store(store) if len(missing) >= _FEW else None
            index, unindexed, rest = shared_index.IndexRead(), missing, missing
            if shared is not None:
                # The shared index first, then one batch for the keys it does not cover.
                index = shared_index.read_index(shared, payload_name, set(missing))
                read.update(index.trees)
                unindexed = [key for key in missing if key not in read]
                fetched, rest = shared_index.fetch_params(shared, payload_name, unindexed)
                for key, (tree, text) in fetched.items():
                    read[key], texts[key] = tree, text
            read.update(_read_each(store, payload_name, rest))
            if shared is not None and (
                len(unindexed) >= shared_index.MIN_NEW
                or len(index.objects) > shared_index.MAX_OBJECTS
            ):
                # Many keys read one by one, or many objects (one per run that wrote
                # some): one object for them all from now on.
                live = known | read
                shared_index.write_index(
                    shared,
                    payload_name,
                    {key: live[key] for key in keys if key in live},
                    index.objects,
                )
        lineage_cache.put_many(read, texts)
        known.update(read)
    return [known.get(key) for key in keys]


# -- the explanation --------------------------------------------------------------------


_Follow = tuple["Persistable[Any, Any]", str, Difference]


def _roles(
    persistable: Persistable[Any, Any],
) -> dict[str, tuple[list[Persistable[Any, Any]], bool]]:
    """Each dependency role: its members and whether it is a sequence role."""
    grouped = persistable._by_role(lambda dependency: dependency)
    return {
        role: (list(value), True) if isinstance(value, list) else ([value], False)
        for role, value in grouped.items()
    }


def _compare(
    current: Persistable[Any, Any], recorded: dict[str, Any]
) -> tuple[list[Difference], list[_Follow]]:
    """Differences of own params and upstream links; the upstreams whose key changed."""
    roles = _roles(current)
    now = _as_stored(current.lineage())
    differences: list[Difference] = []
    follow: list[_Follow] = []
    # Upstream links the artifact had and the current persistable has not (or a role now
    # holds fewer members than a list recorded): not params fields.
    removed = {
        name: value
        for name, value in recorded.items()
        if name not in roles
        and (_is_link(value) or (isinstance(value, list) and value and all(map(_is_link, value))))
    }
    for role, value in sorted(removed.items()):
        links = value if isinstance(value, list) else [value]
        keys = ", ".join(_short(link["key"]) for link in links)
        text = f"upstream {role}: key {keys} -> no such dependency now"
        differences.append(Difference(f"upstream {role}", value, None, text))
    old_params = _leaves(
        {
            name: value
            for name, value in recorded.items()
            if name not in roles and name not in removed
        }
    )
    new_params = _leaves({name: value for name, value in now.items() if name not in roles})
    for path in sorted(old_params.keys() | new_params.keys()):
        old, new = old_params.get(path, _ABSENT), new_params.get(path, _ABSENT)
        if not _same(old, new):
            shown = _describe(path, old, _find(now, path))
            differences.append(Difference(f"params.{path}", old, new, shown))
    for role, (members, many) in sorted(roles.items()):
        old_link = recorded.get(role)
        olds = old_link if isinstance(old_link, list) else [old_link]
        if len(olds) != len(members):
            text = f"upstream {role}: {len(olds)} -> {len(members)} members"
            differences.append(Difference(f"upstream {role}", len(olds), len(members), text))
            continue
        for index, (old, member) in enumerate(zip(olds, members, strict=True)):
            old_key = old.get("key") if isinstance(old, dict) else None
            new_key = member.persist_hash
            if old_key == new_key:
                continue
            label = f"{role}[{index}]" if many else role
            was = "no such dependency then" if old is None else f"key {_short(old_key)}"
            text = f"upstream {label}: {was} -> key {_short(new_key)}"
            difference = Difference(f"upstream {label}", old_key, new_key, text)
            differences.append(difference)
            if isinstance(old_key, str):
                follow.append((member, old_key, difference))
    return differences, follow


def _find(tree: dict[str, Any], path: str) -> Any:
    value: Any = tree
    for part in path.split("."):
        if not isinstance(value, dict):
            return value
        value = value.get(part, _ABSENT)
    return value


def _dependency_order(
    persistable: Persistable[Any, Any], metadata: dict[str, Any]
) -> list[Difference]:
    """The same dependencies given in another order (user code may read them by position)."""
    recorded = metadata.get("upstream")
    if not isinstance(recorded, list):
        return []
    old = [entry[0] for entry in recorded if isinstance(entry, list) and entry]
    new = [dependency.payload_name for dependency in persistable.tracked_persistable_dependencies]
    if old == new or sorted(old) != sorted(new):
        return []  # same order, or other dependencies (reported as upstream differences)
    return [
        Difference(
            "dependency order",
            old,
            new,
            f"dependency order {', '.join(old)} -> {', '.join(new)} "
            "(code may read dependencies by position)",
        )
    ]


def _code_and_version(
    persistable: Persistable[Any, Any], metadata: dict[str, Any]
) -> list[Difference]:
    from persistable._fingerprint import changed_entries

    differences: list[Difference] = []
    old_version, new_version = metadata.get("version"), persistable.version
    if old_version != new_version:
        differences.append(
            Difference(
                "version", old_version, new_version, f"version {old_version!r} -> {new_version!r}"
            )
        )
    differences += _dependency_order(persistable, metadata)
    scheme = metadata.get("key_scheme")
    if scheme != KEY_SCHEME:
        differences.append(
            Difference("key scheme", scheme, KEY_SCHEME, f"key scheme {scheme!r} -> {KEY_SCHEME}")
        )
    code = metadata.get("code")
    if not isinstance(code, dict):
        return differences
    functions = code.get("functions")
    if isinstance(functions, dict):
        try:
            current = persistable.code_fingerprint()
        except Exception:  # nothing to compare with
            return differences
        if code.get("fingerprint") != current.digest:
            changed = changed_entries(functions, current)
            if changed:
                counted = " (part of the key)" if persistable.code_changes == "rerun" else ""
                differences.append(
                    Difference(
                        "code",
                        code.get("fingerprint"),
                        current.digest,
                        f"code{counted}: {', '.join(changed)} changed",
                    )
                )
    return differences


def explain(persistable: Persistable[Any, Any]) -> Explanation:
    """Compare the current identity with the artifacts of the same payload name in the store."""
    from persistable._keys import key_cache

    with key_cache():
        return _explain(persistable)


def _explain(persistable: Persistable[Any, Any]) -> Explanation:
    name = persistable.payload_name
    store = persistable.store
    key = persistable.persist_hash
    result = Explanation(type(persistable).__name__, name, key, store.url, exists=False)
    for candidate in (store, *persistable.fallback_stores):
        if candidate.has_artifact(name, key):
            result.exists = True
            relative = candidate.artifact_dir(name, key)
            local = candidate.local_path(relative)
            result.location = (
                str(local) if local is not None else f"{candidate.url.rstrip('/')}/{relative}"
            )
            with contextlib.suppress(ArtifactNotFoundError, OSError, ValueError):
                metadata = candidate.read_metadata(name, key)
                result.refused = persistable._added_later_refusal(metadata, key)
            return result
    keys = [other for other in store.list_dir(name) if other.startswith("k") and other != key]
    trees = _read_all(store, name, keys)
    candidates = [
        (other, tree) for other, tree in zip(keys, trees, strict=True) if tree is not None
    ]
    now = _leaves(_as_stored(persistable.lineage()))
    ranked = sorted(
        (_distance(_cached_leaves(other, tree), now), other, tree) for other, tree in candidates
    )
    # The listing shows folders: one being written or deleted (no metadata.json) is not
    # an artifact, so the nearest is the nearest committed one.
    result.compared = len(ranked)
    chosen: tuple[str, dict[str, Any], dict[str, Any]] | None = None
    for _, other, tree in ranked:
        try:
            chosen = other, tree, store.read_metadata(name, other)
        except ArtifactNotFoundError:
            result.compared -= 1
            continue
        except (OSError, ValueError):
            chosen = other, tree, {}  # committed, but its metadata.json is damaged
        break
    if chosen is None:
        return result  # nothing committed to compare with
    nearest, recorded, metadata = chosen
    result.nearest = nearest
    differences, follow = _compare(persistable, recorded)
    differences += _code_and_version(persistable, metadata)
    # Down the chain, without recursion: each upstream whose key changed is compared with
    # the artifact of its old key, and so on until a field or file that changed.
    while follow:
        member, old_key, parent = follow.pop()
        old_tree = _read_params(member.store, member.payload_name, old_key)
        if old_tree is None:
            parent.details.append(
                Difference(
                    "artifact",
                    old_key,
                    None,
                    f"(the artifact of the old key is not in {member.store.url!r})",
                )
            )
            continue
        found, deeper = _compare(member, old_tree)
        if not found:
            with contextlib.suppress(OSError, ValueError):
                found = _code_and_version(
                    member, member.store.read_metadata(member.payload_name, old_key)
                )
        parent.details.extend(found)
        follow.extend(deeper)
    result.differences = differences
    return result
