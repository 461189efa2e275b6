"""Folders shared by a team: permission errors that say whose folder it is and what to do.

A store folder shared by a group works when the folder is setgid and group-writable
and every member writes with ``umask 002`` (see docs/shared-folders.md): every file
and folder the store creates then gets mode ``0666``/``0777`` less the umask and the
folder's group. What goes wrong instead becomes a :class:`StoreAccessDeniedError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from persistable.exceptions import StoreAccessDeniedError

__all__ = ["access_denied", "current_user"]


def current_user() -> str:
    """The login name of this process (its uid when it has no passwd entry)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _owner(path: Path) -> str:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        info = probe.stat()
    except OSError:
        return ""
    try:
        import grp
        import pwd

        user = pwd.getpwuid(info.st_uid).pw_name
        group = grp.getgrgid(info.st_gid).gr_name
    except (ImportError, KeyError):
        user, group = str(info.st_uid), str(info.st_gid)
    return f" ({str(probe)!r} belongs to {user}:{group}, mode {oct(info.st_mode & 0o7777)})"


def access_denied(path: Path, action: str, error: OSError) -> StoreAccessDeniedError:
    """A :class:`StoreAccessDeniedError` for a local ``PermissionError``: path, user and fix."""
    return StoreAccessDeniedError(
        f"User {current_user()!r} may not {action} {str(path)!r}{_owner(path)}: {error.strerror}; "
        "for a folder shared by a group, make it group-writable and setgid "
        "(chgrp -R <group> <folder>; chmod -R g+rwX <folder>; find <folder> -type d -exec "
        "chmod g+s {} +) and write with umask 002."
    )
