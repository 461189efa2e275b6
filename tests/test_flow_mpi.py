"""Flows under a real ``mpiexec`` (the mpich wheel): rank-count invariance, failures, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _flow_stages import write_events
from test_flow_run import RECO, dump, write_config

from persistable.flow import run_flow

MPIEXEC = Path(sys.executable).parent / "mpiexec"
TESTS = Path(__file__).parent
#: Generous: mpiexec start-up is slow on a loaded machine; a hang would hit it.
TIMEOUT = 120

TROUBLE = RECO.replace(
    "stages: [hit_sum, scratch]", "stages: [hit_sum, scratch, trouble]"
) + textwrap.dedent(
    """\
    trouble:
      classname: Trouble
      path: _flow_stages
      params: {at_row: 25, on_rank: 1, action: ACTION, marker: MARKER}
    """
)


def mpiexec(
    n: int,
    cwd: Path,
    *args: str,
    launcher: Path = MPIEXEC,
    python: Path = Path(sys.executable),
    environ: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``persistable flow`` on ``n`` ranks (the mpich wheel's mpiexec and this env by default)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)]),
        **(environ or {}),
    }
    env.pop("H5FLOW_NOMPI", None)
    return subprocess.run(
        [
            str(launcher),
            "-n",
            str(n),
            str(python),
            "-m",
            "persistable.flow",
            "--no-progress",
            *args,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def interrupt_then_rerun(
    cwd: Path,
    events: Path,
    launcher: Path = MPIEXEC,
    python: Path = Path(sys.executable),
    environ: dict[str, str] | None = None,
) -> tuple[str, str]:
    """Ctrl-C (SIGINT to mpiexec) while rank 1 sleeps in a stage; then the same command again.

    Returns the interrupted run's stderr and the rerun's stdout (both must end in time).
    """
    marker = cwd / "waiting"
    config = write_config(cwd, TROUBLE.replace("ACTION", "sleep").replace("MARKER", str(marker)))
    args = ["-c", str(config), "-i", str(events), "-o", "out.h5", "--data-dir", "store"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])}
    env.pop("H5FLOW_NOMPI", None)
    env.update(environ or {})
    command = [str(launcher), "-n", "2", str(python), "-m", "persistable.flow", "--no-progress"]
    process = subprocess.Popen(
        [*command, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT may be ignored by a background test runner: mpiexec must get it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + TIMEOUT
    while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), process.communicate(timeout=TIMEOUT)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=TIMEOUT)  # a hang fails here
    assert process.returncode != 0
    assert not (cwd / "out.h5").exists()
    rerun = mpiexec(2, cwd, *args, launcher=launcher, python=python, environ=environ)
    assert rerun.returncode == 0, rerun.stderr
    return stderr, rerun.stdout


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.h5"
    write_events(path, n_events=40)
    return path


def test_output_is_the_same_on_1_2_and_3_ranks(tmp_path: Path, events: Path) -> None:
    """A deterministic flow gives identical datasets and attributes on 1, 2 and 3 ranks."""
    config = write_config(tmp_path)
    run_flow(config, tmp_path / "r1.h5", events, nompi=True, data_dir=tmp_path / "s1")
    for n in (2, 3):
        done = mpiexec(
            n,
            tmp_path,
            "-c",
            str(config),
            "-i",
            str(events),
            "-o",
            f"r{n}.h5",
            "--data-dir",
            f"s{n}",
        )
        assert done.returncode == 0, done.stderr
        assert f"written on {n} rank(s)" in done.stdout
    serial = dump(tmp_path / "r1.h5")
    assert serial == dump(tmp_path / "r2.h5")
    assert serial == dump(tmp_path / "r3.h5")


def test_an_exception_on_one_rank_stops_every_rank(tmp_path: Path, events: Path) -> None:
    """A stage raising on rank 1 ends the whole job with the stage, rank and chunk named; no output."""
    config = write_config(tmp_path, TROUBLE.replace("ACTION", "raise").replace("MARKER", "none"))
    done = mpiexec(2, tmp_path, "-c", str(config), "-i", str(events), "-o", "out.h5")
    assert done.returncode != 0
    assert (
        "stage trouble (Trouble).run raised ValueError: bad row 25 (rank 1 at chunk 3"
        in done.stderr
    )
    assert not (tmp_path / "out.h5").exists()


def test_sigkill_of_one_rank_then_rerun_continues(tmp_path: Path, events: Path) -> None:
    """After SIGKILL of rank 1, the same command continues from the journal and gives the uninterrupted output."""
    marker = tmp_path / "killed"
    config = write_config(
        tmp_path, TROUBLE.replace("ACTION", "kill").replace("MARKER", str(marker))
    )
    args = ["-c", str(config), "-i", str(events), "-o", "out.h5", "--data-dir", "store"]
    killed = mpiexec(2, tmp_path, *args)
    assert killed.returncode != 0
    assert marker.exists()
    assert not (tmp_path / "out.h5").exists()
    rerun = mpiexec(2, tmp_path, *args)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed: 1 of 3 steps were already done" in rerun.stdout
    run_flow(config, tmp_path / "clean.h5", events, nompi=True, data_dir=tmp_path / "other")
    assert dump(tmp_path / "out.h5") == dump(tmp_path / "clean.h5")
    again = mpiexec(2, tmp_path, *args)
    assert "nothing to do" in again.stdout


def test_ctrl_c_under_mpiexec_stops_every_rank_then_rerun_continues(
    tmp_path: Path, events: Path
) -> None:
    """SIGINT while rank 0 waits in a collective: the job still ends at once, the rerun resumes."""
    stderr, rerun = interrupt_then_rerun(tmp_path, events)
    assert "rank 1: interrupted; run the same command again to continue." in stderr
    assert "resumed: 1 of 3 steps were already done" in rerun
