"""The public surface: pinned names, the error tree, and what ``import persistable`` pulls in."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

import persistable
import persistable.exceptions as exceptions

#: Changing this list changes the public API: update it on purpose, with the docs.
EXPECTED_ALL = [
    "BytesFileIO",
    "DatasetPersistable",
    "Directory",
    "File",
    "FileIO",
    "JsonFileIO",
    "LocalStore",
    "MemoryStore",
    "NpyFileIO",
    "NpzFileIO",
    "Persistable",
    "PersistableParams",
    "PickleFileIO",
    "RunReport",
    "Store",
    "SyncReport",
    "TextFileIO",
    "__version__",
    "added_later",
    "checkout",
    "grid",
    "make_store",
    "publish",
    "run",
    "step",
    "sync",
    "untracked",
]

EXPECTED_EXCEPTIONS = [
    "AmbiguousArtifactError",
    "ArtifactNotFoundError",
    "CodeChangedWarning",
    "CorruptArtifactError",
    "DependencyError",
    "ExplainedNotImplementedError",
    "ForeignArtifactWarning",
    "InputFileError",
    "InvalidParamsError",
    "InvalidPayloadError",
    "InvalidPayloadNameError",
    "InvalidPayloadWarning",
    "InvalidSampleError",
    "KeyMismatchError",
    "LockTimeoutError",
    "ManifestError",
    "MapError",
    "MissingDependencyError",
    "MissingPayloadClassError",
    "NoPayloadError",
    "PackageNotFoundError",
    "PayloadError",
    "PayloadLoadError",
    "PayloadSerializationError",
    "PersistableDefinitionError",
    "PersistableError",
    "PersistableWarning",
    "ProcessingError",
    "PublishError",
    "QuarantineWarning",
    "ReadOnlyStoreError",
    "RunError",
    "RunInterrupted",
    "StoreAccessDeniedError",
    "StoreConfigurationError",
    "StoreError",
    "UnhashableParamError",
    "UnknownFileIOError",
    "UnreadableCodeWarning",
    "UnsupportedSchemeError",
    "UntrustedPayloadError",
]


def test_all_is_pinned_and_sorted() -> None:
    """persistable.__all__ is exactly the pinned, sorted list."""
    assert persistable.__all__ == EXPECTED_ALL
    assert sorted(persistable.__all__) == persistable.__all__


def test_every_exported_name_exists() -> None:
    """Every name in __all__ is an attribute of the package."""
    for name in persistable.__all__:
        assert hasattr(persistable, name), name


def test_exceptions_all_is_pinned_and_complete() -> None:
    """persistable.exceptions.__all__ is the pinned sorted list and names every exception class of the module."""
    assert exceptions.__all__ == EXPECTED_EXCEPTIONS
    defined = sorted(
        name
        for name, value in vars(exceptions).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == exceptions.__name__
    )
    assert defined == EXPECTED_EXCEPTIONS


def test_seed_import_of_invalid_payload_error_works() -> None:
    """``from persistable.exceptions import InvalidPayloadError`` works as in the seed README."""
    from persistable.exceptions import InvalidPayloadError

    assert issubclass(InvalidPayloadError, exceptions.PersistableError)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        ("ArtifactNotFoundError", FileNotFoundError),
        ("InvalidPayloadError", ValueError),
        ("PayloadSerializationError", TypeError),
        ("UnhashableParamError", TypeError),
        ("InvalidParamsError", TypeError),
        ("InvalidPayloadNameError", ValueError),
        ("DependencyError", ValueError),
        ("CorruptArtifactError", OSError),
        ("StoreError", OSError),
        ("ReadOnlyStoreError", PermissionError),
        ("MissingDependencyError", ImportError),
        ("LockTimeoutError", TimeoutError),
        ("ExplainedNotImplementedError", NotImplementedError),
        ("KeyMismatchError", RuntimeError),
        ("RunError", RuntimeError),
        ("StoreAccessDeniedError", PermissionError),
        ("UntrustedPayloadError", PermissionError),
        ("InvalidSampleError", ValueError),
        ("ProcessingError", RuntimeError),
        ("MapError", RuntimeError),
        ("ManifestError", ValueError),
        ("PublishError", RuntimeError),
        ("PackageNotFoundError", FileNotFoundError),
    ],
)
def test_errors_subclass_the_builtin_they_resemble(
    error: str, builtin: type[BaseException]
) -> None:
    """Each error derives from PersistableError and from the builtin that existing except clauses catch."""
    cls = getattr(exceptions, error)
    assert issubclass(cls, exceptions.PersistableError)
    assert issubclass(cls, builtin)


def test_run_interrupted_is_a_keyboard_interrupt_not_an_exception() -> None:
    """RunInterrupted stays a KeyboardInterrupt, so `except Exception` in user code does not swallow Ctrl-C."""
    assert issubclass(exceptions.RunInterrupted, KeyboardInterrupt)
    assert not issubclass(exceptions.RunInterrupted, Exception)


def test_payload_errors_share_a_parent() -> None:
    """NoPayloadError, InvalidPayloadError and PayloadSerializationError are PayloadErrors."""
    for name in ("NoPayloadError", "InvalidPayloadError", "PayloadSerializationError"):
        assert issubclass(getattr(exceptions, name), exceptions.PayloadError)


def test_warnings_are_user_warnings_under_one_root() -> None:
    """InvalidPayloadWarning and QuarantineWarning are PersistableWarnings, which are UserWarnings."""
    assert issubclass(exceptions.PersistableWarning, UserWarning)
    for name in ("InvalidPayloadWarning", "QuarantineWarning"):
        assert issubclass(getattr(exceptions, name), exceptions.PersistableWarning)
    assert not issubclass(exceptions.PersistableWarning, exceptions.PersistableError)


def test_every_exception_has_a_docstring_and_is_in_the_tree() -> None:
    """Each exception class has its own docstring and appears in the module docstring's tree."""
    tree = exceptions.__doc__ or ""
    for name in EXPECTED_EXCEPTIONS:
        cls = getattr(exceptions, name)
        assert cls.__doc__, name
        assert cls.__doc__ is not cls.__mro__[1].__doc__, name
        if name != "ExplainedNotImplementedError":
            assert name in tree, name


def test_public_classes_have_docstrings() -> None:
    """Every exported class and function has a docstring."""
    for name in persistable.__all__:
        value = getattr(persistable, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name


def test_import_does_not_pull_in_heavy_dependencies() -> None:
    """``import persistable`` imports none of the optional heavy dependencies nor test tools."""
    heavy = [
        "s3fs",
        "fsspec",
        "dask",
        "distributed",
        "tqdm",
        "pandas",
        "pyarrow",
        "boto3",
        "hypothesis",
        "pytest",
        "pydantic",
        "cloudpickle",
        "zarr",
        "tifffile",
        "h5py",
        "PIL",
    ]
    script = f"import json, sys, persistable; print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(completed.stdout) == []


def test_version_is_a_string() -> None:
    """__version__ is a non-empty PEP 440-looking string."""
    assert isinstance(persistable.__version__, str)
    assert persistable.__version__[0].isdigit()
