"""A store folder shared by a group: two real uids generate, wait, replace and delete each other's artifacts."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("shared_folder_worker.py")
GROUP = 47100
ALICE = {"name": "alice", "uid": 47101, "gid": 47101, "group": GROUP}
BOB = {"name": "bob", "uid": 47102, "gid": 47102, "group": GROUP}


@pytest.fixture
def shared() -> Iterator[Path]:
    """A setgid, group-writable folder of the group, inside a folder every uid can traverse."""
    if os.geteuid() != 0:
        pytest.fail("this test changes uids and must run as root (as make test does in CI)")
    top = Path(tempfile.mkdtemp(prefix="persistable-shared-"))
    top.chmod(0o755)
    folder = top / "lab-cache"
    folder.mkdir()
    os.chown(folder, 0, GROUP)
    folder.chmod(0o2775)
    yield folder
    shutil.rmtree(top)


def _act(
    who: dict[str, Any], store: Path, action: str, n: int, umask: str = "002", seconds: float = 0.0
) -> dict[str, Any]:
    spec = dict(who, store=str(store), action=action, n=n, umask=umask, seconds=seconds)
    completed = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "error" not in result, result.get("traceback")
    return result


def _everything(folder: Path) -> list[Path]:
    return [Path(d) / name for d, dirs, files in os.walk(folder) for name in [*dirs, *files]]


def test_two_users_generate_wait_replace_and_delete(shared: Path) -> None:
    """With umask 002 in a setgid folder, alice and bob use each other's artifacts, locks and folders."""
    made = _act(ALICE, shared, "load_generate", 1)
    assert made["payload"] == {"n": 1, "by": ALICE["uid"]}
    # Everything alice's writes created belongs to the group and is group-writable.
    for path in _everything(shared):
        info = path.lstat()
        assert info.st_gid == GROUP, path
        assert info.st_mode & stat.S_IWGRP, path
    assert _act(BOB, shared, "load_generate", 1)["payload"] == {"n": 1, "by": ALICE["uid"]}
    # Bob regenerates alice's artifact (replaces it) and makes one of his own next to it.
    assert _act(BOB, shared, "generate", 1)["payload"] == {"n": 1, "by": BOB["uid"]}
    assert _act(BOB, shared, "load_generate", 2)["payload"] == {"n": 2, "by": BOB["uid"]}
    assert _act(ALICE, shared, "load_generate", 1)["payload"] == {"n": 1, "by": BOB["uid"]}
    # Alice deletes bob's artifact.
    assert _act(ALICE, shared, "delete", 2)["deleted"] is True
    assert _act(ALICE, shared, "load_generate", 2)["payload"] == {"n": 2, "by": ALICE["uid"]}
    # No lock file is left per key, no staging folder either.
    assert list((shared / ".persistable" / "locks").rglob("*.lock")) == []
    assert list((shared / ".persistable" / "staging").iterdir()) == []


def test_a_user_waits_for_the_other_users_generation(shared: Path) -> None:
    """Bob asking for the key alice is generating waits for her lock and loads her artifact."""
    results: dict[str, dict[str, Any]] = {}

    def alice() -> None:
        results["alice"] = _act(ALICE, shared, "load_generate", 3, seconds=4.0)

    thread = threading.Thread(target=alice)
    thread.start()
    deadline = time.monotonic() + 120
    locks = shared / ".persistable" / "locks"
    while not list(locks.rglob("*.lock")) and time.monotonic() < deadline:
        time.sleep(0.05)  # alice holds the key's lock now
    results["bob"] = _act(BOB, shared, "load_generate", 3)
    thread.join()
    assert results["alice"]["payload"] == {"n": 3, "by": ALICE["uid"]}
    assert results["bob"]["payload"] == {"n": 3, "by": ALICE["uid"]}


def test_a_restrictive_umask_gives_a_clear_error_naming_path_and_user(shared: Path) -> None:
    """When alice writes with umask 022, bob gets StoreAccessDeniedError naming the folder, himself and the fix."""
    _act(ALICE, shared, "load_generate", 4, umask="022")
    denied = _act(BOB, shared, "load_generate", 5)
    message = denied["access_denied"]
    assert "User 'bob' may not" in message
    assert str(shared) in message
    assert "belongs to" in message
    assert "umask 002" in message
    assert "chmod" in message
