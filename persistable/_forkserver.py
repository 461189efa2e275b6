"""Preloads of the ``forkserver`` that process pools fork their workers from.

Workers of a ``forkserver`` pool fork from one server process and inherit what it
imported. Python 3.11's server never preloads the caller's ``__main__`` (it asks for a
``main_path`` that ``spawn.get_preparation_data`` does not provide), so without preloads
every worker imports persistable, pydantic, cloudpickle and numpy again: about 0.15 to
0.5 s of CPU per worker, paid again by every pool a program starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

__all__ = ["IMPORTED_BY_PID", "preload_in_forkserver"]

#: The process that imported this module: a worker forked from a forkserver that
#: preloaded persistable shows the server's pid here, not its own.
IMPORTED_BY_PID = os.getpid()

#: Third-party modules preloaded when the caller has imported them (each worker needs
#: them to unpickle nodes and payloads).
_ALSO_IF_IMPORTED = ("numpy", "pydantic")
#: The package's folder: only modules loaded from its files are preloaded.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def preload_in_forkserver(modules: Iterable[str]) -> None:
    """Add ``modules`` (and cloudpickle, persistable's loaded modules) to the forkserver's preloads.

    Only before the server starts: once it runs, the preloads of its start stay (its
    workers then import what they need themselves, which is slower, never wrong). Only
    modules this process imported without error are added, because an import error other
    than ImportError would stop the server itself; the user's own modules are never added.
    """
    from multiprocessing import forkserver, get_all_start_methods, get_context

    server = getattr(forkserver, "_forkserver", None)
    if "forkserver" not in get_all_start_methods() or server is None:
        return
    if getattr(server, "_forkserver_pid", None) is not None:
        return  # already running
    current = list(getattr(server, "_preload_modules", None) or ["__main__"])
    wanted = set(modules) | {"cloudpickle"}
    wanted.update(name for name in _ALSO_IF_IMPORTED if name in sys.modules)
    wanted.update(name for name, module in list(sys.modules.items()) if _is_ours(name, module))
    added = sorted(wanted - set(current))
    if added:
        get_context("forkserver").set_forkserver_preload([*current, *added])


def _is_ours(name: str, module: object) -> bool:
    """Whether ``module`` is one of persistable's, loaded from a file of the package."""
    if name != "persistable" and not name.startswith("persistable."):
        return False
    origin = getattr(module, "__file__", None)
    return isinstance(origin, str) and origin.startswith(_PACKAGE_DIR)
