"""A zarr store that serves only the files one artifact's ``metadata.json`` lists, each checked.

A lazily opened zarr array reads its chunks long after the artifact was loaded. By then
the artifact may have been replaced or deleted: its paths hold nothing (zarr would read
a missing chunk as the fill value) or, in a store that reuses names, another artifact's
files. Every read through this wrapper is checked against the size and xxh3-128 recorded
when the artifact was loaded, so a reader gets the artifact's own bytes or a
:class:`~persistable.exceptions.CorruptArtifactError` saying what happened, never a mix.
Imported only when a zarr payload is opened (it subclasses zarr's ``WrapperStore``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from typing import Any

from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

from persistable._artifact import check_file
from persistable._hashing import BulkHasher
from persistable.exceptions import CorruptArtifactError

__all__ = ["CheckedZarrStore"]


def _sliced(data: memoryview, byte_range: ByteRequest) -> memoryview:
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return data[-byte_range.suffix :] if byte_range.suffix else data[:0]
    raise TypeError(f"unexpected byte range {byte_range!r}")  # pragma: no cover


class CheckedZarrStore(WrapperStore[Any]):
    """Read-only view of a committed zarr folder: the listed files only, each size- and checksum-checked.

    Parameters
    ----------
    store
        The zarr store over the artifact's folder payload.
    records
        ``metadata.json``'s record (size, xxh3-128) of each file, by its path in the folder.
    where
        The folder's location, for messages.
    ref
        ``payload_name/key`` of the artifact, for messages.
    changed
        Answers whether the artifact's ``metadata.json`` is no longer the one read
        (replaced or deleted since); None when that cannot be asked.
    """

    def __init__(
        self,
        store: Any,
        records: dict[str, dict[str, Any]],
        where: str,
        ref: str,
        changed: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(store)
        self._records = records
        self._where = where
        self._ref = ref
        self._changed = changed

    def _with_store(self, store: Any) -> CheckedZarrStore:
        return type(self)(store, self._records, self._where, self._ref, self._changed)

    def _error(self, key: str, what: str) -> CorruptArtifactError:
        where = f"{self._where}/{key}"
        if self._changed is None or self._changed():
            return CorruptArtifactError(
                f"{where} {what}: {self._ref} was replaced or deleted since it was read, "
                "so this array can no longer be read; load the artifact again."
            )
        return CorruptArtifactError(
            f"{where} {what}, although metadata.json still lists it: the artifact is "
            "damaged; run `persistable verify` on the store and generate it again."
        )

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        record = self._records.get(key)
        if record is None:
            return None  # not a file of this artifact (a chunk never written: fill value)
        buffer: Buffer | None = await self._store.get(key, prototype, None)
        if buffer is None:
            raise self._error(key, "is missing")
        # The chunk's bytes where the store put them (to_bytes() would copy each chunk
        # into fresh memory first: a second pass and the page faults of a whole copy).
        data = memoryview(buffer.as_buffer_like()).cast("B")
        hasher = BulkHasher()
        hasher.update(data)
        try:
            check_file(f"{self._where}/{key}", hasher, record)
        except CorruptArtifactError as error:
            raise self._error(key, "differs from the file metadata.json lists") from error
        if byte_range is None:
            return buffer
        # A copy of the range only, so the whole file's buffer is not kept alive by it.
        sliced: Buffer = prototype.buffer.from_bytes(bytes(_sliced(data, byte_range)))
        return sliced

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return [await self.get(key, prototype, byte_range) for key, byte_range in key_ranges]

    async def _get_many(
        self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
    ) -> AsyncGenerator[tuple[str, Buffer | None], None]:
        for key, prototype, byte_range in requests:
            yield key, await self.get(key, prototype, byte_range)

    async def exists(self, key: str) -> bool:
        return key in self._records

    async def is_empty(self, prefix: str) -> bool:
        start = f"{prefix.rstrip('/')}/" if prefix else ""
        return not any(name.startswith(start) for name in self._records)

    async def getsize(self, key: str) -> int:
        record = self._records.get(key)
        if record is None:
            raise FileNotFoundError(f"{self._where}/{key}")
        return int(record["size"])

    async def list(self) -> AsyncIterator[str]:
        for name in sorted(self._records):
            yield name

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for name in sorted(self._records):
            if name.startswith(prefix):
                yield name

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        start = f"{prefix.rstrip('/')}/" if prefix else ""
        children = {
            name[len(start) :].split("/", 1)[0] for name in self._records if name.startswith(start)
        }
        for child in sorted(children):
            yield child

    def __repr__(self) -> str:
        return f"CheckedZarrStore({self._where!r})"
