"""Writers feed the shared lineage index: the first explain() after a run reads a few objects.

Requests are counted by the S3 server itself (moto's request recorder); explain() runs in
a fresh process with an empty lineage cache, as on a colleague's machine, unless a test
needs to change a module constant.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import persistable
from persistable import JsonFileIO, Persistable, PersistableParams
from persistable import _lineage_feed as feed
from persistable import _lineage_index as shared_index
from persistable._lineage_cache import lineage_cache
from persistable.artifact import Artifact
from persistable.testing import moto_server

pytestmark = pytest.mark.s3

COUNT = shared_index.MIN_NEW + 8
NAME = "fed"  # the payload name of Fed
DENIED = "denied-index"  # the bucket whose index folder the writer may not write


@dataclass
class Two(PersistableParams):
    a: int
    b: int = 0


class Fed(Persistable[int, Two]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return self.params.a


@dataclass
class Server:
    endpoint: str
    options: dict[str, Any]

    def api(self, action: str) -> str:
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/recorder/{action}", data=b"", method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return str(response.read().decode())

    def recorded(self, bucket: str, call: Callable[[], Any]) -> tuple[Any, list[tuple[str, str]]]:
        """What ``call`` returns, and (method, path) of each request to ``bucket`` meanwhile."""
        self.api("reset-recording")
        self.api("start-recording")
        try:
            result = call()
        finally:
            self.api("stop-recording")
        found = []
        for line in self.api("download-recording").splitlines():
            entry = json.loads(line)
            path = entry["url"].split("://", 1)[-1].partition("/")[2]
            if path.startswith(f"{bucket}/") or path == bucket or path.startswith(f"{bucket}?"):
                found.append((entry["method"], path))
        return result, found


def _options(endpoint: str, key: str = "testing", secret: str = "testing") -> dict[str, Any]:
    return {"key": key, "secret": secret, "client_kwargs": {"endpoint_url": endpoint}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A moto_server of this module's own whose recorder writes into a temporary file."""
    recording = tmp_path_factory.mktemp("recorder") / "requests.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_RECORDER_FILEPATH", str(recording))
        with moto_server() as endpoint:
            yield Server(endpoint, _options(endpoint))
    feed.discard()  # entries of this server's buckets that nobody wrote


@pytest.fixture
def bucket(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import s3fs

    name = f"fed-{time.monotonic_ns()}"
    s3fs.S3FileSystem(**server.options, skip_instance_cache=True).mkdir(name)
    monkeypatch.setenv("PERSISTABLE_CACHE_DIR", str(tmp_path / "cache-of-the-test"))
    lineage_cache.clear_memory()
    yield name
    lineage_cache.clear_memory()
    feed.discard()  # what a test left buffered (it deleted nothing)


def _fed(bucket: str, params: Two, options: dict[str, Any]) -> Fed:
    return Fed(f"s3://{bucket}/cache", params, payload_io=JsonFileIO(), storage_options=options)


def _env(cache: Path) -> dict[str, str]:
    tests = str(Path(__file__).parent)
    path = os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PERSISTABLE_CACHE_DIR": str(cache), "PYTHONPATH": path}


def _python(code: str, cache: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=_env(cache),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _explain_in_new_process(server: Server, bucket: str, cache: Path) -> dict[str, Any]:
    """explain() of Two(5, b=1) in a fresh Python process whose lineage cache is ``cache``."""
    out = _python(
        f"""
        import json
        from test_explain_index_writers import Two, _fed
        explanation = _fed({bucket!r}, Two(5, b=1), json.loads({json.dumps(server.options)!r}))
        explanation = explanation.explain()
        print(json.dumps({{"nearest": explanation.nearest, "compared": explanation.compared,
                          "text": str(explanation)}}))
        """,
        cache,
    )
    answer: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return answer


def _object_gets(requests: list[tuple[str, str]]) -> list[str]:
    """Paths of GETs of objects (listings are GETs with a query and no object name)."""
    return [path for method, path in requests if method == "GET" and "list-type" not in path]


def _index_objects(server: Server, bucket: str) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem(**server.options, skip_instance_cache=True)
    folder = f"{bucket}/cache/.persistable/lineages/{NAME}"
    return sorted(fs.find(folder))


def _reads_the_index_only(server: Server, bucket: str, cache: Path, objects: int) -> dict[str, Any]:
    """A fresh process's explain(): no params.json read, ``objects`` index objects, nothing written."""
    answer, requests = server.recorded(
        bucket, lambda: _explain_in_new_process(server, bucket, cache)
    )
    gets = _object_gets(requests)
    assert not [path for path in gets if path.endswith("/params.json")], gets
    assert len([path for path in gets if "/lineages/" in path]) == objects, gets
    # Besides the index: the nearest artifact's metadata.json.
    assert len(gets) == objects + 1, gets
    assert not [method for method, _ in requests if method in ("PUT", "POST", "DELETE")]
    assert isinstance(answer, dict)
    return answer


@pytest.fixture
def dask_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Client of a LocalCluster with two worker processes (which import this module)."""
    distributed: Any = importlib.import_module("distributed")
    monkeypatch.setenv("PYTHONPATH", _env(Path())["PYTHONPATH"])
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.mark.parametrize(
    "executor", ["serial", "processes", pytest.param("dask", marks=pytest.mark.dask)]
)
def test_after_a_run_the_first_explain_reads_the_index(
    server: Server, bucket: str, tmp_path: Path, request: pytest.FixtureRequest, executor: str
) -> None:
    """Worker processes send what they committed back; the run writes it once, at its end."""
    nodes = [_fed(bucket, Two(index), server.options) for index in range(COUNT)]
    where: Any = request.getfixturevalue("dask_client") if executor == "dask" else executor
    report = persistable.run(nodes, executor=where, max_workers=2)
    assert len(report.generated) == COUNT
    assert feed.pending() == 0
    assert len(_index_objects(server, bucket)) == 1  # written once, at the end of the run

    answer = _reads_the_index_only(server, bucket, tmp_path / "cache-a", objects=1)
    assert answer["nearest"] == nodes[5].key
    assert answer["compared"] == COUNT
    assert "params.b: 0 -> 1" in answer["text"], answer["text"]


def test_commits_outside_a_run_are_written_at_exit(
    server: Server, bucket: str, tmp_path: Path
) -> None:
    out = _python(
        f"""
        import json
        from test_explain_index_writers import Two, _fed
        options = json.loads({json.dumps(server.options)!r})
        for index in range({COUNT}):
            _fed({bucket!r}, Two(index), options).load_generate()
        print("committed")
        """,
        tmp_path / "cache-writer",
    )
    assert out.strip() == "committed"
    assert len(_index_objects(server, bucket)) == 1  # by the exit hook

    answer = _reads_the_index_only(server, bucket, tmp_path / "cache-a", objects=1)
    assert answer["nearest"] == _fed(bucket, Two(5), server.options).key
    assert answer["compared"] == COUNT


def test_a_full_buffer_is_written_by_the_commit_that_fills_it(
    server: Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "THRESHOLD", 8)
    for index in range(20):
        _fed(bucket, Two(index), server.options).load_generate()
    assert len(_index_objects(server, bucket)) == 2
    assert feed.pending() == 4
    feed.flush()  # as at the end of a run: one object for them all, the two deleted
    assert feed.pending() == 0
    (written,) = _index_objects(server, bucket)
    import s3fs

    record = json.loads(s3fs.S3FileSystem(**server.options, skip_instance_cache=True).cat(written))
    assert sorted(record["lineages"]) == sorted(
        _fed(bucket, Two(index), server.options).key for index in range(20)
    )
    _reads_the_index_only(server, bucket, tmp_path / "cache-a", objects=1)


def test_a_run_longer_than_the_buffer_leaves_one_object(
    server: Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "THRESHOLD", 8)
    nodes = [_fed(bucket, Two(index), server.options) for index in range(COUNT)]
    persistable.run(nodes, executor="threads", max_workers=2)
    assert len(_index_objects(server, bucket)) == 1
    answer = _reads_the_index_only(server, bucket, tmp_path / "cache-a", objects=1)
    assert answer["compared"] == COUNT


def test_explain_merges_many_index_objects_into_one(
    server: Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "THRESHOLD", 4)
    monkeypatch.setattr(shared_index, "MAX_OBJECTS", 4)
    for index in range(COUNT):
        _fed(bucket, Two(index), server.options).load_generate()
    assert len(_index_objects(server, bucket)) == COUNT // 4
    lineage_cache.clear_memory()
    monkeypatch.setenv("PERSISTABLE_CACHE_DIR", str(tmp_path / "cold"))
    explanation = _fed(bucket, Two(5, b=1), server.options).explain()
    assert explanation.nearest == _fed(bucket, Two(5), server.options).key
    assert explanation.compared == COUNT
    merged = _index_objects(server, bucket)
    assert len(merged) == 1, merged
    _reads_the_index_only(server, bucket, tmp_path / "cache-b", objects=1)


def test_a_deleted_artifact_is_never_described_from_the_index(
    server: Server, bucket: str, tmp_path: Path
) -> None:
    nodes = [_fed(bucket, Two(index), server.options) for index in range(COUNT)]
    persistable.run(nodes)
    deleted = nodes[5].key
    assert Artifact(nodes[5].store, NAME, deleted).delete()
    (index,) = _index_objects(server, bucket)
    import s3fs

    record = json.loads(s3fs.S3FileSystem(**server.options, skip_instance_cache=True).cat(index))
    assert deleted in record["lineages"]  # the index still holds it: the listing decides

    answer = _reads_the_index_only(server, bucket, tmp_path / "cache-a", objects=1)
    assert answer["nearest"] != deleted
    assert answer["compared"] == COUNT - 1
    assert deleted[:15] not in answer["text"]


# -- an index folder that the writer may not write -------------------------------------


@pytest.fixture(scope="module")
def denying_server() -> Iterator[dict[str, Any]]:
    """A moto_server checking IAM: its only user may write anything but the lineage index."""
    import boto3

    with pytest.MonkeyPatch.context() as patch:
        # The first requests (creating the user, its key and policy) go unauthenticated.
        patch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3")
        with moto_server() as endpoint:
            iam = boto3.client(
                "iam",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            iam.create_user(UserName="writer")
            key = iam.create_access_key(UserName="writer")["AccessKey"]
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                    {
                        "Effect": "Deny",
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{DENIED}/*/.persistable/lineages/*",
                    },
                ],
            }
            iam.put_user_policy(
                UserName="writer", PolicyName="no-index", PolicyDocument=json.dumps(policy)
            )
            yield _options(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    feed.discard()


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_an_unwritable_index_folder_leaves_the_commits_intact(
    denying_server: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    executor: str,
) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(**denying_server, skip_instance_cache=True)
    if not fs.exists(DENIED):
        fs.mkdir(DENIED)
    where = f"{DENIED}/{executor}"  # a folder of the bucket per test
    with pytest.raises(PermissionError):  # the policy holds
        fs.pipe(f"{where}/cache/.persistable/lineages/{NAME}/x.json", b"{}")
    monkeypatch.setenv("PERSISTABLE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(feed, "THRESHOLD", 8)  # writes during the commits, too
    lineage_cache.clear_memory()
    nodes = [_fed(where, Two(index), denying_server) for index in range(COUNT)]
    caplog.set_level(logging.DEBUG, logger=shared_index.__name__)
    report = persistable.run(nodes, executor=executor, raise_on_failure=True)
    assert len(report.generated) == COUNT
    assert feed.pending() == 0
    refused = [r for r in caplog.records if "cannot add to the lineage index" in r.getMessage()]
    assert len(refused) == -(-COUNT // 8)  # each full buffer, and what is left at the end
    assert not fs.exists(f"{where}/cache/.persistable/lineages")
    for node in nodes:
        again = _fed(where, node.params, denying_server)
        again.load(verify=True)
        assert again.payload == node.params.a
    lineage_cache.clear_memory()
    explanation = _fed(where, Two(5, b=1), denying_server).explain()
    assert explanation.nearest == nodes[5].key
    assert explanation.compared == COUNT
    assert not fs.exists(f"{where}/cache/.persistable/lineages")  # explain() could not either
    lineage_cache.clear_memory()


# -- samples.map ---------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_a_map_feeds_the_index_of_each_step(
    server: Server, bucket: str, monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    """Each cached or saved step's payload name gets an index holding every key it committed."""
    import s3fs
    from _samples_nodes import Add, Number, Scale

    from persistable.samples import Cache, Compose, Save

    monkeypatch.setenv("PYTHONPATH", _env(Path())["PYTHONPATH"])
    samples = [Number(id=f"s{index:03d}", value=float(index)) for index in range(12)]
    pipeline = Compose([Cache(Scale(factor=2.0)), Add(step=1.0), Save()])
    results = pipeline.map(
        samples,
        store=f"s3://{bucket}/cache",
        storage_options=server.options,
        executor=executor,
        max_workers=2,
    )
    assert [sample.value for sample in results] == [2.0 * index + 1.0 for index in range(12)]
    assert feed.pending() == 0
    fs = s3fs.S3FileSystem(**server.options, skip_instance_cache=True)
    names = [
        path.rsplit("/", 1)[-1]
        for path in fs.ls(f"{bucket}/cache", detail=False)
        if not path.endswith("/.persistable")
    ]
    assert len(names) == 2, names
    for name in names:
        keys = {path.rsplit("/", 1)[-1] for path in fs.ls(f"{bucket}/cache/{name}", detail=False)}
        assert len(keys) == len(samples)
        (index,) = fs.find(f"{bucket}/cache/.persistable/lineages/{name}")
        record = json.loads(fs.cat(index))
        assert set(record["lineages"]) == keys
        for key, tree in record["lineages"].items():
            assert tree == json.loads(fs.cat(f"{bucket}/cache/{name}/{key}/params.json"))


def test_a_sync_to_the_object_store_feeds_its_index(
    server: Server, bucket: str, tmp_path: Path
) -> None:
    """Artifacts copied into an object store are indexed as if committed there."""
    import s3fs

    local = tmp_path / "local"
    for index in range(COUNT):
        Fed(local, Two(index), payload_io=JsonFileIO()).generate()
    report = persistable.sync(local, f"s3://{bucket}/cache", dst_storage_options=server.options)
    assert len(report.copied) == COUNT
    assert feed.pending() == 0
    fs = s3fs.S3FileSystem(**server.options, skip_instance_cache=True)
    (written,) = _index_objects(server, bucket)
    record = json.loads(fs.cat(written))
    keys = {path.rsplit("/", 1)[-1] for path in fs.ls(f"{bucket}/cache/{NAME}", detail=False)}
    assert set(record["lineages"]) == keys
    answer = _reads_the_index_only(server, bucket, tmp_path / "cache-a", objects=1)
    assert answer["nearest"] == _fed(bucket, Two(5), server.options).key
