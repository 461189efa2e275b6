"""``persistable flow``: the subcommand, its exit codes and its messages (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _flow_stages import write_events
from test_flow_run import RECO, write_config

TESTS = Path(__file__).parent


def flow(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "persistable", "flow", "--nompi", "--no-progress", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_persistable_flow_runs_then_says_nothing_to_do(tmp_path: Path) -> None:
    """`persistable flow -c ... -i ... -o ...` writes the output; the same command again does nothing."""
    write_events(tmp_path / "events.h5")
    config = write_config(tmp_path)
    args = ["-c", str(config), "-i", "events.h5", "-o", "reco.h5"]
    first = flow(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert "reco.h5: written on 1 rank(s), 6 steps" in first.stdout
    assert (tmp_path / "reco.h5").is_file()
    again = flow(tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout


def test_persistable_flow_exit_codes(tmp_path: Path) -> None:
    """Bad input exits 2 with one line naming the file and key; a failed stage exits 1 with a rerun hint."""
    write_events(tmp_path / "events.h5")
    bad = tmp_path / "bad.yaml"
    bad.write_text("flow: {source: raw/events, stages: [a, a]}\na: {classname: Scratch}\n")
    refused = flow(tmp_path, "-c", str(bad), "-i", "events.h5", "-o", "o.h5")
    assert refused.returncode == 2
    assert refused.stderr.startswith("persistable: error: Config ")
    assert "stage 'a' is listed twice" in refused.stderr
    failing = RECO.replace("requires: [raw/hits]", "requires: [raw/nothing]")
    config = write_config(tmp_path, failing, name="fail.yaml")
    failed = flow(tmp_path, "-c", str(config), "-i", "events.h5", "-o", "o.h5")
    assert failed.returncode == 1
    assert "Stage 'hit_sum' requires 'raw/nothing'" in failed.stderr
    assert "Run the same command again to continue." in failed.stderr
    assert not (tmp_path / "o.h5").exists()
