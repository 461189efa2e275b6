"""``migrate_v1``: what of a 1.x cache folder can be adopted, and adopting it on request.

1.x kept only a payload's params tree beside it, not its class. Given the persistable
classes of the user's code, each 1.x file is matched to a class by payload name, its
params are rebuilt from the ``.params.json`` (typed by the params dataclass's field
annotations), and the rebuilt persistable must give the file's md5 again: only then is
it adoptable. A file whose tree holds dependencies is rebuilt only when every dependency
can be rebuilt and the class takes ``(data_dir, params, tracked_persistable_dependencies)``;
otherwise it is listed with the reason, never guessed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import typing
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal

from persistable._persistable import Persistable, _camel_to_snake
from persistable._v1._adopt import V1Refusal, adopt_v1_cache, check_v1_params, find_v1_payload
from persistable._v1._md5 import V1ShapeError, v1_md5
from persistable.params import PersistableParams

__all__ = ["V1Entry", "V1MigrationReport", "migrate_v1"]

Status = Literal["adopted", "adoptable", "already adopted", "not adoptable"]

_PARAMS_FILE = re.compile(r"(?P<name>.+)\((?P<md5>[0-9a-f]{32})\)\.params\.json")


@dataclass
class V1Entry:
    """One 1.x payload file of the folder and what migrating it does (or would do)."""

    payload_name: str
    md5: str
    params_file: str
    status: Status
    reason: str = ""
    key: str | None = None


@dataclass
class V1MigrationReport:
    """The 1.x files of a folder, by status; ``str()`` is a table for people."""

    data_dir: str
    entries: list[V1Entry] = field(default_factory=list)

    def with_status(self, status: Status) -> list[V1Entry]:
        """The entries of one status."""
        return [entry for entry in self.entries if entry.status == status]

    def __str__(self) -> str:
        lines = [f"persistable 1.x files in {self.data_dir}: {len(self.entries)}"]
        for status in ("adopted", "adoptable", "already adopted", "not adoptable"):
            entries = [entry for entry in self.entries if entry.status == status]
            if entries:
                lines.append(f"{status} ({len(entries)}):")
                for entry in entries:
                    detail = entry.reason or (entry.key or "")
                    lines.append(f"  {entry.payload_name}({entry.md5})  {detail}".rstrip())
        return "\n".join(lines)


class _Unbuildable(Exception):
    """A persistable cannot be rebuilt from a 1.x params tree; the message says why."""


def _params_class(cls: type[Persistable[Any, Any]]) -> type[PersistableParams]:
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            if typing.get_origin(base) is Persistable:
                args = typing.get_args(base)
                if (
                    len(args) == 2
                    and isinstance(args[1], type)
                    and issubclass(args[1], PersistableParams)
                ):
                    return args[1]
    raise _Unbuildable(
        f"{cls.__name__} does not name its params class (subclass Persistable[Payload, Params])"
    )


def _convert(value: Any, hint: Any, where: str) -> Any:
    """A JSON value back as the annotated type (what 1.x's to_dict turned into str/name/dict)."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if value is None or len(options) != 1:
            return value
        hint = options[0]
        origin = typing.get_origin(hint)
    if isinstance(hint, type):
        if issubclass(hint, PurePath) and isinstance(value, str):
            return hint(value)
        if issubclass(hint, enum.Enum) and isinstance(value, str):
            try:
                return hint[value]
            except KeyError:
                raise _Unbuildable(
                    f"{where}: {value!r} is not a member of {hint.__name__}"
                ) from None
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            return _build_params(hint, value, where)
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(item, args[0], where) for item in value)
        if len(args) == len(value):
            return tuple(_convert(item, arg, where) for item, arg in zip(value, args, strict=True))
        return tuple(value)
    if origin is list and isinstance(value, list):
        (arg,) = typing.get_args(hint) or (Any,)
        return [_convert(item, arg, where) for item in value]
    return value


def _build_params(cls: type[Any], tree: dict[str, Any], where: str) -> Any:
    try:
        hints = typing.get_type_hints(cls)
    except Exception as error:
        raise _Unbuildable(
            f"the annotations of {cls.__name__} cannot be resolved ({error})"
        ) from None
    values = {}
    for item in dataclasses.fields(cls):
        if item.name in tree:
            values[item.name] = _convert(tree[item.name], hints.get(item.name, Any), where)
    try:
        return cls(**values)
    except Exception as error:
        raise _Unbuildable(
            f"{cls.__name__} cannot be built from {where} ({type(error).__name__}: {error})"
        ) from None


def _build(
    cls: type[Persistable[Any, Any]],
    tree: dict[str, Any],
    classes: Mapping[str, type[Persistable[Any, Any]]],
    data_dir: Path,
    where: str,
) -> Persistable[Any, Any]:
    params_class = _params_class(cls)
    names = {item.name for item in dataclasses.fields(params_class)}  # type: ignore[arg-type]
    own = {name: value for name, value in tree.items() if name in names}
    upstream = {name: value for name, value in tree.items() if name not in names}
    dependencies = []
    for name, subtree in upstream.items():
        dependency_class = classes.get(name)
        if dependency_class is None or not isinstance(subtree, dict):
            raise _Unbuildable(
                f"it depends on {name!r}, whose class is not among the given classes"
                if isinstance(subtree, dict)
                else f"{where} holds {name!r}, which is no field of {params_class.__name__}"
            )
        dependencies.append(_build(dependency_class, subtree, classes, data_dir, f"{where}.{name}"))
    params = _build_params(params_class, own, where)
    try:
        if dependencies:
            return cls(data_dir, params, dependencies)
        return cls(data_dir, params)
    except Exception as error:
        reason = f"{cls.__name__}(data_dir, params"
        reason += ", [dependencies])" if dependencies else ")"
        raise _Unbuildable(
            f"{reason} failed ({type(error).__name__}: {error}); 1.x kept only the params "
            "of its dependencies, so load it once from your own code instead, which adopts it"
        ) from None


def _class_map(
    classes: Mapping[str, type[Persistable[Any, Any]]] | Iterable[type[Persistable[Any, Any]]],
) -> dict[str, type[Persistable[Any, Any]]]:
    if isinstance(classes, Mapping):
        return dict(classes)
    return {_camel_to_snake(cls.__name__): cls for cls in classes}


def migrate_v1(
    data_dir: str | Path,
    classes: Mapping[str, type[Persistable[Any, Any]]] | Iterable[type[Persistable[Any, Any]]],
    *,
    adopt: bool = False,
) -> V1MigrationReport:
    """Report which 1.x files of ``data_dir`` can be adopted, and adopt them when ``adopt``.

    Parameters
    ----------
    data_dir
        A local folder holding a persistable 1.x cache.
    classes
        The persistable classes of the code that made the cache, by payload name, or an
        iterable of classes (each under its default, snake_case payload name).
    adopt
        Commit every adoptable file as an artifact (the 1.x files stay untouched).
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise NotADirectoryError(
            f"migrate_v1 expected a local folder holding a persistable 1.x cache, but "
            f"{str(folder)!r} is not a folder; pass the data_dir the 1.x code used."
        )
    known = _class_map(classes)
    report = V1MigrationReport(str(folder))
    for params_file in sorted(folder.glob("*).params.json")):
        match = _PARAMS_FILE.fullmatch(params_file.name)
        if match is None:
            continue
        name, digest = match["name"], match["md5"]
        entry = V1Entry(name, digest, params_file.name, "not adoptable")
        report.entries.append(entry)
        cls = known.get(name)
        if cls is None:
            entry.reason = "no class given for this payload name"
            continue
        try:
            tree = json.loads(params_file.read_text(encoding="utf-8"))
            if not isinstance(tree, dict):
                raise _Unbuildable(f"{params_file.name} holds no JSON object")
            persistable = _build(cls, tree, known, folder, params_file.name)
            if v1_md5(persistable) != digest:
                raise _Unbuildable(
                    f"the params rebuilt from {params_file.name} give the 1.x md5 "
                    f"{v1_md5(persistable)}, not the file's (a type the JSON cannot tell, or "
                    "a changed params class)"
                )
            if persistable.payload_name != name:
                raise _Unbuildable(f"{cls.__name__} names its payload {persistable.payload_name!r}")
        except (_Unbuildable, V1ShapeError) as error:
            entry.reason = str(error)
            continue
        except ValueError as error:  # unreadable JSON
            entry.reason = f"{params_file.name} cannot be read ({error})"
            continue
        entry.key = persistable.key
        if persistable.exists():
            entry.status = "already adopted"
            continue
        found = find_v1_payload(persistable, folder)
        if found is None:
            entry.reason = "its payload file is missing"
            continue
        if not adopt:
            try:
                check_v1_params(persistable, found[0])
            except V1Refusal as refusal:
                entry.reason = str(refusal)
                continue
            entry.status = "adoptable"
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            adopted = adopt_v1_cache(persistable, entry.key)
        if adopted is None:
            entry.reason = "; ".join(str(warning.message) for warning in caught) or "refused"
            continue
        entry.status = "adopted"
    return report
