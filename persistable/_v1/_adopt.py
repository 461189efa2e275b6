"""Adopting a 1.x cache: the 1.x file of the same params becomes an artifact, the 1.x files stay.

When a local store has no artifact for a key, :func:`adopt_v1_cache` looks for the
file 1.3.1 would have written for the same params (its name and md5, see
:mod:`persistable._v1._md5`). It adopts the file only when 1.x's ``.params.json`` beside
it holds exactly the params tree these params give (a 1.x md5 collision, or a params
file that cannot confirm them, is refused with a warning); it loads the file through
the persistable's FileIO, validates the payload, commits it as a new artifact whose
``metadata.json`` names the 1.x file under ``adopted_from``, and reads it back from the
new artifact. Nothing of the 1.x files is changed, moved or deleted.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persistable._v1._md5 import (
    V1_PAYLOAD_SUFFIX,
    V1Files,
    V1ShapeError,
    v1_file_name,
    v1_files,
    v1_md5,
    v1_params_tree,
)
from persistable.exceptions import PersistableWarning

if TYPE_CHECKING:
    from persistable._persistable import Persistable

__all__ = ["V1Refusal", "adopt_v1_cache", "check_v1_params", "find_v1_payload"]

logger = logging.getLogger(__name__)


class V1Refusal(Exception):
    """A 1.x file was found but cannot be adopted; the message says why."""


def _suffixes(persistable: Persistable[Any, Any]) -> tuple[str, ...]:
    own = persistable.payload_file_suffix
    return (V1_PAYLOAD_SUFFIX,) if own == V1_PAYLOAD_SUFFIX else (V1_PAYLOAD_SUFFIX, own)


#: Per folder: its (mtime_ns, inode) when listed, and per tuple of suffixes whether a
#: name in it ends with one of them. An unchanged folder without such a name holds no
#: 1.x file, and needs no md5 (the md5 of a deep chain nests every upstream params tree).
_listings: dict[str, tuple[tuple[int, int], list[str], dict[tuple[str, ...], bool]]] = {}
#: A folder changed this recently may change again within its mtime tick: not cached.
_RACY_SECONDS = 2.0


def _may_hold_v1_files(root: str, suffixes: tuple[str, ...]) -> bool:
    """Whether a name in the folder ``root`` ends with one of ``suffixes`` (as 1.x files do)."""
    try:
        info = os.stat(root)
    except OSError:
        return False
    stamp = (info.st_mtime_ns, info.st_ino)
    cached = _listings.get(root)
    if cached is None or cached[0] != stamp:
        try:
            names = os.listdir(root)
        except OSError:
            return False
        cached = (stamp, names, {})
        if time.time() - info.st_mtime_ns / 1e9 > _RACY_SECONDS:
            _listings[root] = cached
    answers = cached[2]
    if suffixes not in answers:
        # A 1.x name is longer than its suffix (the store's own ".persistable" folder is not).
        answers[suffixes] = any(
            name.endswith(suffixes) and name not in suffixes for name in cached[1]
        )
    return answers[suffixes]


def find_v1_payload(
    persistable: Persistable[Any, Any], data_dir: Path
) -> tuple[V1Files, Path] | None:
    """The 1.x files of ``persistable`` in ``data_dir`` and its existing payload file, else None."""
    root = os.fspath(data_dir)
    suffixes = _suffixes(persistable)
    if not _may_hold_v1_files(root, suffixes):
        return None  # no 1.x file of these suffixes at all: no md5 needed
    try:
        digest = v1_md5(persistable)
    except V1ShapeError:
        return None
    except Exception as error:  # e.g. slotted params without __dict__: 1.x could not save them
        logger.debug("No 1.x file name for %s: %s", persistable.payload_name, error)
        return None
    for suffix in suffixes:
        # A stat of a string path: this runs on every missing artifact of a local store.
        candidate = os.path.join(root, v1_file_name(persistable.payload_name, digest, suffix))
        if os.path.isfile(candidate):
            return v1_files(persistable, data_dir, suffixes, digest), Path(candidate)
    return None


def _first_difference(found: Any, expected: Any, path: str = "params") -> str:
    if isinstance(found, dict) and isinstance(expected, dict):
        for name in sorted(set(found) | set(expected), key=str):
            if name not in found:
                return f"{path}.{name} is missing from the file"
            if name not in expected:
                return f"{path}.{name} is in the file but not in these params"
            if found[name] != expected[name]:
                return _first_difference(found[name], expected[name], f"{path}.{name}")
    return f"{path} is {found!r:.80} in the file but {expected!r:.80} here"


def check_v1_params(persistable: Persistable[Any, Any], files: V1Files) -> None:
    """Raise :class:`V1Refusal` unless 1.x's params file holds exactly the current params tree."""
    where = files.params.name
    try:
        expected = json.loads(json.dumps(v1_params_tree(persistable)))
    except (TypeError, ValueError) as error:
        raise V1Refusal(
            f"these params are not JSON-able as 1.x encoded them ({error}), so {where} cannot "
            "confirm that the file was made from them"
        ) from error
    try:
        found = json.loads(files.params.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise V1Refusal(f"{where} is missing, so nothing confirms the file's params") from None
    except (OSError, ValueError) as error:
        raise V1Refusal(f"{where} cannot be read ({type(error).__name__}: {error})") from error
    if found != expected:
        raise V1Refusal(
            f"{where} disagrees with these params ({_first_difference(found, expected)}): "
            "a 1.x md5 collision (1.x summarised arrays over 1,000 elements before hashing)"
        )


def _load_v1_payload(persistable: Persistable[Any, Any], payload_file: Path) -> Any:
    file_io = persistable.payload_io
    if file_io.executes_code_on_load and not persistable.store.trusted:
        raise V1Refusal("the store is not trusted and the payload_io runs code from the file")
    try:
        payload = file_io.load_path(payload_file)
    except Exception as error:
        raise V1Refusal(
            f"{type(file_io).__name__} could not read it ({type(error).__name__}: {error})"
        ) from error
    try:
        persistable._validate_payload(payload)
    except Exception as error:
        raise V1Refusal(
            f"its payload failed validation ({type(error).__name__}: {error})"
        ) from error
    return payload


def _v1_log(files: V1Files, payload_file: Path) -> bytes:
    """The generation log of an adopted artifact: where it came from and 1.x's lines about it."""
    lines = [f"Adopted from the persistable 1.x file {payload_file.name} (md5 {files.md5}).\n"]
    try:
        with files.log.open(encoding="utf-8", errors="replace") as log:
            lines.extend(line for line in log if files.md5 in line)
    except OSError:
        pass
    return "".join(lines).encode("utf-8")


def adopt_v1_cache(persistable: Persistable[Any, Any], key: str) -> tuple[Any] | None:
    """Adopt the 1.x file of ``persistable`` as the artifact ``key``; the payload, or None.

    None when there is no 1.x file, or when it is refused (with a
    :class:`~persistable.exceptions.PersistableWarning` saying why, the file left in place).
    In a read-only store the checked payload is returned without committing anything.
    """
    store = persistable.store
    data_dir = store.local_path("")
    if data_dir is None:
        return None
    found = find_v1_payload(persistable, data_dir)
    if found is None:
        return None
    files, payload_file = found
    try:
        check_v1_params(persistable, files)
        payload = _load_v1_payload(persistable, payload_file)
    except V1Refusal as refusal:
        message = (
            f"Not adopting the persistable 1.x file {payload_file} for {persistable.payload_name}: "
            f"{refusal}; it is left in place and the payload is generated anew."
        )
        warnings.warn(message, PersistableWarning, stacklevel=4)
        persistable.logger.warning(message)
        return None
    if store.read_only:
        # A read-only (shared) 1.x folder: the checked file is used where it is.
        persistable.logger.info(
            "Loaded %s from the persistable 1.x file %s (read-only store: not adopted)",
            persistable.payload_name,
            payload_file.name,
        )
        return (payload,)
    import datetime as _dt  # here: `import persistable` does not import datetime

    stat = payload_file.stat()
    origin = {
        "format": "persistable 1.x",
        "payload_file": payload_file.name,
        "params_file": files.params.name,
        "md5": files.md5,
        "size": stat.st_size,
        "modified_utc": _dt.datetime.fromtimestamp(stat.st_mtime, _dt.timezone.utc).isoformat(),
    }
    persistable._set_payload(payload)
    persistable._persist(key, None, _v1_log(files, payload_file), {"adopted_from": origin})
    persistable.logger.info(
        "Adopted the persistable 1.x file %s as %s key %s",
        payload_file.name,
        persistable.payload_name,
        key,
    )
    # Read back from the new artifact: what is returned is what was committed.
    return (persistable._read_payload(key, verify=False),)
