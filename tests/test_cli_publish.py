"""``persistable publish`` on the command line: a committed dataset artifact becomes a package."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from _cli_helpers import run_cli
from test_publish import Notes, ReleaseParams, _git

import persistable


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A git work tree with one commit pushed to a bare 'origin'."""
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    _git(work, "config", "user.email", "ada@example.org")
    _git(work, "config", "user.name", "Ada")
    (work / "pipeline.py").write_text("print('cells')\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "pipeline")
    _git(work, "remote", "add", "origin", str(origin))
    _git(work, "push", "-q", "-u", "origin", "main")
    return work


def test_cli_publish_then_checkout(tmp_path: Path, repository: Path) -> None:
    """The command publishes a dataset by its reference; checkout finds that version."""
    cache = tmp_path / "cache"
    dataset = Notes(cache, ReleaseParams("r1", folder=str(tmp_path / "sources")))
    dataset.load_generate()
    ref = f"{dataset.payload_name}/{dataset.persist_hash[:12]}"
    done = run_cli(
        "publish",
        str(cache),
        ref,
        str(tmp_path / "published"),
        "--name",
        "lab/notes",
        "--repository",
        str(repository),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    version = json.loads(done.stdout)["version"]
    assert persistable.checkout(tmp_path / "published", "lab/notes").version == version
    (repository / "pipeline.py").write_text("changed\n")
    refused = run_cli(
        "publish",
        str(cache),
        ref,
        str(tmp_path / "published"),
        "--name",
        "lab/notes",
        "--repository",
        str(repository),
    )
    assert refused.returncode == 2
    assert "uncommitted changes" in refused.stderr
