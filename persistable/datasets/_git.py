"""The git provenance of the code that publishes a package: repository, branch, commit, author, state."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from persistable.exceptions import PublishError

__all__ = ["GitProvenance", "git_provenance"]


@dataclass(frozen=True)
class GitProvenance:
    """Where the publishing code came from, as git tells it."""

    repository: str | None
    branch: str | None
    commit: str | None
    author: str | None
    dirty: list[str]
    unpushed: int | None  # commits not on the upstream branch; None: no upstream

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _git(folder: Path, *args: str, strip: bool = True) -> str | None:
    import subprocess

    done = subprocess.run(
        ["git", "-C", str(folder), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        return None
    return done.stdout.strip() if strip else done.stdout


def git_provenance(folder: Path) -> GitProvenance | None:
    """The provenance of the git work tree holding ``folder``, or None outside any repository."""
    import shutil

    if shutil.which("git") is None:
        raise PublishError(
            "publish() records the code's git provenance but no `git` command is installed; "
            "install git, or pass allow_dirty=True to publish without provenance."
        )
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    commit = _git(folder, "rev-parse", "HEAD")
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    # Not stripped: each porcelain line starts with two status columns, maybe blank.
    status = _git(folder, "status", "--porcelain", "--untracked-files=normal", strip=False) or ""
    dirty = [line[3:] for line in status.splitlines() if line.strip()]
    upstream = _git(folder, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}")
    unpushed: int | None = None
    if upstream is not None:
        count = _git(folder, "rev-list", "--count", f"{upstream}..HEAD")
        unpushed = int(count) if count is not None and count.isdigit() else None
    remote = None
    if upstream is not None and "/" in upstream:
        remote = _git(folder, "remote", "get-url", upstream.split("/", 1)[0])
    if remote is None:
        remote = _git(folder, "remote", "get-url", "origin")
    return GitProvenance(
        repository=remote,
        branch=branch,
        commit=commit,
        author=_git(folder, "log", "-1", "--format=%an <%ae>") if commit else None,
        dirty=dirty,
        unpushed=unpushed,
    )
