"""FileIOs by name: the name ``metadata.json`` records is enough to load an artifact again.

Every FileIO class has a stable :attr:`~persistable.io.FileIO.name`. The registry maps
that name to a way of building the FileIO with its default arguments: the class itself,
a factory, or a ``"module:attribute"`` string imported on first use (so registering a
FileIO that needs pandas or zarr costs nothing until an artifact needs it). Packages
outside persistable register theirs through the ``persistable.file_io`` entry point
group (``name = "module:Class"``), loaded the first time a name is not found.

A module of ``persistable/io/`` registers its FileIO where it is defined::

    @register_file_io
    class PngFileIO(FileIO[NDArray[Any]]):
        name = "png"
        ...

or, to keep a heavy module unimported, in :data:`_BUILTIN` below by dotted path.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

from persistable.exceptions import UnknownFileIOError
from persistable.io._base import FileIO

__all__ = [
    "ENTRY_POINT_GROUP",
    "file_io_for",
    "file_io_names",
    "register_file_io",
]

#: The entry point group other packages use to register FileIOs by name.
ENTRY_POINT_GROUP = "persistable.file_io"

Factory = Callable[[], FileIO[Any]]
FileIOClass = TypeVar("FileIOClass", bound=type[FileIO[Any]])

#: FileIOs of this package, by name; imported only when an artifact needs one.
_BUILTIN: dict[str, str] = {
    "pickle": "persistable.io._builtin:PickleFileIO",
    "json": "persistable.io._builtin:JsonFileIO",
    "npy": "persistable.io._builtin:NpyFileIO",
    "npz": "persistable.io._builtin:NpzFileIO",
    "text": "persistable.io._builtin:TextFileIO",
    "bytes": "persistable.io._builtin:BytesFileIO",
    "csv": "persistable.io._csv:CsvFileIO",
    "hdf5": "persistable.io._hdf5:Hdf5FileIO",
    "image": "persistable.io._image:ImageFileIO",
    "png": "persistable.io._image:PngFileIO",
    "jpeg": "persistable.io._image:JpegFileIO",
    "parquet": "persistable.io._parquet:ParquetFileIO",
    "ome-tiff": "persistable.io._tiff:OmeTiffFileIO",
    "zarr": "persistable.io._zarr:ZarrFileIO",
    "directory": "persistable.io._directory:DirectoryFileIO",
    "manifest": "persistable.datasets._manifest:ManifestFileIO",
    # FileIOs of other subpackages, so that their artifacts load from the store alone.
    "command-zip": "persistable.steps._command:CommandArchiveIO",
    "h5file": "persistable.flow._artifact:H5FileIO",
}

_registry: dict[str, Factory | str] = dict(_BUILTIN)
_entry_points_loaded = False
_lock = threading.Lock()


@overload
def register_file_io(target: FileIOClass, /) -> FileIOClass: ...


@overload
def register_file_io(
    target: str, factory: Factory | type[FileIO[Any]] | str, /, *, replace: bool = False
) -> None: ...


def register_file_io(target: Any, factory: Any = None, /, *, replace: bool = False) -> Any:
    """Register a FileIO under its name, so artifacts it wrote load without it being passed.

    Use it as a class decorator (the class's ``name`` is the key), or call it as
    ``register_file_io("png", PngFileIO)`` / ``register_file_io("png", "pkg.mod:PngFileIO")``.

    Raises
    ------
    ValueError
        The name is already registered to something else (pass ``replace=True`` on purpose).
    """
    if factory is None:
        if not (isinstance(target, type) and issubclass(target, FileIO)):
            raise TypeError(
                f"register_file_io() as a decorator takes a FileIO subclass (got {target!r}); "
                "call register_file_io(name, factory) otherwise."
            )
        _add(target.name, target, replace=replace)
        return target
    if not isinstance(target, str) or not target:
        raise TypeError(f"A FileIO name must be a non-empty str (got {target!r}).")
    _add(target, factory, replace=replace)
    return None


def _add(name: str, factory: Factory | str, *, replace: bool) -> None:
    with _lock:
        existing = _registry.get(name)
        if (
            existing is not None
            and existing != factory
            and not replace
            and not _same(existing, factory)
        ):
            raise ValueError(
                f"The FileIO name {name!r} is already registered ({_describe(existing)}); "
                "pick another name, or pass replace=True to override it on purpose."
            )
        _registry[name] = factory


def _same(existing: Factory | str, new: Factory | str) -> bool:
    # A class registered by decorator where the table already names it by dotted path.
    if isinstance(existing, str) and isinstance(new, type):
        return existing == f"{new.__module__}:{new.__qualname__}"
    return False


def _describe(factory: Factory | str) -> str:
    if isinstance(factory, str):
        return factory
    return f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', factory)!s}"


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    from importlib.metadata import entry_points

    with _lock:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            _registry.setdefault(entry.name, entry.value)
        _entry_points_loaded = True


def _resolve(spec: str, name: str) -> Factory:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        found: Any = module
        for part in attribute.split("."):
            found = getattr(found, part)
    except ImportError as error:
        raise UnknownFileIOError(
            f"The FileIO {name!r} needs {module_name!r}, which cannot be imported here "
            f"({error}); install the package that provides it."
        ) from error
    except AttributeError as error:
        raise UnknownFileIOError(
            f"The FileIO {name!r} is registered as {spec!r}, which does not exist ({error})."
        ) from error
    return found  # type: ignore[no-any-return]


def file_io_for(name: str) -> FileIO[Any]:
    """A FileIO instance (default arguments) for the name recorded in ``metadata.json``.

    Raises
    ------
    UnknownFileIOError
        No FileIO of that name is registered, or its module cannot be imported here.
    """
    factory = _registry.get(name)
    if factory is None:
        _load_entry_points()
        factory = _registry.get(name)
    if factory is None:
        raise UnknownFileIOError(
            f"No FileIO named {name!r} is registered here (known: {', '.join(file_io_names())}); "
            "import or install the package that defines it, or pass that FileIO as payload_io."
        )
    if isinstance(factory, str):
        factory = _resolve(factory, name)
    file_io = factory()
    if not isinstance(file_io, FileIO):
        raise UnknownFileIOError(
            f"The FileIO registered as {name!r} built {file_io!r}, which is not a FileIO."
        )
    return file_io


def file_io_names() -> list[str]:
    """The registered FileIO names, sorted."""
    _load_entry_points()
    return sorted(_registry)
