"""A store in this process's memory, shared by name (like fsspec's ``memory://``)."""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator
from typing import IO, Any, ClassVar

from persistable.exceptions import StoreConfigurationError
from persistable.store._base import METADATA_FILE, Store, Transaction
from persistable.store._holders import held_here
from persistable.store._lease_files import LeaseFiles

__all__ = ["MemoryLeaseFiles", "MemoryStore"]


class MemoryStore(Store):
    """Artifacts in a dict of this process; stores with the same name share their files.

    Meant for tests and notebooks: nothing survives the process.
    """

    _registry: ClassVar[dict[str, dict[str, bytes]]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str = "default", *, read_only: bool = False) -> None:
        self.name = name.strip("/") or "default"
        self.read_only = read_only
        with self._registry_lock:
            self.files = self._registry.setdefault(self.name, {})
        self._lock = self._registry_lock

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickles by name: threads and in-process Dask workers reattach to the same files,
        # another process gets a clear error instead of an empty store of its own.
        return (_reopen_memory_store, (self.name, self.read_only, os.getpid()))

    @property
    def url(self) -> str:
        return f"memory://{self.name}"

    def exists(self, path: str) -> bool:
        return path in self.files

    def open_read(self, path: str) -> IO[bytes]:
        try:
            return io.BytesIO(self.files[path])
        except KeyError:
            raise FileNotFoundError(f"{self.url}/{path}") from None

    def size(self, path: str) -> int:
        try:
            return len(self.files[path])
        except KeyError:
            raise FileNotFoundError(f"{self.url}/{path}") from None

    def list_dir(self, path: str) -> list[str]:
        prefix = f"{path.rstrip('/')}/" if path else ""
        with self._lock:
            paths = list(self.files)
        return sorted({p[len(prefix) :].split("/", 1)[0] for p in paths if p.startswith(prefix)})

    def begin(self, artifact_dir: str, *, replace: bool = False) -> Transaction:
        self.check_writable()
        return _MemoryTransaction(self, artifact_dir, replace=replace)

    def move_dir(self, src: str, dst: str) -> None:
        prefix = f"{src}/"
        with self._lock:
            for path in [p for p in self.files if p.startswith(prefix)]:
                self.files[f"{dst}/{path[len(prefix) :]}"] = self.files.pop(path)

    def remove_dir(self, path: str) -> None:
        prefix = f"{path}/"
        with self._lock:
            for name in [p for p in self.files if p.startswith(prefix)]:
                del self.files[name]

    #: Lease time of the per-key generation lock (threads of this process share the store).
    lease_seconds: float = 60.0

    @contextlib.contextmanager
    def lock(self, payload_name: str, key: str, timeout: float | None = None) -> Iterator[None]:
        """Hold the per-key generation lease, as object stores do (see ``store._lease``)."""
        from persistable.store._lease import lease_lock

        files = MemoryLeaseFiles(self)
        with held_here((self.url, payload_name, key)) as again:
            if again:  # this thread holds it already (re-entrant)
                yield
                return
            with lease_lock(
                files, payload_name, key, timeout, seconds=self.lease_seconds, url=self.url
            ):
                yield

    @classmethod
    def clear(cls, name: str | None = None) -> None:
        """Forget the files of one named memory store, or of all of them."""
        with cls._registry_lock:
            for key in [name] if name is not None else list(cls._registry):
                cls._registry.get(key, {}).clear()


def _reopen_memory_store(name: str, read_only: bool, pid: int) -> MemoryStore:
    if pid != os.getpid():
        raise StoreConfigurationError(
            f"The store 'memory://{name}' lives in the memory of process {pid} and was sent to "
            f"process {os.getpid()}, which cannot see it; use a local folder or an s3:// data_dir "
            "with process or cluster executors."
        )
    return MemoryStore(name, read_only=read_only)


class _WriteBuffer(io.BytesIO):
    def __init__(self, sink: dict[str, bytes], name: str) -> None:
        super().__init__()
        self._sink = sink
        self._name = name

    def close(self) -> None:
        if not self.closed:
            self._sink[self._name] = self.getvalue()
        super().close()


class _MemoryTransaction(Transaction):
    store: MemoryStore

    def __init__(self, store: MemoryStore, artifact_dir: str, *, replace: bool = False) -> None:
        super().__init__(store, artifact_dir, replace=replace)
        self.pending: dict[str, bytes] = {}
        self._done = False

    def open_write(self, name: str) -> IO[bytes]:
        return _WriteBuffer(self.pending, name)

    def commit(self, metadata: bytes) -> bool:
        marker = f"{self.artifact_dir}/{METADATA_FILE}"
        with self.store._lock:
            self._done = True
            if marker in self.store.files:
                if not self.replace:
                    return False
                prefix = f"{self.artifact_dir}/"
                for path in [p for p in self.store.files if p.startswith(prefix)]:
                    del self.store.files[path]
            for name, data in self.pending.items():
                self.store.files[f"{self.artifact_dir}/{name}"] = data
            self.store.files[marker] = metadata
        return True

    def abort(self) -> None:
        self._done = True
        self.pending.clear()


class MemoryLeaseFiles(LeaseFiles):
    """Lease objects inside a :class:`~persistable.store.MemoryStore` (threads of one process)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def create(self, path: str, data: bytes) -> bool:
        with self.store._lock:
            if path in self.store.files:
                return False
            self.store.files[path] = data
            return True

    def read(self, path: str) -> bytes | None:
        with self.store._lock:
            return self.store.files.get(path)

    def overwrite(self, path: str, data: bytes) -> None:
        with self.store._lock:
            self.store.files[path] = data

    def list_names(self, folder: str) -> list[str]:
        prefix = f"{folder}/"
        with self.store._lock:
            return sorted(
                p[len(prefix) :]
                for p in self.store.files
                if p.startswith(prefix) and "/" not in p[len(prefix) :]
            )

    def delete(self, path: str) -> None:
        with self.store._lock:
            self.store.files.pop(path, None)
