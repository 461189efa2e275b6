"""The seed README's examples run unchanged against this package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(EXAMPLES), "PATH": ""},
    )


def test_seed_examples_generate_then_load(tmp_path: Path) -> None:
    """Both seed README examples run twice: the first run writes artifacts, the second reuses them."""
    first = _run("seed_example_2_outlier_estimator.py", tmp_path)
    assert first.returncode == 0, first.stderr
    artifacts = sorted(p.parent.name for p in (tmp_path / "example-data").glob("*/*/metadata.json"))
    assert len(artifacts) == 2
    estimator = tmp_path / "example-data" / "outlier_estimator_p"
    metadata_times = [p.stat().st_mtime_ns for p in estimator.glob("*/metadata.json")]
    points_metadata = sorted((tmp_path / "example-data").glob("gaussian*/*/metadata.json"))
    points_times = [p.stat().st_mtime_ns for p in points_metadata]
    points = sorted((tmp_path / "example-data").glob("gaussian*/*/payload.*"))
    payloads = [p.read_bytes() for p in points]
    second = _run("seed_example_2_outlier_estimator.py", tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Loaded outlier_estimator_p" in second.stderr
    # load_generate() kept the estimator; example 1's explicit generate() made the same
    # points again, so the stored artifact was kept as it was (no "Replaced" warning).
    assert [p.stat().st_mtime_ns for p in estimator.glob("*/metadata.json")] == metadata_times
    assert [p.read_bytes() for p in points] == payloads
    assert [p.stat().st_mtime_ns for p in points_metadata] == points_times
    assert "Replaced the stored artifact" not in second.stderr
