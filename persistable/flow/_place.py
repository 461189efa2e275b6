"""Give ``-o`` the bytes of the stored output: a clone, a read-only hard link, or a copy.

The committed artifact is read-only (mode 0444) and its checksum is in ``metadata.json``.
``-o`` gets, in order of preference:

1. a *clone* (``FICLONE``: btrfs, XFS, ...): its own writable file sharing the blocks
   until one side is written (copy-on-write), so nothing is copied;
2. a *hard link* to the stored file: nothing is copied either, and ``-o`` is the stored
   file, read-only. Writing it needs a deliberate ``chmod`` (or root); such a change is
   caught by the checksum the flow verifies before it hands out a stored output again,
   and that artifact is quarantined and generated again (never served changed);
3. a *copy* (another file system, or ``copy=True``: a writable file of its own).

Each is made under a temporary name and renamed to ``-o``, so ``-o`` is only ever whole.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from pathlib import Path

__all__ = ["place_output"]

#: ``FICLONE`` from ``linux/fs.h``: ``_IOW(0x94, 9, int)``.
_FICLONE = 0x40049409
#: Errors meaning "this file system (or these two files) cannot clone / link".
_UNSUPPORTED = {
    errno.EOPNOTSUPP,
    errno.ENOTTY,
    errno.EINVAL,
    errno.EXDEV,
    errno.EPERM,
    errno.EACCES,
    errno.EMLINK,
    errno.ENOSYS,
}


def _clone(source: Path, target: Path) -> bool:
    """Clone ``source`` into the new file ``target``; False (and no file) when unsupported."""
    try:
        with source.open("rb") as src, target.open("xb") as dst:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
    except OSError as error:
        target.unlink(missing_ok=True)
        if error.errno in _UNSUPPORTED:
            return False
        raise
    return True


def _link(source: Path, target: Path) -> bool:
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno in _UNSUPPORTED:
            return False
        raise
    return True


def place_output(stored: Path, output: Path, *, copy: bool = False) -> str:
    """Put the bytes of ``stored`` at ``output``: ``"clone"``, ``"link"`` or ``"copy"``."""
    tmp = output.with_name(f".{output.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)  # left by a killed run of this process id
    try:
        if not copy and _clone(stored, tmp):
            how = "clone"
        elif not copy and _link(stored, tmp):
            how = "link"
        else:
            shutil.copyfile(stored, tmp)
            how = "copy"
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return how
