"""Host names and random identifiers without importing ``socket`` or ``uuid`` (import time)."""

from __future__ import annotations

import os

__all__ = ["hostname", "random_hex"]


def hostname() -> str:
    """This machine's host name (as ``socket.gethostname()`` gives it)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket  # pragma: no cover - Windows

    return socket.gethostname()  # pragma: no cover


def random_hex(nbytes: int = 16) -> str:
    """``2 * nbytes`` random hex digits from the OS's random source (like ``uuid4().hex``)."""
    return os.urandom(nbytes).hex()
