"""1.x's identity of a persistable: its params tree, md5 and file names, as 1.3.1 computes them.

1.3.1 names a payload ``<data_dir>/<payload_name>(<md5>)`` with the payload suffix
put on by ``Path.with_suffix`` (so a dot in the payload name cuts the name short, as it
did in 1.x), where the md5 is of ``str({payload_name: params_tree})`` and the tree is
1.x's ``to_dict()`` of the params merged with each tracked dependency's tree under its
payload name. ``str()`` of a value is its ``repr``: numpy arrays over 1,000 elements are
summarised with ``...`` (so 1.x gave different arrays one md5), and the text of floats
and numpy values follows the numpy and Python versions. Golden values in
``tests/test_v1_md5.py`` pin the result against 1.3.1's.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import md5
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persistable._v1._encodable import v1_to_dict

if TYPE_CHECKING:
    from persistable._persistable import Persistable

__all__ = [
    "V1Files",
    "V1ShapeError",
    "v1_file_name",
    "v1_files",
    "v1_md5",
    "v1_params_tree",
]

#: 1.x's default payload suffix.
V1_PAYLOAD_SUFFIX = ".persistable"


class V1ShapeError(ValueError):
    """The persistable has a shape 1.x could not express (dependencies given by role)."""


def v1_params_tree(persistable: Persistable[Any, Any]) -> dict[str, Any]:
    """1.x's ``params_tree``: ``to_dict()`` of the params, then each dependency's tree under its name."""
    roles = persistable._dependency_roles
    dependencies = persistable.tracked_persistable_dependencies
    for index, dependency in enumerate(dependencies):
        role, many = roles[index] if index < len(roles) else (dependency.payload_name, False)
        if many or role != dependency.payload_name:
            raise V1ShapeError(
                f"{type(persistable).__name__} tracks dependencies by role ({role!r}), which "
                "1.x could not express, so it has no 1.x file name."
            )
    tree = v1_to_dict(persistable.params)
    for dependency in dependencies:
        tree[dependency.payload_name] = v1_params_tree(dependency)
    return tree


def v1_md5(persistable: Persistable[Any, Any]) -> str:
    """1.x's ``persist_hash``: the md5 hex digest of ``str({payload_name: params_tree})``."""
    tree = {persistable.payload_name: v1_params_tree(persistable)}
    return md5(str(tree).encode()).hexdigest()


@dataclass(frozen=True)
class V1Files:
    """The files 1.x wrote for one payload: payload (one per candidate suffix), params, log."""

    md5: str
    payloads: tuple[Path, ...]
    params: Path
    log: Path


def v1_file_name(payload_name: str, digest: str, suffix: str) -> str:
    """1.x's file name ``Path(f"{payload_name}({digest})").with_suffix(suffix).name``."""
    return _with_suffix(f"{payload_name}({digest})", suffix)


def _with_suffix(name: str, suffix: str) -> str:
    """``Path(name).with_suffix(suffix).name`` without building paths (it runs on every miss)."""
    dot = name.rfind(".")
    return (name[:dot] if 0 < dot < len(name) - 1 else name) + suffix


def v1_files(
    persistable: Persistable[Any, Any],
    data_dir: Path,
    suffixes: tuple[str, ...],
    digest: str | None = None,
) -> V1Files:
    """Where 1.x kept the payload of ``persistable`` in ``data_dir``, for each payload suffix."""
    digest = v1_md5(persistable) if digest is None else digest
    stem = f"{persistable.payload_name}({digest})"
    return V1Files(
        md5=digest,
        payloads=tuple(data_dir / _with_suffix(stem, suffix) for suffix in suffixes),
        params=data_dir / _with_suffix(stem, ".params.json"),
        log=data_dir / f"{persistable.payload_name}.log",
    )
