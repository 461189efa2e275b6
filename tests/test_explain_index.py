"""explain() on an object store: a shared lineage index spares a cold process one GET per artifact.

Requests are counted by the S3 server itself (moto's request recorder), in processes with
empty lineage caches, as a colleague's machine would start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from persistable import JsonFileIO, Persistable, PersistableParams
from persistable._lineage_cache import lineage_cache, parse_lineage
from persistable._lineage_index import MIN_NEW
from persistable.artifact import Artifact
from persistable.testing import moto_server

COUNT = MIN_NEW + 8
NAME = "indexed"  # the payload name of Indexed


@dataclass
class Two(PersistableParams):
    a: int
    b: int = 0


class Indexed(Persistable[int, Two]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return self.params.a


@dataclass
class Server:
    endpoint: str

    def api(self, action: str) -> str:
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/recorder/{action}", data=b"", method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return str(response.read().decode())

    def requests(self, bucket: str) -> list[tuple[str, str]]:
        """(method, path and query) of every recorded request to ``bucket``."""
        found = []
        for line in self.api("download-recording").splitlines():
            entry = json.loads(line)
            path = entry["url"].split("://", 1)[-1].partition("/")[2]
            if path.startswith(f"{bucket}/") or path == bucket or path.startswith(f"{bucket}?"):
                found.append((entry["method"], path))
        return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A moto_server of this module's own whose recorder writes into a temporary file."""
    recording = tmp_path_factory.mktemp("recorder") / "requests.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_RECORDER_FILEPATH", str(recording))
        with moto_server() as endpoint:
            yield Server(endpoint)


@pytest.fixture
def bucket(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import s3fs

    name = f"index-{time.monotonic_ns()}"
    s3fs.S3FileSystem(**_options(server), skip_instance_cache=True).mkdir(name)
    monkeypatch.setenv("PERSISTABLE_CACHE_DIR", str(tmp_path / "cache-of-the-test"))
    lineage_cache.clear_memory()
    yield name
    lineage_cache.clear_memory()


def _options(server: Server) -> dict[str, Any]:
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": server.endpoint},
    }


_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {tests!r})
    from test_explain_index import Indexed, Two
    from persistable import JsonFileIO
    explanation = Indexed({url!r}, Two(5, b=1), payload_io=JsonFileIO(),
                          storage_options=json.loads({options!r})).explain()
    print(json.dumps({{"nearest": explanation.nearest, "compared": explanation.compared,
                      "text": str(explanation)}}))
    """
)


def _explain_in_new_process(server: Server, bucket: str, cache: Path) -> dict[str, Any]:
    """explain() of Two(5, b=1) in a fresh Python process whose lineage cache is ``cache``."""
    script = _SCRIPT.format(
        tests=str(Path(__file__).parent),
        url=f"s3://{bucket}/cache",
        options=json.dumps(_options(server)),
    )
    env = {**os.environ, "PERSISTABLE_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _recorded(server: Server, bucket: str, run: Any) -> tuple[Any, list[tuple[str, str]]]:
    server.api("reset-recording")
    server.api("start-recording")
    try:
        result = run()
    finally:
        server.api("stop-recording")
    return result, server.requests(bucket)


def _object_gets(requests: list[tuple[str, str]]) -> list[str]:
    """Paths of GETs of objects (listings are GETs with a query and no object name)."""
    return [path for method, path in requests if method == "GET" and "list-type" not in path]


def _key(server: Server, bucket: str, params: Two) -> str:
    made = Indexed(
        f"s3://{bucket}/cache", params, payload_io=JsonFileIO(), storage_options=_options(server)
    )
    assert made.payload_name == NAME
    return made.key


def _fill(server: Server, bucket: str, params: list[Two]) -> None:
    """Generate the first artifact; the others are copies of its files with their own params.json.

    (explain() reads params.json, and metadata.json of the nearest: copies put in one batch
    keep the test short on a loaded machine.)
    """
    import s3fs

    made = [
        Indexed(
            f"s3://{bucket}/cache", item, payload_io=JsonFileIO(), storage_options=_options(server)
        )
        for item in params
    ]
    made[0].generate()
    fs = s3fs.S3FileSystem(**_options(server))
    source = f"{bucket}/cache/{NAME}/{made[0].key}"
    files = {path.rsplit("/", 1)[-1]: fs.cat(path) for path in fs.find(source)}
    copies = {}
    for item in made[1:]:
        for name, data in files.items():
            if name == "params.json":
                data = json.dumps(item.lineage(), indent=2).encode()
            copies[f"{bucket}/cache/{NAME}/{item.key}/{name}"] = data
    fs.pipe(copies)


def test_a_cold_process_reads_the_index_not_every_params_json(
    server: Server, bucket: str, tmp_path: Path
) -> None:
    _fill(server, bucket, [Two(index) for index in range(COUNT)])
    first, requests = _recorded(
        server, bucket, lambda: _explain_in_new_process(server, bucket, tmp_path / "cache-a")
    )
    params_reads = [path for path in _object_gets(requests) if path.endswith("/params.json")]
    assert len(params_reads) == COUNT, requests  # nobody had read them: each one once
    written = [path for method, path in requests if method == "PUT" and "/lineages/" in path]
    assert len(written) == 1, requests
    assert first["nearest"] == _key(server, bucket, Two(5))
    assert first["compared"] == COUNT

    second, requests = _recorded(
        server, bucket, lambda: _explain_in_new_process(server, bucket, tmp_path / "cache-b")
    )
    assert second == first
    gets = _object_gets(requests)
    assert not [path for path in gets if path.endswith("/params.json")], gets
    # The index object and the nearest artifact's metadata.json.
    assert len(gets) == 2, gets
    assert not [method for method, _ in requests if method in ("PUT", "POST", "DELETE")]


def test_deleted_uncommitted_and_new_artifacts(server: Server, bucket: str, tmp_path: Path) -> None:
    """The index may describe a deleted artifact: the live listing decides; new keys are read."""
    import s3fs

    _fill(server, bucket, [Two(index) for index in range(COUNT)])
    first = _explain_in_new_process(server, bucket, tmp_path / "cache-a")  # writes the index
    deleted = _key(server, bucket, Two(5))
    assert first["nearest"] == deleted
    url = f"s3://{bucket}/cache"
    store = Indexed(url, Two(5), storage_options=_options(server)).store
    assert Artifact(store, NAME, deleted).delete()
    # A folder being written (params.json, no metadata.json yet) nearer than any artifact.
    fs = s3fs.S3FileSystem(**_options(server))
    writing = _key(server, bucket, Two(5, b=3))
    fs.pipe(f"{bucket}/cache/{NAME}/{writing}/params.json", b'{"a": 5, "b": 3}')

    after, requests = _recorded(
        server, bucket, lambda: _explain_in_new_process(server, bucket, tmp_path / "cache-b")
    )
    assert after["nearest"] not in (deleted, writing), after
    assert after["compared"] == COUNT - 1, after
    assert deleted not in after["text"]
    # The index still holds the deleted key: the listing is what left it out.
    index = [path for path in _object_gets(requests) if "/lineages/" in path]
    assert len(index) == 1, requests
    record = json.loads(fs.cat(index[0]))
    assert deleted in record["lineages"]

    Indexed(url, Two(5, b=2), payload_io=JsonFileIO(), storage_options=_options(server)).generate()
    new = _key(server, bucket, Two(5, b=2))
    latest, requests = _recorded(
        server, bucket, lambda: _explain_in_new_process(server, bucket, tmp_path / "cache-c")
    )
    assert latest["nearest"] == new, latest
    assert "params.b: 2 -> 1" in latest["text"], latest["text"]
    params_reads = [path for path in _object_gets(requests) if path.endswith("/params.json")]
    assert sorted(params_reads) == sorted(
        f"{bucket}/cache/{NAME}/{key}/params.json" for key in (new, writing)
    ), params_reads


def test_an_index_object_that_does_not_match_its_name_is_ignored(
    server: Server, bucket: str, tmp_path: Path
) -> None:
    """A torn or edited index object (content not hashing to its name) is never believed."""
    import s3fs

    params = [Two(index) for index in range(COUNT)]
    _fill(server, bucket, params)
    # A forged index saying that every artifact holds a = 5, b = 1: if believed, explain()
    # would find nothing that differs.
    forged = {
        "format": 1,
        "payload_name": NAME,
        "lineages": {_key(server, bucket, item): {"a": 5, "b": 1} for item in params},
    }
    fs = s3fs.S3FileSystem(**_options(server))
    name = "0" * 64
    fs.pipe(f"{bucket}/cache/.persistable/lineages/{NAME}/{name}.json", json.dumps(forged).encode())
    answer = _explain_in_new_process(server, bucket, tmp_path / "cache-a")
    assert answer["nearest"] == _key(server, bucket, Two(5))
    assert "params.b: 0 -> 1" in answer["text"], answer["text"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}\n', {"a": 1}),
        (' \n{"a": 1}', {"a": 1}),
        ('{"a": 1} {"b": 2}', None),
        ('{"a": 1}\u00a0', None),
        ("[1]", None),
        ('{"a": ', None),
        ("", None),
    ],
)
def test_parse_lineage_takes_what_json_loads_takes(text: str, expected: Any) -> None:
    assert parse_lineage(text) == expected
