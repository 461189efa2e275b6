"""The flow example that ``make demo`` runs: serial, then under ``mpiexec -n 2``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "flow_demo.py"


def test_flow_demo_runs_and_ranks_agree(tmp_path: Path) -> None:
    """The demo writes its input, runs the flow on 1 and 2 ranks, and a second run loads from the store."""
    env = {k: v for k, v in os.environ.items() if k != "H5FLOW_NOMPI"}
    first = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    assert "written on 1 rank(s)" in first.stdout
    assert "written on 2 rank(s)" in first.stdout
    assert "1 rank and 2 ranks give the same datasets: True" in first.stdout
    assert "reco/tmp dropped: True" in first.stdout
    second = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("nothing to do") == 2
