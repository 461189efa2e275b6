"""h5py, imported on first use with an install hint."""

from __future__ import annotations

from typing import Any

from persistable.exceptions import MissingDependencyError

__all__ = ["h5py", "has_mpio"]


def h5py() -> Any:
    """The h5py module (MissingDependencyError with the install command when absent)."""
    try:
        import h5py as module
    except ImportError as error:
        raise MissingDependencyError(
            "Flows read and write HDF5 with h5py; install it with: pip install 'persistable[hdf5]'."
        ) from error
    return module


def has_mpio() -> bool:
    """Whether the installed h5py was built against parallel HDF5 (the pip wheel is not)."""
    return bool(h5py().get_config().mpi)
