"""A virtual env holding the real persistable 1.x from the package index, shared by a session.

persistable 1.x has our import name, so it cannot live in the project's env (``bench/``
does the same for its comparison). The env is made once per machine, in the temporary
folder, keyed by the versions it holds, under a file lock (worktrees may test at once).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import filelock
import numpy as np

V1_VERSION = "1.3.1"


def v1_python() -> Path:
    """The interpreter of an env with ``persistable==1.3.1`` and this env's numpy version."""
    # The same numpy as ours: 1.x hashes str() of values, whose text numpy may change.
    requirements = [f"persistable=={V1_VERSION}", f"numpy=={np.__version__}"]
    tag = f"persistable{V1_VERSION}-numpy{np.__version__}-py{sys.version_info[0]}{sys.version_info[1]}"
    venv = Path(tempfile.gettempdir()) / f"persistable-v1-venv-{tag}"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    marker = venv / ".installed"
    with filelock.FileLock(f"{venv}.lock", timeout=600):
        if not marker.is_file():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, *requirements], check=True, timeout=540)
            marker.write_text("\n".join(requirements))
    return python


def run_v1(script: Path, *args: str, cwd: Path) -> str:
    """Run ``script`` under persistable 1.x (isolated: neither this repo nor PYTHONPATH is seen)."""
    completed = subprocess.run(
        [str(v1_python()), "-I", str(script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{script.name} failed under persistable 1.x:\n{completed.stderr}")
    return completed.stdout
