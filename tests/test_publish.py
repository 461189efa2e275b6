"""publish/checkout: versioned packages with git provenance and a top_hash, on a local folder and on S3."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import persistable
from persistable.datasets import DatasetPersistable, versions
from persistable.exceptions import PackageNotFoundError, PublishError
from persistable.params import PersistableParams, untracked


@dataclass
class ReleaseParams(PersistableParams):
    """A dataset release; its content depends on it."""

    release: str
    folder: str = untracked(default="")


class Notes(DatasetPersistable[ReleaseParams]):
    """Two text files whose content names the release."""

    filepath_columns = ("note_path",)
    metadata_columns = ("note_id",)

    def _generate_payload(self, **untracked_payload_params: Any) -> pd.DataFrame:
        folder = Path(self.params.folder) / self.params.release
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index in range(2):
            path = folder / f"note{index}.txt"
            path.write_text(f"release {self.params.release}, note {index}\n")
            paths.append(str(path))
        frame: pd.DataFrame = pd.DataFrame({"note_id": [0, 1], "note_path": paths})
        return frame


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


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


def _dataset(tmp_path: Path, release: str, store: Any = None, **options: Any) -> Notes:
    return Notes(
        store if store is not None else tmp_path / "cache",
        ReleaseParams(release, folder=str(tmp_path / "sources")),
        **options,
    )


def test_publish_and_checkout_two_versions(tmp_path: Path, repository: Path) -> None:
    """Two releases give two versions; checkout gets the latest by default or one by top_hash."""
    destination = tmp_path / "published"
    first = persistable.publish(
        _dataset(tmp_path, "r1"), destination, name="lab/notes", repository=repository
    )
    second = persistable.publish(
        _dataset(tmp_path, "r2"), destination, name="lab/notes", repository=repository
    )
    assert first.version != second.version
    assert len(first.version) == 64
    assert [info["top_hash"] for info in versions(destination, "lab/notes")] == [
        first.version,
        second.version,
    ]
    latest = persistable.checkout(destination, "lab/notes")
    assert latest.version == second.version
    assert Path(latest.manifest["note_path"][1]).read_text() == "release r2, note 1\n"
    old = persistable.checkout(destination, "lab/notes", version=first.version)
    assert Path(old.manifest["note_path"][0]).read_text() == "release r1, note 0\n"
    commit = _git(repository, "rev-parse", "HEAD")
    for text in (
        f"Commit: {commit}",
        "Branch: main",
        "Author: Ada <ada@example.org>",
        f"Repository: {tmp_path / 'origin.git'}",
        f"`{first.version}`",
    ):
        assert text in old.readme
    assert old.info["provenance"]["commit"] == commit
    assert old.info["lineage"]["payload_name"] == "notes"
    again = persistable.publish(
        _dataset(tmp_path, "r1"), destination, name="lab/notes", repository=repository
    )
    assert again.version == first.version  # same content, same version
    assert len(versions(destination, "lab/notes")) == 2


def test_checkout_to_a_folder_copies_and_verifies(tmp_path: Path, repository: Path) -> None:
    """checkout(to=...) copies every file of the version into a local folder."""
    destination = tmp_path / "published"
    package = persistable.publish(
        _dataset(tmp_path, "r1"), destination, name="notes", repository=repository
    )
    copy = persistable.checkout(destination, "notes", to=tmp_path / "copy")
    assert copy.version == package.version
    assert Path(copy.manifest["note_path"][0]).is_relative_to(tmp_path / "copy")
    assert (tmp_path / "copy" / "README.md").exists()


def test_a_changed_package_is_refused(tmp_path: Path, repository: Path) -> None:
    """A file changed after publishing fails the checksum check of checkout."""
    destination = tmp_path / "published"
    package = persistable.publish(
        _dataset(tmp_path, "r1"), destination, name="notes", repository=repository
    )
    stored = Path(package.manifest["note_path"][0])
    stored.write_text("tampered\n")
    with pytest.raises(persistable.exceptions.CorruptArtifactError):
        persistable.checkout(destination, "notes")


def test_publish_refuses_dirty_unpushed_and_missing_repositories(
    tmp_path: Path, repository: Path
) -> None:
    """Uncommitted changes, unpushed commits and no repository each say what to do; allow_dirty says so in the README."""
    destination = tmp_path / "published"
    (repository / "pipeline.py").write_text("print('changed')\n")
    with pytest.raises(
        PublishError, match=r"uncommitted changes \(pipeline.py\).*git add -A && git commit"
    ):
        persistable.publish(
            _dataset(tmp_path, "r1"), destination, name="notes", repository=repository
        )
    _git(repository, "commit", "-q", "-am", "change")
    with pytest.raises(PublishError, match=r"1 commit\(s\) that are not pushed; `git push`"):
        persistable.publish(
            _dataset(tmp_path, "r1"), destination, name="notes", repository=repository
        )
    outside = tmp_path / "no-repo"
    outside.mkdir()
    with pytest.raises(PublishError, match="not inside a git repository"):
        persistable.publish(_dataset(tmp_path, "r1"), destination, name="notes", repository=outside)
    assert not destination.exists()
    dirty = persistable.publish(
        _dataset(tmp_path, "r1"), destination, name="notes", repository=repository, allow_dirty=True
    )
    assert "Published with allow_dirty=True" in dirty.readme
    with pytest.raises(PublishError, match="package name"):
        persistable.publish(
            _dataset(tmp_path, "r1"), destination, name="../x", repository=repository
        )
    with pytest.raises(PackageNotFoundError, match="no version 'abc'"):
        persistable.checkout(destination, "notes", version="abc")
    with pytest.raises(PackageNotFoundError, match="No package 'other'"):
        persistable.checkout(destination, "other")


@pytest.mark.s3
def test_publish_and_checkout_on_s3(
    s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path, repository: Path
) -> None:
    """Dataset and packages on S3: two versions, paths resolved as URLs, checkout to a folder."""
    import s3fs

    url, options = s3_bucket
    destination = url.replace("/cache", "/published")
    made = [
        persistable.publish(
            _dataset(tmp_path, release, store=url, storage_options=options),
            destination,
            name="lab/notes",
            repository=repository,
            storage_options=options,
        )
        for release in ("r1", "r2")
    ]
    latest = persistable.checkout(destination, "lab/notes", storage_options=options)
    assert latest.version == made[1].version
    path = latest.manifest["note_path"][0]
    assert path.startswith(f"{destination}/lab/notes/{latest.version}/files/")
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    assert fs.cat_file(path) == b"release r2, note 0\n"
    copy = persistable.checkout(
        destination, "lab/notes", made[0].version, to=tmp_path / "copy", storage_options=options
    )
    assert Path(copy.manifest["note_path"][1]).read_text() == "release r1, note 1\n"
