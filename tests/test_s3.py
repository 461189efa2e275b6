"""Persistables on S3 (the loopback moto server) and the fsspec store's commit, errors and retries."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.registry import register_implementation

from persistable import NpyFileIO, Persistable, PersistableParams, make_store
from persistable.exceptions import (
    ArtifactNotFoundError,
    MissingDependencyError,
    QuarantineWarning,
    ReadOnlyStoreError,
    StoreAccessDeniedError,
    StoreConfigurationError,
)
from persistable.store import FsspecStore, LocalStore

TESTS = Path(__file__).resolve().parent

S3Bucket = tuple[str, dict[str, Any]]


@dataclass
class WaveParams(PersistableParams):
    """Length and frequency of a sine wave."""

    n: int
    frequency: float = 1.0


class Wave(Persistable[np.ndarray[Any, np.dtype[np.float64]], WaveParams]):
    """A sine wave; counts how often it is generated."""

    default_payload_io = NpyFileIO()
    generated: ClassVar[int] = 0

    def _generate_payload(self, **untracked_payload_params: Any) -> np.ndarray[Any, Any]:
        type(self).generated += 1
        return np.sin(np.linspace(0, self.params.frequency, self.params.n))


@pytest.mark.s3
def test_same_code_same_key_on_s3_and_local(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    """Changing data_dir from a folder to an s3:// URL keeps the key and the artifact layout."""
    url, options = s3_bucket
    local = Wave(tmp_path, WaveParams(n=100))
    remote = Wave(url, WaveParams(n=100), storage_options=options)
    assert remote.key == local.key
    local.load_generate()
    remote.load_generate()
    assert remote.artifact_path == f"{url}/wave/{remote.key}"
    store = remote.store
    assert sorted(store.list_dir(remote.artifact_dir)) == sorted(
        p.name for p in Path(str(local.artifact_path)).iterdir()
    )
    reloaded = Wave(url, WaveParams(n=100), storage_options=options)
    before = Wave.generated
    reloaded.load(verify=True)
    reloaded.verify()
    assert Wave.generated == before
    np.testing.assert_array_equal(reloaded.payload, local.payload)


@pytest.mark.s3
def test_second_conditional_put_fails_on_the_server(s3_bucket: S3Bucket) -> None:
    """The S3 server refuses a second If-None-Match put, which is what makes the first committer win."""
    url, options = s3_bucket
    store = make_store(url, storage_options=options)
    assert isinstance(store, FsspecStore)
    assert store.put_exclusive("p/k/metadata.json", b"first") is True
    assert store.put_exclusive("p/k/metadata.json", b"second") is False
    assert store.read_bytes("p/k/metadata.json") == b"first"


@pytest.mark.s3
def test_interrupted_s3_commit_leaves_nothing_visible(
    s3_bucket: S3Bucket, s3_endpoint: str
) -> None:
    """A writer killed after uploading the payload but before metadata.json leaves no artifact;
    a later load_generate cleans up and commits."""
    sys.path.insert(0, str(TESTS))
    try:
        from s3_interrupt_worker import Ramp, RampParams
    finally:
        sys.path.remove(str(TESTS))
    url, options = s3_bucket
    worker = subprocess.run(
        [sys.executable, str(TESTS / "s3_interrupt_worker.py"), url, s3_endpoint],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert worker.returncode == -9, worker.stderr
    assert worker.stdout == "uploaded\n"
    ramp = Ramp(url, RampParams(n=400_000), storage_options=options)
    store = ramp.store
    # The payload bytes are on the server, but without metadata.json they are no artifact.
    assert store.exists(f"{ramp.artifact_dir}/{ramp.payload_file}")
    assert not store.has_artifact(ramp.payload_name, ramp.key)
    assert store.list_keys(ramp.payload_name) == []
    assert list(store.iter_artifacts()) == []
    with pytest.raises(ArtifactNotFoundError):
        ramp.load()
    ramp.load_generate()  # the dead writer's claim is recognised as abandoned
    assert ramp.payload == list(range(400_000))
    assert store.list_keys(ramp.payload_name) == [ramp.key]
    fresh = Ramp(url, RampParams(n=400_000), storage_options=options)
    fresh.load(verify=True)
    fresh.verify()
    assert store.list_dir(".persistable/claims/ramp") == []


@pytest.mark.s3
def test_concurrent_processes_commit_one_artifact(s3_bucket: S3Bucket, s3_endpoint: str) -> None:
    """Three processes persisting the same key at once leave one complete, verifiable artifact."""
    url, options = s3_bucket
    code = (
        "import sys; sys.path.insert(0, sys.argv[3]);"
        "from s3_interrupt_worker import Ramp, RampParams, storage_options;"
        "r = Ramp(sys.argv[1], RampParams(n=50000), storage_options=storage_options(sys.argv[2]));"
        "r.generate()"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", code, url, s3_endpoint, str(TESTS)])
        for _ in range(3)
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0]
    sys.path.insert(0, str(TESTS))
    try:
        from s3_interrupt_worker import Ramp, RampParams
    finally:
        sys.path.remove(str(TESTS))
    ramp = Ramp(url, RampParams(n=50000), storage_options=options)
    ramp.verify()
    ramp.load()
    assert ramp.payload == list(range(50000))
    assert ramp.store.list_keys("ramp") == [ramp.key]


@pytest.mark.s3
def test_corrupt_s3_artifact_is_quarantined_and_regenerated(s3_bucket: S3Bucket) -> None:
    """A payload changed on S3 after its commit is moved aside (copy + delete) and regenerated."""
    url, options = s3_bucket
    wave = Wave(url, WaveParams(n=64), storage_options=options)
    wave.load_generate()
    store = wave.store
    assert isinstance(store, FsspecStore)
    payload_path = f"{wave.artifact_dir}/{wave.payload_file}"
    data = bytearray(store.read_bytes(payload_path))
    data[-1] ^= 0xFF
    store.fs.pipe_file(store._full(payload_path), bytes(data))
    fresh = Wave(url, WaveParams(n=64), storage_options=options)
    with pytest.warns(QuarantineWarning, match="Moved the corrupt artifact"):
        fresh.load_generate()
    np.testing.assert_array_equal(fresh.payload, wave.payload)
    Wave(url, WaveParams(n=64), storage_options=options).load(verify=True)
    quarantined = store.list_dir(".persistable/quarantine/wave")
    assert len(quarantined) == 1
    assert quarantined[0].startswith(wave.key)


@pytest.mark.s3
def test_missing_bucket_fails_before_generating(s3_bucket: S3Bucket) -> None:
    """A bucket that does not exist is named in a clear error raised before any generation."""
    _, options = s3_bucket
    missing = f"s3://no-such-bucket-{uuid.uuid4().hex[:12]}/cache"
    wave = Wave(missing, WaveParams(n=3), storage_options=options)
    before = Wave.generated
    with pytest.raises(StoreConfigurationError, match="does not exist") as caught:
        wave.load_generate()
    assert missing in str(caught.value)
    assert Wave.generated == before


@pytest.mark.s3
def test_missing_credentials_name_the_url_and_the_fix(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without any credentials, writing fails with an error naming the URL and how to give them."""
    url, options = s3_bucket
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    no_keys = {"client_kwargs": options["client_kwargs"], "skip_instance_cache": True}
    wave = Wave(url, WaveParams(n=3), storage_options=no_keys)
    with pytest.raises(StoreConfigurationError, match="No credentials") as caught:
        wave.load_generate()
    assert url in str(caught.value)
    assert "AWS_ACCESS_KEY_ID" in str(caught.value)


@pytest.mark.s3
def test_wrong_endpoint_is_reported(s3_env: dict[str, str]) -> None:
    """An endpoint where no server listens gives an error naming the endpoint to check."""
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"},
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
    }
    store = make_store("s3://bucket/cache", storage_options=options)
    with pytest.raises(StoreConfigurationError, match="Could not reach") as caught:
        store.check_writable()
    assert "http://127.0.0.1:9" in str(caught.value)


def make_public(url: str, options: dict[str, Any]) -> None:
    """Let anonymous clients list the bucket of ``url`` and read its objects (public-read ACLs)."""
    import boto3  # the owner's side of the test, straight to the S3 API

    bucket = url.removeprefix("s3://").split("/", 1)[0]
    client = boto3.client(
        "s3",
        aws_access_key_id=options["key"],
        aws_secret_access_key=options["secret"],
        endpoint_url=options["client_kwargs"]["endpoint_url"],
        region_name="us-east-1",
    )
    client.put_bucket_acl(Bucket=bucket, ACL="public-read")
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        client.put_object_acl(Bucket=bucket, Key=item["Key"], ACL="public-read")


@pytest.mark.s3
def test_anonymous_store_is_read_only(s3_bucket: S3Bucket) -> None:
    """An anonymous S3 store loads existing artifacts and refuses to generate, before any work."""
    url, options = s3_bucket
    Wave(url, WaveParams(n=10), storage_options=options).load_generate()
    anonymous = {"anon": True, "client_kwargs": options["client_kwargs"]}
    store = make_store(url, storage_options=anonymous)
    assert store.read_only
    with pytest.raises(StoreAccessDeniedError, match="Access denied to read"):
        Wave(store, WaveParams(n=10)).load()
    make_public(url, options)
    loaded = Wave(store, WaveParams(n=10))
    loaded.load()
    assert loaded.payload.shape == (10,)
    before = Wave.generated
    with pytest.raises(ReadOnlyStoreError, match=url):
        Wave(store, WaveParams(n=11)).load_generate()
    assert Wave.generated == before


def test_s3_without_s3fs_gives_the_install_hint() -> None:
    """When s3fs cannot be imported, an s3:// data_dir fails with the pip command to run."""
    code = (
        "import sys; sys.modules['s3fs'] = None\n"
        "from persistable import make_store\n"
        "from persistable.exceptions import MissingDependencyError\n"
        "try:\n"
        "    make_store('s3://bucket/cache')\n"
        "except MissingDependencyError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'persistable[s3]'" in result.stdout
    assert issubclass(MissingDependencyError, ImportError)


def test_import_persistable_does_not_import_fsspec() -> None:
    """fsspec and s3fs are imported only when a URL store is opened."""
    code = (
        "import sys, persistable, persistable.store\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'fsspec', 's3fs', 'boto3', 'botocore'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


class FlakyMemoryFileSystem(MemoryFileSystem):  # type: ignore[misc]
    """fsspec's memory filesystem whose reads and writes time out once every other call."""

    protocol = "flakymem"
    calls: ClassVar[int] = 0

    def _maybe_fail(self) -> None:
        type(self).calls += 1
        if type(self).calls % 2:
            raise TimeoutError("simulated network timeout")

    def cat_file(self, path: str, start: Any = None, end: Any = None, **kwargs: Any) -> Any:
        self._maybe_fail()
        return super().cat_file(path, start, end, **kwargs)

    def pipe_file(self, path: str, value: Any, mode: str = "overwrite", **kwargs: Any) -> Any:
        self._maybe_fail()
        return super().pipe_file(path, value, mode=mode, **kwargs)


def test_transient_errors_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    """Timeouts on reads and writes are retried with backoff and the artifact still round-trips."""
    register_implementation("flakymem", FlakyMemoryFileSystem, clobber=True)
    store = FsspecStore(f"flakymem://retry-{uuid.uuid4().hex}", retries=3)
    wave = Wave(store, WaveParams(n=20))
    wave.load_generate()
    again = Wave(store, WaveParams(n=20))
    again.load(verify=True)
    np.testing.assert_array_equal(again.payload, wave.payload)
    assert FlakyMemoryFileSystem.calls > 4
    assert "retry 1 of 3" in caplog.text


def test_fsspec_file_url_is_a_local_store(tmp_path: Path) -> None:
    """file:// URLs use the local store with its rename commit and memory-mapped reads."""
    assert isinstance(make_store(f"file://{tmp_path}"), LocalStore)


def test_a_claim_of_another_host_is_waited_for_then_taken_over() -> None:
    """A writer finding a live-looking claim from another host waits until it is older than
    claim_ttl, then takes it over, removes the leftovers and commits."""
    store = FsspecStore(f"memory://claims-{uuid.uuid4().hex}", claim_ttl=0.6)
    wave = Wave(store, WaveParams(n=8))
    claim = {"txid": "other", "host": "another-host", "pid": 1, "time": time.time()}
    store.fs.pipe_file(
        store._full(f".persistable/claims/{wave.artifact_dir}.json"), json.dumps(claim).encode()
    )
    store.fs.pipe_file(store._full(f"{wave.artifact_dir}/payload.npy"), b"half an upload")
    started = time.monotonic()
    wave.load_generate()
    assert time.monotonic() - started >= 0.5
    again = Wave(store, WaveParams(n=8))
    again.load(verify=True)
    assert store.list_dir(".persistable/claims/wave") == []


def test_a_writer_whose_claim_was_taken_over_writes_nothing_more() -> None:
    """A stalled writer (older than claim_ttl) is taken over: it neither commits nor
    overwrites the new holder's files, at its next write or at its commit."""
    store = FsspecStore(f"memory://takeover-{uuid.uuid4().hex}", claim_ttl=0.4)
    stalled = store.begin("p/k")
    with stalled.open_write("payload.bin") as stream:
        stream.write(b"stalled writer")
    time.sleep(0.5)  # the stalled writer's claim is now older than claim_ttl
    with store.begin("p/k") as winner:
        with winner.open_write("payload.bin") as stream:
            stream.write(b"second writer")
        with stalled.open_write("extra.bin") as late:
            late.write(b"late bytes")  # the stalled writer notices here and writes nothing
        assert stalled.commit(b'{"tag": "stalled"}') is False
        assert winner.commit(b'{"tag": "winner"}') is True
    assert store.read_metadata("p", "k") == {"tag": "winner"}
    assert store.read_bytes("p/k/payload.bin") == b"second writer"
    assert not store.exists("p/k/extra.bin")


def test_a_stalled_writer_finds_out_at_its_commit() -> None:
    """Taken over with its small payload still in memory, the stalled writer's commit
    returns False without uploading it over the new holder's file."""
    store = FsspecStore(f"memory://takeover-{uuid.uuid4().hex}", claim_ttl=0.4)
    stalled = store.begin("p/k")
    with stalled.open_write("payload.bin") as stream:
        stream.write(b"stalled writer")
    time.sleep(0.5)
    winner = store.begin("p/k")
    with winner.open_write("payload.bin") as stream:
        stream.write(b"second writer")
    assert stalled.commit(b'{"tag": "stalled"}') is False
    assert winner.commit(b'{"tag": "winner"}') is True
    assert store.read_metadata("p", "k") == {"tag": "winner"}
    assert store.read_bytes("p/k/payload.bin") == b"second writer"
