"""``Artifact``: one committed artifact of a store, by payload name and key.

Everything that reads, checks, copies, sets aside or removes an artifact goes through
this handle, so ``Persistable``, ``sync``, the runner and the command line apply the
same checks: the files listed in ``metadata.json`` are plain names inside the folder,
a payload's size is checked on every load and its checksum on every download (and on
local loads with ``verify=True``), and damage is what the checksums prove.
"""

from __future__ import annotations

import functools
import io
import json
import logging
from pathlib import Path
from typing import IO, Any, cast

from persistable._artifact import (
    FILES_FOLDER_SCHEME,
    GENERATION_LOG_FIELD,
    GENERATION_LOG_FILE,
    PARAMS_FILE,
    HashingReader,
    check_file,
    is_artifact_file_path,
    is_files_folder,
    is_plain_file_name,
)
from persistable._hashing import hash_stream
from persistable.exceptions import (
    ArtifactNotFoundError,
    CorruptArtifactError,
    PayloadLoadError,
    UnknownFileIOError,
    UnsupportedSchemeError,
    UntrustedPayloadError,
)
from persistable.io._base import FileIO
from persistable.io._folder import FolderFileIO
from persistable.store._base import METADATA_FILE, Store
from persistable.store._local import LocalStore

__all__ = ["Artifact"]

logger = logging.getLogger(__name__)

#: Local payload files up to this size are read whole into memory and loaded from there.
_READ_WHOLE = 1 << 20


def _reads_streams(reader: FileIO[Any]) -> bool:
    """Whether the FileIO loads a local file as a stream (it keeps FileIO's ``load_path``).

    Those that override it (memory-mapped ``.npy``) or read paths (1.x) get the path.
    """
    return not reader.path_based and type(reader).load_path is FileIO.load_path


class Artifact:
    """One artifact of a store: ``<store>/<payload_name>/<key>/``.

    A handle is cheap and does no I/O when built; :attr:`metadata` is read once and kept.

    Parameters
    ----------
    store
        The store holding the artifact.
    payload_name, key
        Which artifact.
    """

    def __init__(self, store: Store, payload_name: str, key: str) -> None:
        self.store = store
        self.payload_name = payload_name
        self.key = key
        self._metadata: dict[str, Any] | None = None

    # -- where --------------------------------------------------------------------

    @property
    def dir(self) -> str:
        """The artifact's folder relative to the store root."""
        return self.store.artifact_dir(self.payload_name, self.key)

    @property
    def ref(self) -> str:
        """``payload_name/key``: how the command line names it."""
        return f"{self.payload_name}/{self.key}"

    @property
    def location(self) -> Path | str:
        """A local ``Path`` on local stores, else the URL of the folder."""
        local = self.store.local_path(self.dir)
        return local if local is not None else f"{self.store.url.rstrip('/')}/{self.dir}"

    def exists(self) -> bool:
        """Whether the artifact is committed (its ``metadata.json`` is there)."""
        return self.store.has_artifact(self.payload_name, self.key)

    # -- records --------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        """The parsed ``metadata.json`` (read on first use).

        Raises
        ------
        ArtifactNotFoundError
            The artifact is not committed.
        CorruptArtifactError
            ``metadata.json`` is not a JSON object.
        UnsupportedSchemeError
            It was written by a newer persistable.
        """
        if self._metadata is None:
            metadata = self.store.read_metadata(self.payload_name, self.key)
            scheme = metadata.get("metadata_scheme")
            if not isinstance(scheme, int) or scheme > FILES_FOLDER_SCHEME:
                raise UnsupportedSchemeError(
                    f"metadata.json of {self.payload_name} key {self.key} in {self.store.url!r} "
                    f"has metadata_scheme {scheme!r}, this persistable reads up to "
                    f"{FILES_FOLDER_SCHEME}; upgrade persistable to load it."
                )
            folder = metadata.get("files_folder")
            if folder is not None and not is_files_folder(folder):
                raise CorruptArtifactError(
                    f"metadata.json of {self.store.url}/{self.dir} names the files folder "
                    f"{folder!r}, which is not one a replace makes; the artifact is damaged."
                )
            self._metadata = metadata
        return self._metadata

    @property
    def files_dir(self) -> str:
        """The folder holding the listed files, relative to the store root.

        The artifact's folder, or inside it the folder ``metadata.json`` names as
        ``files_folder`` (an artifact replaced on an object store, see
        :class:`~persistable.store.FsspecStore`).
        """
        folder = self.metadata.get("files_folder")
        return f"{self.dir}/{folder}" if folder else self.dir

    def path(self, name: str) -> str:
        """Where the listed file ``name`` is, relative to the store root."""
        return f"{self.files_dir}/{name}"

    def refresh(self) -> None:
        """Forget the metadata read so far (the artifact may have been replaced)."""
        self._metadata = None

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """Size and checksum of every file, by path inside the folder, as ``metadata.json`` lists them.

        A folder payload (``payload.zarr``) lists each of its files (``payload.zarr/c/0/0``).
        """
        files = self.metadata.get("files")
        if not isinstance(files, dict):
            raise CorruptArtifactError(
                f"metadata.json of {self.store.url}/{self.dir} lists no files; the artifact is damaged."
            )
        for name, record in files.items():
            if not is_artifact_file_path(name) or name == METADATA_FILE:
                raise CorruptArtifactError(
                    f"metadata.json of {self.store.url}/{self.dir} lists the file {name!r}, "
                    "which is not a path inside the artifact."
                )
            if not isinstance(record, dict) or not isinstance(record.get("size"), int):
                raise CorruptArtifactError(
                    f"metadata.json of {self.store.url}/{self.dir} lists no size for {name!r}."
                )
        return cast("dict[str, dict[str, Any]]", files)

    @property
    def size(self) -> int:
        """Bytes of the artifact's files (``metadata.json`` not counted)."""
        return sum(int(record["size"]) for record in self.files.values())

    @property
    def payload_file(self) -> str:
        """The name of the payload file inside the folder."""
        name = self.metadata.get("payload_file")
        if not is_plain_file_name(name):
            raise CorruptArtifactError(
                f"metadata.json of {self.payload_name} key {self.key} in {self.store.url!r} names "
                f"the payload file {name!r}, which is not a plain file name."
            )
        return cast(str, name)

    @property
    def payload_io_name(self) -> str | None:
        """The name of the FileIO that wrote the payload, as recorded."""
        name = self.metadata.get("payload_io")
        return name if isinstance(name, str) else None

    @property
    def created(self) -> str | None:
        """When the artifact was committed (ISO 8601, UTC), as recorded."""
        value = self.metadata.get("created_utc")
        return value if isinstance(value, str) else None

    def upstream(self) -> list[tuple[str, str]]:
        """``(payload_name, key)`` of each tracked dependency, as recorded."""
        recorded = self.metadata.get("upstream")
        if isinstance(recorded, list):
            return [
                (str(item[0]), str(item[1]))
                for item in recorded
                if isinstance(item, list | tuple) and len(item) == 2
            ]
        # Artifacts written before "upstream" was recorded name dependencies by role,
        # which is their payload name unless a mapping gave roles.
        found: list[tuple[str, str]] = []
        for role, value in sorted((self.metadata.get("dependencies") or {}).items()):
            for key in value if isinstance(value, list) else [value]:
                found.append((str(role), str(key)))
        return found

    def read_params(self) -> dict[str, Any]:
        """The parsed ``params.json``: the lineage, i.e. the artifact's own params and, under
        each dependency's payload name (or role), ``{"payload_name": ..., "key": ...}``.

        Its size does not grow with the depth of a chain; the full upstream params tree is
        found by following those keys (``Persistable.params_tree``, ``persistable graph``).
        """
        raw = self._read_listed(PARAMS_FILE)
        try:
            params = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CorruptArtifactError(
                f"{self.store.url}/{self.dir}/{PARAMS_FILE} is not valid JSON ({error})."
            ) from error
        return params if isinstance(params, dict) else {"value": params}

    def read_log(self) -> str:
        """The records logged while the payload was generated (empty when none).

        A short log is a field of ``metadata.json``; a long one, and the log of an
        artifact committed before short logs were kept there, is the file ``generation.log``.
        """
        inline = self.metadata.get(GENERATION_LOG_FIELD)
        if isinstance(inline, str):
            return inline
        if GENERATION_LOG_FILE not in self.files:
            return ""
        return self._read_listed(GENERATION_LOG_FILE).decode("utf-8", "replace")

    def _read_listed(self, name: str) -> bytes:
        record = self.files.get(name)
        path = self.path(name)
        try:
            data = self.store.read_bytes(path)
        except FileNotFoundError as error:
            raise self._missing(path) from error
        if record is not None:
            hasher = hash_stream(io.BytesIO(data))
            try:
                check_file(f"{self.store.url}/{path}", hasher, record)
            except CorruptArtifactError as error:
                if self._changed():  # a local replace swaps the folder: another file here
                    raise self._replaced(path) from error
                raise
        return data

    # -- checks ---------------------------------------------------------------------

    def verify(self) -> None:
        """Check every file against the size and checksum in ``metadata.json``.

        Raises
        ------
        ArtifactNotFoundError
            The artifact is not committed.
        CorruptArtifactError
            A file is missing, or differs from its record.
        """
        for name, record in sorted(self.files.items()):
            self._verify_file(name, record)

    def _verify_file(self, name: str, record: dict[str, Any]) -> None:
        path = self.path(name)
        try:
            with self.store.open_read(path) as stream:
                check_file(f"{self.store.url}/{path}", hash_stream(stream), record)
        except FileNotFoundError as error:
            raise self._missing(path) from error

    def _missing(self, path: str) -> CorruptArtifactError:
        """The error for a listed file that is not there: replaced meanwhile, or damage."""
        if self._changed():
            return self._replaced(path)
        return CorruptArtifactError(
            f"{self.store.url}/{path} is missing although metadata.json lists it."
        )

    def _replaced(self, path: str) -> CorruptArtifactError:
        # This handle read metadata.json before a replace (or delete) that changed the
        # files it lists: load() reads the new artifact instead, other reads say so.
        return CorruptArtifactError(
            f"{self.store.url}/{path} is not the file this handle's metadata.json lists: "
            f"{self.ref} was replaced or deleted since it was read; read it again (refresh())."
        )

    def damage(self) -> str | None:
        """Why the artifact is damaged (one sentence), or None when it verifies.

        An artifact replaced while it is checked is checked again as it is now (up to
        three times); one deleted meanwhile has nothing left to be damaged (None).
        """
        for attempt in range(3):
            try:
                self.verify()
            except ArtifactNotFoundError:
                return None
            except UnsupportedSchemeError as error:
                return str(error)
            except CorruptArtifactError as error:
                before = self._metadata
                self._metadata = None
                try:
                    if attempt < 2 and self.metadata != before:
                        continue  # replaced meanwhile: check the new one
                except ArtifactNotFoundError:
                    return None
                except (CorruptArtifactError, UnsupportedSchemeError) as unreadable:
                    return str(unreadable)
                return str(error)
            return None
        return None  # pragma: no cover (the loop returns)

    # -- payload --------------------------------------------------------------------

    def file_io(self, preferred: FileIO[Any] | None = None) -> FileIO[Any]:
        """The FileIO to load the payload with: ``preferred`` when it is the one recorded.

        Raises
        ------
        UnknownFileIOError
            The recorded FileIO is not registered here (the artifact is left in place).
        """
        recorded = self.payload_io_name
        if preferred is not None and (recorded is None or preferred.name == recorded):
            return preferred
        if recorded is None:
            raise UnknownFileIOError(
                f"metadata.json of {self.store.url}/{self.dir} names no payload_io; pass the "
                "FileIO that wrote it."
            )
        from persistable.io._registry import file_io_for

        file_io = file_io_for(recorded)
        if preferred is not None:
            logger.warning(
                "%s key %s was written with the FileIO %r, not %r; loading it with %r",
                self.payload_name,
                self.key,
                recorded,
                preferred.name,
                recorded,
            )
        return file_io

    def load(self, file_io: FileIO[Any] | None = None, *, verify: bool = False) -> Any:
        """Load the payload with the FileIO ``metadata.json`` names (``file_io`` if it is that one).

        The payload's size is always checked; a download is checked against its
        checksum as it streams; on a local store ``verify=True`` checks the checksum too.
        When a check fails because the artifact was replaced (or deleted) while it was
        read, the new one is read (or :class:`ArtifactNotFoundError` raised) instead.

        Raises
        ------
        ArtifactNotFoundError
            The artifact is not committed.
        CorruptArtifactError
            The payload differs from its record (size or checksum), or it is missing.
        PayloadLoadError
            The payload is intact but cannot be loaded here: a missing class or module
            (:class:`MissingPayloadClassError`), an unknown FileIO, or a FileIO failure.
        UntrustedPayloadError
            The FileIO would run code from an untrusted store.
        """
        for attempt in range(3):
            try:
                return self._load(file_io, verify=verify)
            except CorruptArtifactError:
                before = self._metadata
                self._metadata = None
                if attempt == 2 or self.metadata == before:
                    raise
                logger.debug("%s was replaced while it was read; reading it again", self.ref)
        raise AssertionError("unreachable")  # pragma: no cover

    def _load(self, file_io: FileIO[Any] | None, *, verify: bool) -> Any:
        """One attempt of :meth:`load`."""
        name = self.payload_file
        path = self.path(name)
        where = f"{self.store.url}/{path}"
        reader = self.file_io(file_io)
        if isinstance(reader, FolderFileIO):
            return self._load_folder(reader, name, verify=verify)
        record = self.files.get(name)
        if record is None:
            raise CorruptArtifactError(f"metadata.json of {where} lists no size for the payload.")
        if reader.executes_code_on_load and not self.store.trusted:
            raise UntrustedPayloadError(
                f"Refusing to unpickle {where}: the store is not trusted and pickle runs code "
                "from the file; open the store with trusted=True if you trust its writers, or "
                "persist with a safe IO (JsonFileIO, NpyFileIO)."
            )
        whole = None
        try:
            if (
                isinstance(self.store, LocalStore)
                and not verify
                and record["size"] <= _READ_WHOLE
                and _reads_streams(reader)
            ):
                # A small local file is read whole (open, read, close: no stat, no
                # buffered file object); the length read is the size check.
                whole = self.store.read_bytes(path)
                size = len(whole)
            else:
                size = self.store.size(path)
        except FileNotFoundError as error:
            raise CorruptArtifactError(
                f"{where} is missing although metadata.json lists it."
            ) from error
        if size != record["size"]:
            raise CorruptArtifactError(
                f"{where} has {size} bytes, metadata.json says {record['size']}; the file was "
                "truncated or changed."
            )
        local = self.store.local_path(path) if whole is None else None
        checked = False
        if verify and local is not None:
            self._verify_file(name, record)
            checked = True
        try:
            if whole is not None:
                return reader.load(io.BytesIO(whole))
            if local is not None:
                return reader.load_path(local)
            checked = True  # a download is checked before (or while) it is used
            with self.store.open_read(path) as stream:
                if stream.seekable():
                    check_file(where, hash_stream(stream), record)
                    stream.seek(0)
                    return reader.load(stream)
                hashing = HashingReader(stream)
                try:
                    payload = reader.load(cast(IO[bytes], io.BufferedReader(hashing, 1 << 20)))
                finally:
                    check_file(where, hashing.finish(), record)
                return payload
        except CorruptArtifactError:
            raise
        except PayloadLoadError as error:
            if not checked:
                self._verify_file(name, record)  # damage, if the checksum says so
            raise type(error)(
                f"Cannot load {where}: {error} The file matches its checksum, so the artifact "
                "is left where it is."
            ) from error
        except FileNotFoundError as error:
            # Gone since its size was checked: replaced or deleted meanwhile (load() looks
            # at metadata.json again), or damage if metadata.json still lists it.
            raise CorruptArtifactError(f"{where} disappeared while it was read.") from error
        except Exception as error:
            # Checksums decide: an intact file that the FileIO cannot read is not damage.
            self._verify_file(name, record)
            if self._changed():
                raise CorruptArtifactError(f"{where} was replaced while it was read.") from error
            raise PayloadLoadError(
                f"{type(reader).__name__} could not read {where} ({type(error).__name__}: "
                f"{error}), although the file matches its checksum; the artifact is left in "
                "place: load it with the FileIO and the code that wrote it."
            ) from error

    def _load_folder(self, reader: FolderFileIO[Any], name: str, *, verify: bool) -> Any:
        from persistable.io._folder import read_folder

        members = {
            path: record for path, record in self.files.items() if path.startswith(f"{name}/")
        }
        try:
            return read_folder(
                reader,
                self.store,
                self.files_dir,
                name,
                self.files,
                verify=verify,
                ref=self.ref,
                changed=functools.partial(
                    _metadata_differs, self.store, self.payload_name, self.key, self.metadata
                ),
            )
        except (CorruptArtifactError, PayloadLoadError):
            raise
        except FileNotFoundError as error:
            raise CorruptArtifactError(
                f"{self.store.url}/{self.files_dir}/{name} lost files while it was read."
            ) from error
        except Exception as error:
            for path, record in sorted(members.items()):  # checksums decide what is damage
                self._verify_file(path, record)
            if self._changed():
                raise CorruptArtifactError(
                    f"{self.store.url}/{self.files_dir}/{name} was replaced while it was read."
                ) from error
            raise PayloadLoadError(
                f"{type(reader).__name__} could not open {self.store.url}/{self.files_dir}/{name} "
                f"({type(error).__name__}: {error}), although its files match their checksums; "
                "the artifact is left in place."
            ) from error

    def _changed(self) -> bool:
        """Whether ``metadata.json`` differs from the one read (the artifact was replaced)."""
        return _metadata_differs(self.store, self.payload_name, self.key, self._metadata)

    # -- changes --------------------------------------------------------------------

    def copy_to(self, destination: Store, *, verify: bool = True) -> int | None:
        """Copy the artifact into ``destination``; returns the bytes copied.

        Each file is checked against its record while it streams and ``metadata.json``
        is committed last, so an interrupted copy leaves nothing. Returns None when the
        destination already had the key (another writer committed it first).

        Raises
        ------
        CorruptArtifactError
            A source file differs from its record (nothing is committed), or the copy
            read back from ``destination`` does (with ``verify``; it is quarantined there).
        """
        from persistable.artifact._copy import copy_artifact_files

        return copy_artifact_files(self, destination, verify=verify)

    def quarantine(self) -> str:
        """Move the artifact aside into ``.persistable/quarantine/``; returns where it went."""
        destination = self.store.quarantine_dir(self.dir)
        self._metadata = None
        return destination

    def delete(self, *, timeout: float | None = None) -> bool:
        """Remove the artifact, under its key's lock (waits while another process generates it).

        ``metadata.json`` goes first, so a reader never sees a half-deleted artifact as
        committed. Returns False when there was nothing to delete.

        Raises
        ------
        ReadOnlyStoreError
            The store cannot be written (nothing is changed).
        LockTimeoutError
            Another process held the key's lock for longer than ``timeout``.
        """
        self.store.check_writable()
        with self.store.lock(self.payload_name, self.key, timeout=timeout):
            return self.delete_locked()

    def delete_locked(self) -> bool:
        """:meth:`delete` for a caller that already holds the key's lock."""
        self._metadata = None
        return self.store.delete_artifact(self.payload_name, self.key)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Artifact)
            and other.store.url == self.store.url
            and other.payload_name == self.payload_name
            and other.key == self.key
        )

    def __hash__(self) -> int:
        return hash((self.store.url, self.payload_name, self.key))

    def __repr__(self) -> str:
        return f"Artifact({self.store.url!r}, {self.payload_name!r}, {self.key!r})"

    def _repr_html_(self) -> str:
        from persistable.artifact._html import artifact_html

        return artifact_html(self)


def _metadata_differs(
    store: Store, payload_name: str, key: str, metadata: dict[str, Any] | None
) -> bool:
    """Whether the committed ``metadata.json`` is not ``metadata`` (replaced or deleted since)."""
    try:
        raw = store.read_metadata(payload_name, key)
    except (ArtifactNotFoundError, CorruptArtifactError):
        return True
    return raw != metadata
