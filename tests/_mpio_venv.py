"""A virtual env whose h5py has parallel HDF5 (the ``mpio`` driver), shared by a session.

The pip h5py wheel has serial HDF5 only, so the flows' ``mpio`` write path is tested
with an h5py built from source against the distribution's MPICH build of HDF5, run
under the distribution's ``mpiexec`` (the MPICH h5py was linked with, not the pip
mpich wheel's). The env is made once per machine, in the temporary folder, keyed by
the versions it holds, under a file lock (worktrees may test at once):

1. the distribution packages ``libhdf5-mpich-dev`` and ``mpich`` are installed with
   ``apt-get`` when they are missing (only possible as root on a Debian-like system);
2. mpi4py and h5py are built from source with ``mpicc`` against that HDF5 (a few
   minutes), with numpy and persistable's runtime dependencies at this env's versions.

``mpio_env()`` says why it cannot be made (``MpioUnavailable``) when the packages are
missing and cannot be installed; any other failure raises.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import filelock

H5PY_VERSION = "3.16.0"
MPI4PY_VERSION = "4.1.2"
APT_PACKAGES = ("libhdf5-mpich-dev", "mpich")
#: persistable's runtime dependencies (and the hdf5 extra's PyYAML), at this env's versions.
RUNTIME = ("numpy", "xxhash", "filelock", "typing-extensions", "click", "PyYAML")


class MpioUnavailable(Exception):
    """Parallel HDF5 is not installed and this process cannot install it."""


@dataclass(frozen=True)
class MpioEnv:
    python: Path
    mpiexec: Path


def _system_path() -> str:
    """PATH without this interpreter's own bin folder (which holds the pip mpich wheel's tools)."""
    own = {str(Path(sys.executable).parent), str(Path(sys.prefix) / "bin")}
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p not in own)


def _missing_packages() -> list[str]:
    if shutil.which("dpkg-query", path=_system_path()) is None:
        return list(APT_PACKAGES)
    missing = []
    for package in APT_PACKAGES:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PATH": _system_path()},
        )
        if "install ok installed" not in status.stdout:
            missing.append(package)
    return missing


def _install_packages(missing: list[str]) -> None:
    apt = shutil.which("apt-get", path=_system_path())
    if apt is None or os.geteuid() != 0:
        why = "no apt-get on this system" if apt is None else "this process is not root"
        raise MpioUnavailable(
            f"parallel HDF5 is not installed (missing distribution packages: {', '.join(missing)}) "
            f"and cannot be installed here ({why}); install them with "
            f"'apt-get install -y --no-install-recommends {' '.join(APT_PACKAGES)}' to run this test"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "PATH": _system_path()}
    install = [apt, "install", "-y", "--no-install-recommends", *APT_PACKAGES]
    done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:  # the package lists may be missing on a fresh machine
        for command in ([apt, "update"], install):
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, env=env, check=False, timeout=600
                )
            except subprocess.TimeoutExpired:
                raise MpioUnavailable(
                    f"{' '.join(command)} did not finish in 600 s (no route to the distribution's "
                    f"package mirrors?); install {' '.join(APT_PACKAGES)} to run this test"
                ) from None
            if done.returncode != 0:
                # No route to the distribution's mirrors is a machine's limit, not a product
                # failure: the test says exactly what it could not install and why.
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise MpioUnavailable(
                    f"{' '.join(command)} failed ({' / '.join(tail)}); install "
                    f"{' '.join(APT_PACKAGES)} to run this test"
                )


def _hdf5_version() -> str:
    """The installed version of the MPICH HDF5 package (the env is rebuilt when it changes)."""
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "libhdf5-mpich-dev"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PATH": _system_path()},
    )
    return done.stdout.strip()


def _hdf5_dirs() -> tuple[str, str]:
    """The include and library folders of the MPICH HDF5 (from the package's file list)."""
    done = subprocess.run(
        ["dpkg-query", "-L", "libhdf5-mpich-dev"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PATH": _system_path()},
    )
    files = [Path(line) for line in done.stdout.splitlines()]
    header = next((f for f in files if f.name == "hdf5.h"), None)
    library = next((f for f in files if f.name == "libhdf5.so"), None)
    if header is None or library is None:
        raise RuntimeError(f"libhdf5-mpich-dev lists no hdf5.h or libhdf5.so:\n{done.stdout}")
    return str(header.parent), str(library.parent)


def _tools() -> tuple[Path, Path]:
    """The system's ``mpicc`` and the ``mpiexec`` of the same MPICH."""
    path = _system_path()
    mpicc = shutil.which("mpicc", path=path)
    mpiexec = shutil.which("mpiexec.mpich", path=path) or shutil.which("mpiexec", path=path)
    if mpicc is None or mpiexec is None:
        raise RuntimeError(f"mpich is installed but mpicc/mpiexec are not on PATH ({path})")
    return Path(mpicc), Path(mpiexec)


def mpio_env() -> MpioEnv:
    """The interpreter of an env with a parallel h5py, and the mpiexec to run it under."""
    missing = _missing_packages()
    if missing:
        with filelock.FileLock(str(Path(tempfile.gettempdir()) / "persistable-mpio-apt.lock")):
            missing = _missing_packages()
            if missing:
                _install_packages(missing)
    mpicc, mpiexec = _tools()
    requirements = [f"{name}=={version(name)}" for name in RUNTIME]
    build = [f"mpi4py=={MPI4PY_VERSION}", f"h5py=={H5PY_VERSION}"]
    tag = hashlib.sha256(
        "\n".join([sys.version, str(mpicc), _hdf5_version(), *requirements, *build]).encode()
    ).hexdigest()[:16]
    venv = Path(tempfile.gettempdir()) / f"persistable-mpio-venv-{tag}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    with filelock.FileLock(f"{venv}.lock", timeout=1500):
        if not marker.is_file():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, *requirements], check=True, timeout=600)
            env = {
                **os.environ,
                "PATH": _system_path(),
                "CC": str(mpicc),
                "HDF5_MPI": "ON",
            }
            env["HDF5_INCLUDEDIR"], env["HDF5_LIBDIR"] = _hdf5_dirs()
            env.pop("HDF5_DIR", None)  # with it set, h5py's build ignores the two above
            subprocess.run(
                [*pip, "--no-binary=mpi4py,h5py", *build],
                check=True,
                timeout=1200,
                env=env,
            )
            probe = subprocess.run(
                [str(python), "-c", "import h5py; print(h5py.get_config().mpi)"],
                capture_output=True,
                text=True,
                check=True,
            )
            if probe.stdout.strip() != "True":
                raise RuntimeError(f"h5py built in {venv} has no parallel HDF5: {probe.stdout}")
            marker.write_text("\n".join([*requirements, *build]))
    return MpioEnv(python=python, mpiexec=mpiexec)
