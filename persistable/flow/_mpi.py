"""All MPI calls of a flow, behind one small communicator API (serial when MPI is off).

MPI is used when mpi4py imports, unless ``--nompi`` is passed or the ``H5FLOW_NOMPI``
environment variable (h5flow's) is set to a non-empty value.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["Comm", "SerialComm", "get_comm", "mpi_wanted"]


class SerialComm:
    """The communicator of a single process: every collective returns its own value."""

    rank = 0
    size = 1
    is_mpi = False
    #: The mpi4py communicator (what h5py's ``mpio`` driver opens a file with); None here.
    world: Any = None

    def Get_rank(self) -> int:
        return 0

    def Get_size(self) -> int:
        return 1

    def allgather(self, value: Any) -> list[Any]:
        return [value]

    def gather(self, value: Any, root: int = 0) -> list[Any] | None:
        return [value]

    def bcast(self, value: Any, root: int = 0) -> Any:
        return value

    def barrier(self) -> None:
        return None

    def abort(self, code: int = 1) -> None:
        raise SystemExit(code)


class Comm(SerialComm):
    """``MPI.COMM_WORLD`` with the few collectives a flow needs (pickle-based)."""

    is_mpi = True

    def __init__(self, world: Any) -> None:
        self.world = world
        self.rank = int(world.Get_rank())
        self.size = int(world.Get_size())

    def Get_rank(self) -> int:
        return self.rank

    def Get_size(self) -> int:
        return self.size

    def allgather(self, value: Any) -> list[Any]:
        return list(self.world.allgather(value))

    def gather(self, value: Any, root: int = 0) -> list[Any] | None:
        gathered = self.world.gather(value, root=root)
        return None if gathered is None else list(gathered)

    def bcast(self, value: Any, root: int = 0) -> Any:
        return self.world.bcast(value, root=root)

    def barrier(self) -> None:
        self.world.Barrier()

    def abort(self, code: int = 1) -> None:
        """Stop every rank of the job (used after an error, so no rank waits forever)."""
        sys.stderr.flush()
        sys.stdout.flush()
        self.world.Abort(code)


def mpi_wanted(nompi: bool = False) -> bool:
    """Whether a flow should try MPI (not with ``nompi`` or ``H5FLOW_NOMPI`` set)."""
    return not nompi and not os.environ.get("H5FLOW_NOMPI")


def get_comm(nompi: bool = False) -> SerialComm:
    """The world communicator, or a serial one without MPI (mpi4py missing counts as off)."""
    if not mpi_wanted(nompi):
        return SerialComm()
    try:
        from mpi4py import MPI
    except ImportError:
        return SerialComm()
    world = MPI.COMM_WORLD
    if world.Get_size() == 1:
        return SerialComm()
    return Comm(world)
