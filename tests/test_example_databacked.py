"""The seed-002 workflow example (run by ``make demo``) runs end to end, twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "databacked_workflow.py"


def test_databacked_workflow_runs_and_reruns(tmp_path: Path) -> None:
    """First run generates, publishes and checks out; the second loads everything and finds the same version."""
    runs = [
        subprocess.run(
            [sys.executable, str(EXAMPLE), str(tmp_path / "data")],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        for _ in range(2)
    ]
    for done in runs:
        assert done.returncode == 0, done.stderr
        assert "Published demo/cell-projections version" in done.stdout
    assert "generated  loaded" in runs[1].stdout
    versions = [line for done in runs for line in done.stdout.splitlines() if "version" in line]
    assert len({line.split("version ")[1][:16] for line in versions if "Published" in line}) == 1
