"""Replacing an artifact while others read it, and a replace killed half-way.

Readers in other processes always get a whole artifact, old or new: never "not
found", never a payload of one write with the log of another. A writer killed while
it writes the replacement leaves the old artifact as it was.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from persistable import BytesFileIO
from persistable.artifact import Artifact
from persistable.store import Store, make_store

WORKER = Path(__file__).with_name("replace_reader_worker.py")


def _start(spec: dict[str, Any], env: dict[str, str] | None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _files(store: Store, folder: str) -> set[str]:
    """Every file under ``folder`` (a name with nothing under it is a file)."""
    found: set[str] = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        for name in store.list_dir(current):
            path = f"{current}/{name}"
            if store.list_dir(path):
                pending.append(path)
            else:
                found.add(path)
    return found


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _first_commit(url: str, options: dict[str, Any] | None, env: dict[str, str] | None) -> str:
    """Replace (or first commit) the key in this process: one interpreter start less."""
    from replace_reader_worker import OneKeyParams, Replaced

    del env  # the S3 tests' environment is this process's too
    store = make_store(url, storage_options=options)
    item = Replaced(store, OneKeyParams(), payload_io=BytesFileIO())
    item.generate()
    return item.payload[:64].decode().strip()


def _readers_during_replaces(
    url: str, options: dict[str, Any] | None, env: dict[str, str] | None, tmp_path: Path
) -> None:
    first = _first_commit(url, options, env)
    stop = tmp_path / "stop"
    base = {"url": url, "storage_options": options}
    readers = [
        _start({**base, "role": "reader", "tag": "r", "stop": str(stop), "pause": 0.02}, env)
        for _ in range(6)
    ]
    writers = [
        _start({**base, "role": "writer", "tag": f"w{i}", "steps": 4}, env) for i in range(2)
    ]
    written = {first}
    for writer in writers:
        out, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err
        written |= {line["header"] for line in _lines(out)}
    stop.touch()
    outcomes = []
    for reader in readers:
        out, err = reader.communicate(timeout=600)
        assert reader.returncode == 0, err
        outcomes += _lines(out)
    assert len(written) == 9
    assert len(outcomes) >= 6
    assert [o for o in outcomes if "load_error" in o] == []
    assert all(o["load_whole"] for o in outcomes)
    assert {o["header"] for o in outcomes} <= written
    handled = [o for o in outcomes if "handle_error" not in o]
    assert all(o["handle_whole"] and o["log_matches"] for o in handled)
    # A handle whose files a later replace removed says so; nothing else goes wrong.
    assert [
        o
        for o in outcomes
        if "handle_error" in o
        and "was replaced or deleted since it was read" not in o["handle_error"]
    ] == []
    assert len(handled) >= len(outcomes) // 2
    store = make_store(url, storage_options=options)
    (key,) = store.list_keys("replaced")
    artifact = Artifact(store, "replaced", key)
    artifact.verify()
    # Only the files of the last replacement are left in the artifact's folder.
    assert _files(store, artifact.dir) == {
        f"{artifact.dir}/metadata.json",
        *(artifact.path(name) for name in artifact.files),
    }


@pytest.mark.s3
def test_readers_on_s3_get_whole_artifacts_while_it_is_replaced(
    s3_bucket: tuple[str, dict[str, Any]], s3_env: dict[str, str], tmp_path: Path
) -> None:
    """Six readers load while two writers replace one key on S3: every read is one whole write."""
    url, options = s3_bucket
    _readers_during_replaces(url, options, {**os.environ, **s3_env}, tmp_path)


def test_readers_on_a_local_store_get_whole_artifacts_while_it_is_replaced(
    tmp_path: Path,
) -> None:
    """The same on a local folder (one folder exchange per replace)."""
    _readers_during_replaces(str(tmp_path / "store"), None, None, tmp_path)


def _kill_during_replace(
    url: str, options: dict[str, Any] | None, env: dict[str, str] | None
) -> None:
    first = _first_commit(url, options, env)
    writer = _start(
        {
            "url": url,
            "storage_options": options,
            "role": "writer",
            "tag": "killed",
            "steps": 1,
            "stall": True,
        },
        env,
    )
    assert writer.stdout is not None
    line = writer.stdout.readline()
    assert json.loads(line) == {"stalled": True}, writer.stderr.read() if writer.stderr else ""
    os.kill(writer.pid, signal.SIGKILL)
    writer.communicate(timeout=60)
    store = make_store(url, storage_options=options)
    (key,) = store.list_keys("replaced")
    artifact = Artifact(store, "replaced", key)
    artifact.verify()
    assert artifact.load(BytesFileIO())[:64].decode().strip() == first
    # The next replace takes over at once (the killed writer's pid is dead on this host).
    after = _first_commit(url, options, env)
    artifact.refresh()
    assert artifact.load(BytesFileIO())[:64].decode().strip() == after != first
    # Nothing of the killed writer is left in the artifact's folder.
    assert _files(store, artifact.dir) == {
        f"{artifact.dir}/metadata.json",
        *(artifact.path(name) for name in artifact.files),
    }


@pytest.mark.s3
def test_a_replace_killed_on_s3_leaves_the_old_artifact(
    s3_bucket: tuple[str, dict[str, Any]], s3_env: dict[str, str]
) -> None:
    """A writer killed while uploading the replacement on S3: the old artifact loads and verifies."""
    url, options = s3_bucket
    _kill_during_replace(url, options, {**os.environ, **s3_env})


def test_a_replace_killed_on_a_local_store_leaves_the_old_artifact(tmp_path: Path) -> None:
    """The same on a local folder."""
    _kill_during_replace(str(tmp_path / "store"), None, None)


@pytest.mark.s3
def test_gc_leftovers_removes_the_folders_of_dead_replaces_on_s3(
    s3_bucket: tuple[str, dict[str, Any]],
) -> None:
    """`gc --leftovers` removes a dead replace's files folder, never the artifact's own or one being written."""
    import time

    from replace_reader_worker import OneKeyParams, Replaced

    from persistable._ids import hostname
    from persistable.artifact._leftovers import remove_leftovers

    url, options = s3_bucket
    store = make_store(url, storage_options=options)
    item = Replaced(store, OneKeyParams(), payload_io=BytesFileIO())
    item.generate()
    item.generate()  # another header: a real replace, into a files folder
    artifact = Artifact(store, "replaced", item.key)
    own = f"{artifact.dir}/{artifact.metadata['files_folder']}"
    dead = f"{artifact.dir}/.r-{'ab' * 16}"
    fs = store.fs  # type: ignore[attr-defined]
    fs.pipe_file(f"{store.root}/{dead}/payload.bin", b"half")  # type: ignore[attr-defined]
    claim = f"{store.root}/.persistable/claims/{artifact.dir}.json"  # type: ignore[attr-defined]
    record = {"txid": "x", "host": hostname(), "pid": os.getpid(), "time": time.time()}
    fs.pipe_file(claim, json.dumps(record).encode())
    assert remove_leftovers(store, dry_run=True) == []  # a live claim: being replaced now
    fs.rm_file(claim)
    assert remove_leftovers(store, dry_run=True) == [dead]
    assert remove_leftovers(store, dry_run=False) == [dead]
    assert _files(store, artifact.dir) == {
        f"{artifact.dir}/metadata.json",
        *(f"{own}/{name}" for name in artifact.files),
    }
    artifact.verify()


def test_gc_leftovers_removes_what_dead_replaces_left_on_a_local_store(tmp_path: Path) -> None:
    """Local `gc --leftovers`: a dead replace's folder and old files go; the artifact's own and a locked key stay."""
    from concurrent.futures import ThreadPoolExecutor

    from replace_reader_worker import OneKeyParams, Replaced

    from persistable.artifact._leftovers import remove_leftovers

    store = make_store(str(tmp_path / "store"))
    item = Replaced(store, OneKeyParams(), payload_io=BytesFileIO())
    item.generate()
    item.generate()  # another header: a real replace, into a files folder
    artifact = Artifact(store, "replaced", item.key)
    own = f"{artifact.dir}/{artifact.metadata['files_folder']}"
    root = tmp_path / "store"
    dead = f"{artifact.dir}/.r-{'ab' * 16}"
    (root / dead).mkdir()
    (root / dead / "payload.bin").write_bytes(b"half")
    (root / artifact.dir / "payload.bin").write_bytes(b"an old file a dead replace left")
    expected = sorted([dead, f"{artifact.dir}/payload.bin"])
    with store.lock("replaced", item.key), ThreadPoolExecutor(1) as other:
        # Another thread (as another process would) finds the key locked: being replaced.
        assert other.submit(remove_leftovers, store, dry_run=False).result() == []
    assert sorted(remove_leftovers(store, dry_run=True)) == expected
    assert sorted(remove_leftovers(store, dry_run=False)) == expected
    assert _files(store, artifact.dir) == {
        f"{artifact.dir}/metadata.json",
        *(f"{own}/{name}" for name in artifact.files),
    }
    artifact.verify()
