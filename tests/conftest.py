"""Shared fixtures: temporary stores of every kind."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persistable.store import LocalStore, MemoryStore
from persistable.testing import moto_server


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    """A local store in a fresh temporary folder."""
    return LocalStore(tmp_path / "store")


@pytest.fixture
def memory_store(request: pytest.FixtureRequest) -> Iterator[MemoryStore]:
    """A memory store private to one test."""
    name = f"test-{request.node.nodeid}"
    store = MemoryStore(name)
    yield store
    MemoryStore.clear(name)


@pytest.fixture(params=["local", "memory"])
def local_or_memory_store(request: pytest.FixtureRequest) -> LocalStore | MemoryStore:
    """Each test that asks for it runs once on a local store and once on a memory store."""
    store: LocalStore | MemoryStore = request.getfixturevalue(f"{request.param}_store")
    return store


@pytest.fixture(scope="session", autouse=True)
def _forget_lineage_index_entries() -> Iterator[None]:
    """At the end, drop index entries still buffered: their loopback servers are gone."""
    yield
    from persistable import _lineage_feed

    _lineage_feed.discard()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto_server) on a free loopback port, for the whole session."""
    with moto_server() as endpoint:
        yield endpoint


_bucket_numbers = itertools.count()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Dummy AWS credentials and the loopback endpoint in the environment of this test only."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return env


@pytest.fixture
def s3_bucket(s3_endpoint: str, s3_env: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """A fresh empty bucket: ``(url, storage_options)`` for ``s3://<bucket>/cache``."""
    import s3fs

    storage_options: dict[str, Any] = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3_endpoint},
    }
    bucket = f"test-bucket-{next(_bucket_numbers)}-{time.monotonic_ns()}"
    s3fs.S3FileSystem(**storage_options, skip_instance_cache=True).mkdir(bucket)
    return f"s3://{bucket}/cache", storage_options


@pytest.fixture
def module_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on sys.path for temporary user modules."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
