"""Host names and random identifiers without importing ``socket`` or ``uuid`` (import time)."""

from __future__ import annotations

import functools
import os

__all__ = ["hostname", "process_id", "random_hex"]


@functools.cache  # one system call per process, not one per lock and artifact
def hostname() -> str:
    """This machine's host name (as ``socket.gethostname()`` gives it)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket  # pragma: no cover - Windows

    return socket.gethostname()  # pragma: no cover


_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def process_id() -> int:
    """``os.getpid()`` without a system call (kept current across ``fork``)."""
    return _pid if hasattr(os, "register_at_fork") else os.getpid()


def random_hex(nbytes: int = 16) -> str:
    """``2 * nbytes`` random hex digits from the OS's random source (like ``uuid4().hex``)."""
    return os.urandom(nbytes).hex()
