"""The Store contract: where artifacts live, and how one is committed atomically.

A store holds files under relative POSIX paths. Artifacts are laid out the same in
every store::

    <root>/<payload_name>/<key>/payload.<ext>
                               /params.json
                               /generation.log     # only a log over 2 KiB; a shorter one
                                                   # is a field of metadata.json
                               /metadata.json      # written last: the commit marker
    <root>/.persistable/                            # staging, locks, quarantine

A directory without ``metadata.json`` is not an artifact.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from persistable._ids import random_hex
from persistable.exceptions import ArtifactNotFoundError, CorruptArtifactError, ReadOnlyStoreError

__all__ = [
    "INTERNAL_DIR",
    "METADATA_FILE",
    "Store",
    "Transaction",
]

#: The commit marker of an artifact.
METADATA_FILE = "metadata.json"
#: Reserved top-level folder of a store (staging area, locks, quarantine).
INTERNAL_DIR = ".persistable"


class Transaction(ABC):
    """The files of one artifact being written; nothing is visible before :meth:`commit`."""

    def __init__(self, store: Store, artifact_dir: str, *, replace: bool = False) -> None:
        self.store = store
        self.artifact_dir = artifact_dir
        #: Whether :meth:`commit` replaces a committed artifact instead of keeping it.
        self.replace = replace
        #: The folder inside the artifact folder that receives the files when they cannot
        #: be written at their names before the commit (a replace on an object store);
        #: the store adds it to ``metadata.json`` as ``files_folder`` when committing.
        self.files_folder: str | None = None

    @abstractmethod
    def open_write(self, name: str) -> IO[bytes]:
        """A binary stream to write the file ``name`` of the artifact; close it when done."""

    def local_path(self, name: str) -> Path | None:
        """A local path where the file ``name`` may be written directly, or None (stream it)."""
        return None

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write a whole small file of the artifact."""
        with self.open_write(name) as stream:
            stream.write(data)

    @abstractmethod
    def commit(self, metadata: bytes) -> bool:
        """Write ``metadata.json`` last and make the artifact visible at once.

        Returns False, and discards this copy, when another writer committed the same
        artifact first (the first committer wins), unless the transaction was begun with
        ``replace=True``: then the committed artifact is replaced (the caller holds the
        key's lock).
        """

    @abstractmethod
    def abort(self) -> None:
        """Discard everything written so far; safe to call more than once."""

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.abort()


class Store(ABC):
    """Where artifacts live: a local folder, an fsspec URL, or memory.

    Subclasses implement a handful of primitives on relative POSIX paths; the
    artifact-level helpers below are shared.
    """

    #: Set on stores opened read-only; writes raise :class:`ReadOnlyStoreError`.
    read_only: bool = False
    #: Whether pickle payloads from this store may be unpickled (see docs/security.md).
    trusted: bool = True

    @property
    @abstractmethod
    def url(self) -> str:
        """The store's location as a user would type it (path or URL)."""

    # -- primitives -------------------------------------------------------------

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Whether the file ``path`` exists."""

    @abstractmethod
    def open_read(self, path: str) -> IO[bytes]:
        """Open the file ``path`` for binary reading; :class:`FileNotFoundError` if absent."""

    @abstractmethod
    def size(self, path: str) -> int:
        """Size in bytes of the file ``path``; :class:`FileNotFoundError` if absent."""

    @abstractmethod
    def list_dir(self, path: str) -> list[str]:
        """Names of the immediate children of the folder ``path`` (empty if absent)."""

    @abstractmethod
    def begin(self, artifact_dir: str, *, replace: bool = False) -> Transaction:
        """Start writing the artifact folder ``artifact_dir`` (``replace``: see :meth:`Transaction.commit`)."""

    @abstractmethod
    def move_dir(self, src: str, dst: str) -> None:
        """Move the folder ``src`` to ``dst`` (used for quarantine, never to overwrite)."""

    @abstractmethod
    def remove_dir(self, path: str) -> None:
        """Remove the folder ``path`` and its files (staging clean-up and explicit gc only)."""

    def quarantine_dir(self, artifact_dir: str) -> str:
        """Move an artifact folder aside into ``.persistable/quarantine/``; returns where it went.

        Nothing is deleted: the damaged files stay there for inspection.
        """
        destination = f"{INTERNAL_DIR}/quarantine/{artifact_dir}.{random_hex(4)}"
        self.move_dir(artifact_dir, destination)
        return destination

    def delete_artifact(self, payload_name: str, key: str) -> bool:
        """Remove an artifact folder, ``metadata.json`` first; False if it held no artifact.

        Callers hold the key's lock (:meth:`persistable.artifact.Artifact.delete`).
        """
        self.check_writable()
        existed = self.has_artifact(payload_name, key)
        self.remove_dir(self.artifact_dir(payload_name, key))
        return existed

    def local_path(self, path: str) -> Path | None:
        """A local filesystem path for ``path`` when the store is on local disk, else None."""
        return None

    # -- shared helpers ---------------------------------------------------------

    def read_bytes(self, path: str) -> bytes:
        """The whole content of the file ``path``."""
        with self.open_read(path) as stream:
            return stream.read()

    def check_writable(self) -> None:
        """Raise :class:`ReadOnlyStoreError` before any work if this store cannot be written."""
        if self.read_only:
            raise ReadOnlyStoreError(
                f"The store {self.url!r} is read-only; generate into a writable data_dir "
                "and keep this one as a fallback store."
            )

    @staticmethod
    def artifact_dir(payload_name: str, key: str) -> str:
        """The folder of an artifact inside the store."""
        return f"{payload_name}/{key}"

    def has_artifact(self, payload_name: str, key: str) -> bool:
        """Whether a committed artifact exists (its ``metadata.json`` is there)."""
        return self.exists(f"{payload_name}/{key}/{METADATA_FILE}")

    def read_metadata(self, payload_name: str, key: str) -> dict[str, Any]:
        """The parsed ``metadata.json`` of a committed artifact."""
        path = f"{payload_name}/{key}/{METADATA_FILE}"
        try:
            raw = self.read_bytes(path)
        except FileNotFoundError as error:
            raise ArtifactNotFoundError(
                f"No artifact {payload_name!r} with key {key} in {self.url!r}; "
                "generate it first (generate() or load_generate())."
            ) from error
        try:
            metadata = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CorruptArtifactError(
                f"{self.url}/{path} is not valid JSON ({error}); the artifact is damaged."
            ) from error
        if not isinstance(metadata, dict):
            raise CorruptArtifactError(
                f"{self.url}/{path} holds a {type(metadata).__name__}, expected a JSON object."
            )
        return metadata

    def list_payload_names(self) -> list[str]:
        """Payload names that have a folder in the store."""
        return sorted(name for name in self.list_dir("") if not name.startswith("."))

    def list_keys(self, payload_name: str) -> list[str]:
        """Keys of the committed artifacts of ``payload_name``."""
        return sorted(
            key for key in self.list_dir(payload_name) if self.has_artifact(payload_name, key)
        )

    def iter_artifacts(self) -> Iterator[tuple[str, str]]:
        """Every committed artifact as ``(payload_name, key)``."""
        for payload_name in self.list_payload_names():
            for key in self.list_keys(payload_name):
                yield payload_name, key

    @contextlib.contextmanager
    def lock(self, payload_name: str, key: str, timeout: float | None = None) -> Iterator[None]:
        """Hold the per-key generation lock; the base store has none (single writer)."""
        yield

    def __repr__(self) -> str:
        flags = ", read_only=True" if self.read_only else ""
        return f"{type(self).__name__}({self.url!r}{flags})"
