"""A store on any fsspec filesystem (S3 through s3fs, GCS, ``memory://``, ...).

Object stores have no rename, so an artifact is committed in place:

1. The writer takes a *commit claim*: a small object
   ``.persistable/claims/<payload_name>/<key>.json`` created with a conditional put
   (S3 ``If-None-Match: *``). Only the claim holder writes under the artifact's prefix.
   Another writer of the same key waits until the artifact is committed (then it has
   lost and discards its bytes without uploading them) or until the claim is released
   or goes stale (its holder died: older than ``claim_ttl`` seconds, or a dead process
   on this host), and then takes it over.
2. The holder removes leftovers of an interrupted writer, uploads the payload files
   straight to their final names (no copy, so large payloads cost one upload),
   refreshing the claim while it writes.
3. ``metadata.json`` is written last with a conditional put: the first committer wins
   and a prefix without ``metadata.json`` is never an artifact. The claim is then
   deleted. An abort deletes only the files this writer uploaded, and only while it
   holds the claim.

Residual risk, documented in docs/architecture.md: a writer that stalls for longer than
``claim_ttl`` between two writes can be taken over while alive. It finds out at its next
write or at its commit (its claim is gone) and from then on writes nothing more into
the folder, so it neither commits nor overwrites the new holder's files; only a write
already in flight at the moment of the takeover can still land, and a torn payload is
caught by the size check at load and the checksums of ``verify()``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

from persistable._artifact import DiscardingWriter, naming_files_folder
from persistable._ids import hostname, random_hex
from persistable.exceptions import (
    MissingDependencyError,
    ReadOnlyStoreError,
    StoreAccessDeniedError,
    StoreConfigurationError,
    StoreError,
)
from persistable.store._base import INTERNAL_DIR, METADATA_FILE, Store, Transaction
from persistable.store._holders import held_here, pid_alive
from persistable.store._lease_files import LeaseFiles

__all__ = ["FsspecLeaseFiles", "FsspecStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_CLAIMS = f"{INTERNAL_DIR}/claims"
_PROBES = f"{INTERNAL_DIR}/probes"
#: Files up to this size are fetched whole instead of through a buffered stream.
_WHOLE_READ_LIMIT = 1 << 30
#: Files below this size are uploaded together just before the commit.
_SMALL_FILE = 1 << 20
#: Files from this size on are downloaded in concurrent ranges (s3fs).
_CONCURRENT_READ = 32 << 20
#: Stores (filesystem token and root) already shown to accept writes in this process.
_WRITABLE: set[tuple[str, str]] = set()
#: Protocols whose listings fsspec would otherwise cache across processes' writes.
_REMOTE_LISTING = {"s3", "s3a", "gs", "gcs", "abfs", "az", "adl"}
_S3 = {"s3", "s3a"}
#: Error errnos that s3fs and others use for throttling and busy servers.
_TRANSIENT_ERRNOS = {errno.EBUSY, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET}


def _install_hint(protocol: str) -> str:
    if protocol in _S3:
        return "pip install 'persistable[s3]'"
    return f"pip install 'persistable[fsspec]' plus the fsspec backend for {protocol!r}"


def _error_names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def _is_transient(error: BaseException) -> bool:
    """Errors worth another attempt: timeouts, resets, throttling (s3fs already retried)."""
    if isinstance(error, FileExistsError | FileNotFoundError | PermissionError):
        return False
    if isinstance(error, TimeoutError | ConnectionResetError):
        return True
    if isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNOS:
        return True
    return bool(_error_names(error) & {"ReadTimeoutError", "ServerDisconnectedError"})


class _UploadWriter(io.RawIOBase):
    """Writes one file of a claimed artifact, keeping the commit claim fresh.

    Files smaller than the store's ``write_block_size`` are kept in memory and sent
    with one PUT when closed (small ones are batched and sent together at commit);
    larger ones stream as a multipart upload. The bytes are copied once, into an
    in-memory file whose ``getvalue()`` hands its bytes over without a copy (the
    caller may reuse its own buffer once ``write`` returns).
    """

    def __init__(self, transaction: _FsspecTransaction, path: str) -> None:
        super().__init__()
        self._transaction = transaction
        self._path = path
        self._buffer = io.BytesIO()
        self._size = 0
        self._stream: IO[bytes] | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        transaction = self._transaction
        transaction.heartbeat()
        view = memoryview(data)
        if not view.contiguous:
            view = memoryview(view.tobytes())
        if transaction.state != "owner":
            return view.nbytes  # lost the claim: the bytes go nowhere
        if self._stream is not None:
            self._stream.write(view)  # fsspec buffers (copies) what it does not send at once
            return view.nbytes
        self._buffer.write(view)
        self._size += view.nbytes
        if self._size >= transaction.store.write_block_size:
            store = transaction.store
            self._stream = store._call(
                "write into",
                store.fs.open,
                store._full(self._path),
                "wb",
                block_size=store.write_block_size,
            )
            self._stream.write(self._buffer.getvalue())
            self._buffer = io.BytesIO()
        return view.nbytes

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        finally:
            store = self._transaction.store
            if self._stream is not None and self._transaction.state != "owner":
                discard = getattr(self._stream, "discard", None)
                if discard is not None:
                    discard()  # an unfinished multipart upload is dropped, not completed
            elif self._stream is not None:
                store._call("upload", self._stream.close, retry=False)
            else:
                data = self._buffer.getvalue()  # the buffer's own bytes, not a copy
                self._buffer = io.BytesIO()
                self._transaction.upload(self._path, data)


class FsspecStore(Store):
    """Artifacts under any fsspec URL; S3 needs ``pip install 'persistable[s3]'``.

    Parameters
    ----------
    url
        ``"s3://bucket/prefix"``, ``"memory://name"``, ``"gs://bucket/prefix"``, ...
    storage_options
        Passed to fsspec (``anon``, ``profile``, ``key``/``secret``,
        ``client_kwargs={"endpoint_url": ...}``, ``retries``...).
    read_only
        Refuse writes. None (default) means read-only exactly when
        ``storage_options`` asks for anonymous access (``anon=True``).
    trusted
        Whether pickle payloads from this store may be unpickled.
    claim_ttl
        Seconds after which the commit claim of a writer that stopped writing is
        considered abandoned and may be taken over.
    retries
        Extra attempts, with exponential backoff, for transient errors that fsspec
        surfaces after its own retries (timeouts, resets, throttling).
    write_block_size
        Bytes buffered per upload part: smaller files go up in one request, larger
        ones as a multipart upload with parts of this size.
    """

    def __init__(
        self,
        url: str,
        *,
        storage_options: dict[str, Any] | None = None,
        read_only: bool | None = None,
        trusted: bool = True,
        claim_ttl: float = 60.0,
        retries: int = 3,
        write_block_size: int = 100 << 20,
    ) -> None:
        protocol = url.partition("://")[0] if "://" in url else "file"
        options = dict(storage_options or {})
        if protocol in _REMOTE_LISTING:
            # Other processes write here: never answer from a stale listing cache.
            options.setdefault("use_listings_cache", False)
        try:
            import fsspec.core
        except ImportError as error:
            raise MissingDependencyError(
                f"The data_dir {url!r} needs fsspec, which is not installed; "
                f"run {_install_hint(protocol)}."
            ) from error
        from fsspec.registry import known_implementations, registry

        if protocol not in known_implementations and protocol not in registry:
            raise StoreConfigurationError(
                f"The data_dir {url!r} has the scheme {protocol!r}, which no installed "
                "filesystem knows; expected a local folder or a URL such as "
                "s3://bucket/prefix, gs://..., memory://name: fix the URL (or install and "
                "register an fsspec filesystem for that scheme)."
            )
        try:
            fs, root = fsspec.core.url_to_fs(url, **options)
        except ImportError as error:
            raise MissingDependencyError(
                f"The data_dir {url!r} needs the fsspec backend for {protocol!r}, which is not "
                f"installed ({error}); run {_install_hint(protocol)}."
            ) from error
        except (TypeError, ValueError) as error:
            raise StoreConfigurationError(
                f"Could not open {url!r} with the storage_options {sorted(options) or 'none'} "
                f"({type(error).__name__}: {error}); check the URL and the storage_options."
            ) from error
        self.fs: Any = fs
        self.protocol = protocol
        self.root = str(root).rstrip("/")
        self.storage_options = options
        self._url = url.rstrip("/")
        self.read_only = bool(options.get("anon")) if read_only is None else read_only
        self.trusted = trusted
        self.claim_ttl = claim_ttl
        self.retries = retries
        self.write_block_size = write_block_size
        self._last_size: tuple[str, int] | None = None

    @property
    def url(self) -> str:
        return self._url

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    def _relative(self, full: str) -> str:
        full = full.rstrip("/")
        prefix = self.root.lstrip("/") + "/"
        stripped = full.lstrip("/")
        return stripped[len(prefix) :] if stripped.startswith(prefix) else stripped

    # -- error handling -----------------------------------------------------------

    def _explain(self, error: BaseException, action: str) -> BaseException | None:
        """A clear store error for a configuration problem, or None to re-raise as is."""
        names = _error_names(error)
        endpoint = self.storage_options.get("client_kwargs", {}).get("endpoint_url")
        where = f"{self.url!r}" + (f" (endpoint {endpoint})" if endpoint else "")
        if names & {"NoCredentialsError", "PartialCredentialsError"}:
            return StoreConfigurationError(
                f"No credentials found to {action} {where}; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, pass storage_options={'profile': ...} "
                "or {'key': ..., 'secret': ...}, or {'anon': True} for a public bucket."
            )
        if names & {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError"}:
            return StoreConfigurationError(
                f"Could not reach the server to {action} {where} ({error}); check "
                "storage_options client_kwargs={'endpoint_url': ...} and the network."
            )
        cause = error.__cause__
        if isinstance(error, FileNotFoundError) and (
            "NoSuchBucket" in (_error_names(cause) if cause else set())
            or "NoSuchBucket" in repr(cause)
            or "bucket does not exist" in str(error).lower()
        ):
            return StoreConfigurationError(
                f"The bucket of {where} does not exist (while trying to {action} it); create "
                "the bucket or fix the bucket name in data_dir."
            )
        if isinstance(error, PermissionError) and action in {"read", "list"}:
            return StoreAccessDeniedError(
                f"Access denied to {action} {where} ({error}); use credentials allowed to "
                "read it (storage_options 'profile' or 'key'/'secret'), or ask its owner to "
                "make it public for anonymous access."
            )
        if isinstance(error, PermissionError):
            return ReadOnlyStoreError(
                f"Access denied to {action} {where} ({error}); use credentials allowed to "
                "write there, or open it read-only as a fallback store."
            )
        if names & {"ClientError", "ParamValidationError"}:
            return StoreError(
                f"The server refused to {action} {where} ({error}); check data_dir and "
                "storage_options."
            )
        return None

    def _call(
        self, action: str, func: Callable[..., T], *args: Any, retry: bool = True, **kwargs: Any
    ) -> T:
        """Run one filesystem operation with retries for transient errors and clear errors."""
        attempt = 0
        while True:
            try:
                return func(*args, **kwargs)
            except Exception as error:
                if retry and attempt < self.retries and _is_transient(error):
                    delay = min(0.1 * 2**attempt, 2.0)
                    attempt += 1
                    logger.warning(
                        "Transient error while trying to %s %s (%s); retry %d of %d in %.1f s",
                        action,
                        self.url,
                        error,
                        attempt,
                        self.retries,
                        delay,
                    )
                    time.sleep(delay)
                    continue
                explained = self._explain(error, action)
                if explained is None:
                    raise
                raise explained from error

    # -- primitives ---------------------------------------------------------------

    def _head(self, path: str) -> int | None:
        """Size of the file ``path``, or None if there is none: one request where possible."""
        full = self._full(path)
        try:
            if self.protocol in _S3:
                # One HEAD; s3fs's info() also lists the prefix when the key is missing.
                bucket, key, _ = self.fs.split_path(full)
                if not key:
                    return None
                response = self._call(
                    "read", self.fs.call_s3, "head_object", Bucket=bucket, Key=key
                )
                size = int(response["ContentLength"])
            else:
                info = self._call("read", self.fs.info, full)
                if info.get("type") != "file":
                    return None
                size = int(info["size"])
        except FileNotFoundError:
            return None
        self._last_size = (path, size)
        return size

    def exists(self, path: str) -> bool:
        return self._head(path) is not None

    def size(self, path: str) -> int:
        size = self._head(path)
        if size is None:
            raise FileNotFoundError(f"{self.url}/{path} does not exist")
        return size

    def _cat(self, path: str, size: int) -> bytes:
        # s3fs asks for the size first unless told to download in one request.
        options: dict[str, Any] = (
            {"max_concurrency": 1} if self.protocol in _S3 and size < _CONCURRENT_READ else {}
        )
        return bytes(self._call("read", self.fs.cat_file, self._full(path), **options))

    def open_read(self, path: str) -> IO[bytes]:
        # Callers usually ask for the size just before opening: reuse it.
        last = self._last_size
        size = last[1] if last is not None and last[0] == path else self.size(path)
        if size <= _WHOLE_READ_LIMIT:
            return io.BytesIO(self._cat(path, size))
        stream: IO[bytes] = self._call("read", self.fs.open, self._full(path), "rb")
        return stream

    def read_bytes(self, path: str) -> bytes:
        # Small files (metadata, claims): one GET, no size request.
        return self._cat(path, 0)

    def list_dir(self, path: str) -> list[str]:
        full = self._full(path)
        if self.protocol in _S3:
            return self._list_s3(full)
        try:
            entries = self._call("list", self.fs.ls, full, detail=False)
        except (FileNotFoundError, StoreConfigurationError):
            return []
        names = set()
        for entry in entries:
            relative = self._relative(entry)
            base = path.rstrip("/")
            if base and not relative.startswith(base + "/"):
                continue
            name = relative[len(base) + 1 :] if base else relative
            if name:
                names.add(name.split("/", 1)[0])
        return sorted(names)

    def _list_s3(self, full: str, page_size: int = 1000) -> list[str]:
        """Names directly in the folder ``full``: one LIST request per ``page_size`` names.

        s3fs's ``ls`` of an empty folder also lists its parent (to tell a file from a
        folder): for a new key's lease folder that parent holds one folder per key
        ever generated, so a first run cost more with every artifact in the store.
        """
        bucket, key, _ = self.fs.split_path(full)
        prefix = f"{key.rstrip('/')}/" if key else ""
        names: set[str] = set()
        request: dict[str, Any] = {
            "Bucket": bucket,
            "Prefix": prefix,
            "Delimiter": "/",
            "MaxKeys": page_size,
        }
        while True:
            try:
                page = self._call("list", self.fs.call_s3, "list_objects_v2", **request)
            except (FileNotFoundError, StoreConfigurationError):
                return []
            names.update(item["Key"][len(prefix) :] for item in page.get("Contents", ()))
            names.update(
                item["Prefix"][len(prefix) :].rstrip("/") for item in page.get("CommonPrefixes", ())
            )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
            request["ContinuationToken"] = token
        names.discard("")
        return sorted(names)

    def _find(self, path: str) -> list[str]:
        """Relative paths of every file under the folder ``path``."""
        try:
            found = self._call("list", self.fs.find, self._full(path))
        except FileNotFoundError:
            return []
        return sorted(self._relative(entry) for entry in found)

    def list_keys(self, payload_name: str) -> list[str]:
        # One recursive listing (a few requests per thousand artifacts) instead of a
        # HEAD request per key.
        suffix = f"/{METADATA_FILE}"
        keys = []
        for relative in self._find(payload_name):
            parts = relative.split("/")
            if len(parts) == 3 and relative.endswith(suffix) and parts[0] == payload_name:
                keys.append(parts[1])
        return sorted(keys)

    def iter_artifacts(self) -> Iterator[tuple[str, str]]:
        suffix = f"/{METADATA_FILE}"
        found = []
        for relative in self._find(""):
            parts = relative.split("/")
            if len(parts) == 3 and relative.endswith(suffix) and not parts[0].startswith("."):
                found.append((parts[0], parts[1]))
        yield from sorted(found)

    def check_writable(self) -> None:
        super().check_writable()
        token = (str(getattr(self.fs, "_fs_token", id(self.fs))), self.root)
        if token in _WRITABLE:
            return
        # Fail before any work: credentials, bucket, endpoint and permissions are all
        # tested by writing and deleting one tiny object.
        probe = self._full(f"{_PROBES}/{random_hex()}")
        self._call("write into", self.fs.pipe_file, probe, b"")
        with contextlib.suppress(FileNotFoundError):
            self._call("write into", self.fs.rm_file, probe)
        _WRITABLE.add(token)

    def begin(self, artifact_dir: str, *, replace: bool = False) -> Transaction:
        self.check_writable()
        return _FsspecTransaction(self, artifact_dir, replace=replace)

    def _copy(self, src: str, dst: str) -> None:
        self._call("copy within", self.fs.copy, self._full(src), self._full(dst))

    def _remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._call("delete from", self.fs.rm_file, self._full(path))

    def move_dir(self, src: str, dst: str) -> None:
        # No rename on object stores: copy every file, then delete the originals.
        files = self._find(src)
        for relative in files:
            self._copy(relative, f"{dst}/{relative[len(src) + 1 :]}")
        for relative in files:
            self._remove(relative)

    def remove_dir(self, path: str) -> None:
        for relative in self._find(path):
            self._remove(relative)

    def delete_artifact(self, payload_name: str, key: str) -> bool:
        """Delete ``metadata.json`` first (the artifact is gone at once), then its other files."""
        self.check_writable()
        folder = self.artifact_dir(payload_name, key)
        marker = f"{folder}/{METADATA_FILE}"
        existed = self.exists(marker)
        if existed:
            self._call("delete from", self.fs.rm_file, self._full(marker))
        self.remove_dir(folder)
        return existed

    def put_exclusive(self, path: str, data: bytes) -> bool:
        """Create the file ``path`` with a conditional put; False if it already exists.

        A retried put that finds the file holding exactly ``data`` counts as success
        (the first attempt reached the server but its answer was lost).
        """
        full = self._full(path)
        for attempt in range(self.retries + 1):
            try:
                self.fs.pipe_file(full, data, mode="create")
            except FileExistsError:
                return bool(attempt and self._call("read", self.fs.cat_file, full) == data)
            except Exception as error:
                if attempt < self.retries and _is_transient(error):
                    time.sleep(min(0.1 * 2**attempt, 2.0))
                    continue
                explained = self._explain(error, "write into")
                if explained is None:
                    raise
                raise explained from error
            else:
                return True
        return False  # pragma: no cover - the loop always returns

    #: Lease time of the per-key generation lock in seconds (renewed every third of it);
    #: a crashed worker blocks its key at most this long.
    lease_seconds: float = 60.0

    @contextlib.contextmanager
    def lock(self, payload_name: str, key: str, timeout: float | None = None) -> Iterator[None]:
        """Hold the per-key generation lease (see ``persistable.store._lease``)."""
        from persistable.store._lease import lease_lock

        files = FsspecLeaseFiles(self)
        with held_here((self.url, payload_name, key)) as again:
            if again:  # this thread holds it already (re-entrant)
                yield
                return
            with lease_lock(
                files, payload_name, key, timeout, seconds=self.lease_seconds, url=self.url
            ):
                yield


def _owner_record(txid: str) -> bytes:
    """The content of a claim or lease: who holds it, refreshed at ``time``."""
    record = {"txid": txid, "host": hostname(), "pid": os.getpid(), "time": time.time()}
    return json.dumps(record).encode()


def _read_owner(store: FsspecStore, path: str) -> dict[str, Any] | None:
    """The parsed claim or lease at ``path``; None if absent, {} if unreadable (stale)."""
    try:
        raw = store.read_bytes(path)
    except FileNotFoundError:
        return None
    try:
        owner = json.loads(raw)
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _is_abandoned(owner: dict[str, Any], ttl: float) -> bool:
    """Not refreshed for ``ttl`` seconds, or held by a process of this host that is gone."""
    stamp = owner.get("time")
    if not isinstance(stamp, int | float) or time.time() - stamp > ttl:
        return True
    pid = owner.get("pid")
    return owner.get("host") == hostname() and isinstance(pid, int) and not pid_alive(pid)


class _FsspecTransaction(Transaction):
    store: FsspecStore

    def __init__(self, store: FsspecStore, artifact_dir: str, *, replace: bool = False) -> None:
        super().__init__(store, artifact_dir, replace=replace)
        self.txid = random_hex()
        self.claim_path = f"{_CLAIMS}/{artifact_dir}.json"
        self.marker = f"{artifact_dir}/{METADATA_FILE}"
        self.state = "new"  # new -> owner | lost -> done
        if replace and store.exists(self.marker):
            # No rename here: the new files go to a folder of their own, and the new
            # metadata.json replaces the old one in one put, so until then the old
            # artifact stays whole and readers see it or the new one, never a mix.
            self.files_folder = f".r-{self.txid}"
        self.written: list[str] = []
        self.pending: dict[str, bytes] = {}
        self._last_refresh = 0.0

    # -- the commit claim ---------------------------------------------------------

    def _claim_bytes(self) -> bytes:
        return _owner_record(self.txid)

    def _read_claim(self) -> dict[str, Any] | None:
        return _read_owner(self.store, self.claim_path)

    def _is_stale(self, claim: dict[str, Any]) -> bool:
        return _is_abandoned(claim, self.store.claim_ttl)

    def _acquire(self) -> None:
        delay = 0.02
        took_over = False
        while True:
            if self.store.put_exclusive(self.claim_path, self._claim_bytes()):
                self._last_refresh = time.monotonic()
                if self.files_folder is not None:
                    # Replacing (under the key's lease) into our own folder: the
                    # committed artifact is not touched before the commit.
                    self.state = "owner"
                    return
                if self.store.exists(self.marker):  # committed before we claimed it
                    self.store._remove(self.claim_path)
                    self.state = "lost"
                    return
                self.state = "owner"
                # Only a writer that died while holding its claim leaves files behind.
                leftovers = self.store._find(self.artifact_dir) if took_over else []
                if leftovers:
                    logger.info(
                        "Removing %d files of an interrupted write of %s in %s",
                        len(leftovers),
                        self.artifact_dir,
                        self.store.url,
                    )
                    for relative in leftovers:
                        self.store._remove(relative)
                return
            if self.store.exists(self.marker) and not self.replace:
                self.state = "lost"
                return
            claim = self._read_claim()
            if claim is not None and self._is_stale(claim):
                logger.warning(
                    "Taking over the abandoned commit claim of %s in %s (%s)",
                    self.artifact_dir,
                    self.store.url,
                    claim,
                )
                self.store._remove(self.claim_path)
                took_over = True
                continue
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _lose(self) -> None:
        if self.state == "owner":
            logger.warning(
                "The commit claim of %s in %s was taken over while writing; "
                "the other writer's artifact wins",
                self.artifact_dir,
                self.store.url,
            )
        self.state = "lost"
        self.pending.clear()

    def _still_owner(self) -> bool:
        """Ours beyond doubt: refreshed by us less than claim_ttl / 2 ago, or still held."""
        if self.state != "owner":
            return False
        # Nobody may take over a claim refreshed less than claim_ttl / 2 ago.
        if time.monotonic() - self._last_refresh < self.store.claim_ttl / 2:
            return True
        if self._holds_claim():
            return True
        self._lose()
        return False

    def _holds_claim(self) -> bool:
        claim = self._read_claim()
        return claim is not None and claim.get("txid") == self.txid

    def _release(self) -> None:
        if self._holds_claim():
            self.store._remove(self.claim_path)

    def heartbeat(self) -> None:
        """Refresh the claim while writing so that others do not think it abandoned."""
        if time.monotonic() - self._last_refresh < self.store.claim_ttl / 4:
            return
        if not self._holds_claim():
            # Taken over while we wrote (we were stalled for longer than claim_ttl): the
            # other writer owns the folder now; nothing more of ours may land in it.
            self._lose()
            return
        self._last_refresh = time.monotonic()
        self.store._call(
            "write into",
            self.store.fs.pipe_file,
            self.store._full(self.claim_path),
            self._claim_bytes(),
        )

    # -- Transaction --------------------------------------------------------------

    def open_write(self, name: str) -> IO[bytes]:
        if self.state == "new":
            self._acquire()
        if self.state != "owner":
            return io.BufferedWriter(DiscardingWriter())  # lost the race: nothing is uploaded
        path = self._path(name)
        self.written.append(path)
        return io.BufferedWriter(_UploadWriter(self, path), buffer_size=1 << 20)

    def _path(self, name: str) -> str:
        if self.files_folder is None:
            return f"{self.artifact_dir}/{name}"
        return f"{self.artifact_dir}/{self.files_folder}/{name}"

    def upload(self, path: str, data: bytes) -> None:
        """Upload a whole file now, or with the other small files just before the commit."""
        if self.state != "owner":
            return
        if len(data) < _SMALL_FILE:
            self.pending[self.store._full(path)] = data
        elif self._still_owner():
            self.store._call("write into", self.store.fs.pipe_file, self.store._full(path), data)

    def _flush_pending(self) -> None:
        fs = self.store.fs
        if len(self.pending) > 1 and getattr(fs, "async_impl", False):
            # One concurrent batch on async filesystems such as s3fs.
            self.store._call("write into", fs.pipe, dict(self.pending))
        else:
            for full, data in self.pending.items():
                self.store._call("write into", fs.pipe_file, full, data)
        self.pending.clear()

    def commit(self, metadata: bytes) -> bool:
        if self.state == "new":
            self._acquire()
        if self.state != "owner":
            self.state = "done"
            return False
        try:
            # Checked before the small files go up and again before the marker: a writer
            # whose claim was taken over never writes into the other writer's folder.
            if not self._still_owner():
                return False
            self._flush_pending()
            if not self._still_owner():
                return False
            if self.files_folder is not None:
                return self._commit_replacement(naming_files_folder(metadata, self.files_folder))
            committed = self.store.put_exclusive(self.marker, metadata)
            if committed:
                self.store._remove(self.claim_path)
            else:
                self._release()
            return committed
        finally:
            self.state = "done"

    def _commit_replacement(self, metadata: bytes) -> bool:
        """Put the new ``metadata.json`` over the old one, then remove the old files."""
        store = self.store
        store._call("write into", store.fs.pipe_file, store._full(self.marker), metadata)
        store.fs.invalidate_cache(store._full(self.artifact_dir))
        ours = f"{self.artifact_dir}/{self.files_folder}/"
        # The old files, and those of replacements that died before their commit.
        for relative in store._find(self.artifact_dir):
            if relative != self.marker and not relative.startswith(ours):
                store._remove(relative)
        store._remove(self.claim_path)
        return True

    def _names_our_folder(self) -> bool:
        """Whether the committed ``metadata.json`` names this transaction's files folder."""
        committed = _read_owner(self.store, self.marker)
        return committed is not None and committed.get("files_folder") == self.files_folder

    def abort(self) -> None:
        self.pending.clear()
        if self.state == "owner" and self.files_folder is not None:
            self.state = "done"
            # Our own folder, unless a put that seemed to fail did commit it.
            if self._holds_claim() and not self._names_our_folder():
                for path in self.written:
                    self.store._remove(path)
                self.store._remove(self.claim_path)
        elif self.state == "owner":
            self.state = "done"
            if self._holds_claim() and not self.store.exists(self.marker):
                for path in self.written:
                    self.store._remove(path)
                self.store._remove(self.claim_path)
        else:
            self.state = "done"


class FsspecLeaseFiles(LeaseFiles):
    """Lease objects of an :class:`~persistable.store.FsspecStore` (S3: ``If-None-Match: *``).

    The create-if-absent is the store's own ``put_exclusive``, the primitive that also
    commits ``metadata.json``.
    """

    def __init__(self, store: FsspecStore) -> None:
        self.store = store

    def _full(self, path: str) -> str:
        return f"{self.store.root}/{path}"

    def create(self, path: str, data: bytes) -> bool:
        return self.store.put_exclusive(path, data)

    def read(self, path: str) -> bytes | None:
        try:
            return self.store.read_bytes(path)
        except FileNotFoundError:
            return None

    def overwrite(self, path: str, data: bytes) -> None:
        self.store.fs.pipe_file(self._full(path), data)

    def list_names(self, folder: str) -> list[str]:
        self.store.fs.invalidate_cache(self._full(folder))
        return self.store.list_dir(folder)

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.store.fs.rm_file(self._full(path))
