"""Flows written with h5py's ``mpio`` driver (parallel HDF5) under the system ``mpiexec``.

The pip h5py has serial HDF5 only; ``_mpio_venv`` builds an env whose h5py has parallel
HDF5 (once per machine). There, ranks write one shared file: the datasets must be
identical to a serial run's and to the per-rank replicas' (the pip wheels' path), and a
killed rank, a failing rank and data the driver cannot write must behave as there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import h5py
import pytest
from _flow_stages import write_events
from _mpio_venv import MpioEnv, MpioUnavailable, mpio_env
from test_flow_mpi import TROUBLE, interrupt_then_rerun, mpiexec
from test_flow_run import RECO, dump, write_config

from persistable.flow import run_flow

SHARED = "(one shared file, mpio)"

#: Building the env (first use on a machine) compiles mpi4py and h5py: minutes.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def mpio() -> MpioEnv:
    try:
        return mpio_env()
    except MpioUnavailable as why:
        pytest.skip(f"cannot test the mpio write path: {why}")


def run_mpio(
    env: MpioEnv, n: int, cwd: Path, *args: str, nompio: bool = False
) -> subprocess.CompletedProcess[str]:
    """``persistable flow`` on ``n`` ranks of the system MPICH, in the parallel-h5py env."""
    environ = {"PERSISTABLE_FLOW_NOMPIO": "1" if nompio else ""}
    return mpiexec(n, cwd, *args, launcher=env.mpiexec, python=env.python, environ=environ)


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.h5"
    write_events(path, n_events=40)
    return path


def test_the_env_has_parallel_hdf5(mpio: MpioEnv) -> None:
    """The built h5py has the mpio driver (and the project's pip h5py does not)."""
    probe = subprocess.run(
        [str(mpio.python), "-c", "import h5py; print(h5py.get_config().mpi)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "True"
    assert not h5py.get_config().mpi


def test_mpio_output_equals_serial_and_replicas_on_1_2_3_ranks(
    mpio: MpioEnv, tmp_path: Path, events: Path
) -> None:
    """One shared file on 2 and 3 ranks holds the same datasets as a serial run and the replicas.

    The replicas run twice: with the pip wheels, and in the parallel-h5py env with mpio
    turned off by ``PERSISTABLE_FLOW_NOMPIO``.
    """
    config = write_config(tmp_path)
    run_flow(config, tmp_path / "serial.h5", events, nompi=True, data_dir=tmp_path / "s0")
    args = ["-c", str(config), "-i", str(events)]
    replicas = mpiexec(2, tmp_path, *args, "-o", "replicas.h5", "--data-dir", "replicas")
    assert replicas.returncode == 0, replicas.stderr
    assert SHARED not in replicas.stdout
    off = run_mpio(mpio, 2, tmp_path, *args, "-o", "off.h5", "--data-dir", "off", nompio=True)
    assert off.returncode == 0, off.stderr
    assert "written on 2 rank(s), 3 steps" in off.stdout
    for n in (1, 2, 3):
        done = run_mpio(mpio, n, tmp_path, *args, "-o", f"m{n}.h5", "--data-dir", f"m{n}")
        assert done.returncode == 0, done.stderr
        assert f"written on {n} rank(s)" in done.stdout
        assert (SHARED in done.stdout) == (n > 1), done.stdout
    serial = dump(tmp_path / "serial.h5")
    assert serial == dump(tmp_path / "replicas.h5")
    assert serial == dump(tmp_path / "off.h5")
    for n in (1, 2, 3):
        assert serial == dump(tmp_path / f"m{n}.h5"), n


def test_mpio_sigkill_of_one_rank_then_rerun_continues(
    mpio: MpioEnv, tmp_path: Path, events: Path
) -> None:
    """A killed rank leaves no output; the rerun resumes from the journal and matches a clean run."""
    marker = tmp_path / "killed"
    config = write_config(
        tmp_path, TROUBLE.replace("ACTION", "kill").replace("MARKER", str(marker))
    )
    args = ["-c", str(config), "-i", str(events), "-o", "out.h5", "--data-dir", "store"]
    killed = run_mpio(mpio, 2, tmp_path, *args)
    assert killed.returncode != 0
    assert marker.exists()
    assert not (tmp_path / "out.h5").exists()
    rerun = run_mpio(mpio, 2, tmp_path, *args)
    assert rerun.returncode == 0, rerun.stderr
    assert SHARED in rerun.stdout
    assert "resumed: 1 of 3 steps were already done" in rerun.stdout
    run_flow(config, tmp_path / "clean.h5", events, nompi=True, data_dir=tmp_path / "other")
    assert dump(tmp_path / "out.h5") == dump(tmp_path / "clean.h5")
    again = run_mpio(mpio, 2, tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout


def test_mpio_exception_on_one_rank_stops_every_rank(
    mpio: MpioEnv, tmp_path: Path, events: Path
) -> None:
    """A stage raising on rank 1 of a shared file ends the job naming stage, rank and chunk."""
    config = write_config(tmp_path, TROUBLE.replace("ACTION", "raise").replace("MARKER", "none"))
    done = run_mpio(mpio, 2, tmp_path, "-c", str(config), "-i", str(events), "-o", "out.h5")
    assert done.returncode != 0
    assert (
        "stage trouble (Trouble).run raised ValueError: bad row 25 (rank 1 at chunk 3"
        in done.stderr
    )
    assert not (tmp_path / "out.h5").exists()


LABELS = RECO.replace("stages: [hit_sum, scratch]", "stages: [hit_sum, labels]") + (
    "labels:\n  classname: Labels\n  path: _flow_stages\n"
)


def _labels(path: Path) -> tuple[list[str], dict[str, Any]]:
    with h5py.File(path, "r") as fh:
        labels = list(fh["labels/data"].asstr()[()])
    rest = {k: v for k, v in dump(path).items() if not k.startswith("labels")}
    return labels, rest


def test_mpio_falls_back_to_replicas_for_what_it_cannot_write(
    mpio: MpioEnv, tmp_path: Path, events: Path
) -> None:
    """Variable-length data, compression, or a compressed input dataset: per-rank replicas instead."""
    config = write_config(tmp_path, LABELS)
    run_flow(config, tmp_path / "serial.h5", events, nompi=True, data_dir=tmp_path / "s0")
    done = run_mpio(mpio, 2, tmp_path, "-c", str(config), "-i", str(events), "-o", "vl.h5")
    assert done.returncode == 0, done.stderr
    assert "written on 2 rank(s), 3 steps" in done.stdout
    labels, rest = _labels(tmp_path / "serial.h5")
    assert labels[:3] == ["event-0", "event-1!", "event-2!!"]
    assert len(labels) == 40
    assert _labels(tmp_path / "vl.h5") == (labels, rest)

    plain = write_config(tmp_path, name="plain.yaml")
    args = ["-c", str(plain), "-i", str(events), "--compression", "gzip"]
    run_flow(plain, tmp_path / "gz0.h5", events, nompi=True, compression="gzip")
    done = run_mpio(mpio, 2, tmp_path, *args, "-o", "gz.h5", "--data-dir", "gz")
    assert done.returncode == 0, done.stderr
    assert "written on 2 rank(s), 3 steps" in done.stdout
    assert dump(tmp_path / "gz0.h5") == dump(tmp_path / "gz.h5")
    with h5py.File(tmp_path / "gz.h5", "r") as fh:
        assert fh["reco/sums/data"].compression == "gzip"

    # an input whose datasets are compressed, appended to by a flow without compression
    again = ["-c", str(plain), "-i", str(tmp_path / "gz0.h5")]
    run_flow(
        plain, tmp_path / "more0.h5", tmp_path / "gz0.h5", nompi=True, data_dir=tmp_path / "m0"
    )
    done = run_mpio(mpio, 2, tmp_path, *again, "-o", "more.h5", "--data-dir", "more")
    assert done.returncode == 0, done.stderr
    assert "written on 2 rank(s), 3 steps" in done.stdout
    more = dump(tmp_path / "more.h5")
    assert len(more["reco/sums/data"][0][1]) == 2 * 40 * 8  # 40 more rows of float64
    assert more == dump(tmp_path / "more0.h5")


SECOND = """\
flow:
  source: reco/sums
  stages: [again]
reco/sums:
  classname: H5FlowDatasetLoopGenerator
  dset_name: reco/sums
  params: {chunk_size: 5}
again:
  classname: Scratch
  path: _flow_stages
  params: {output: reco/again}
"""


def test_mpio_multi_config_flow_with_a_drop_on_3_ranks(
    mpio: MpioEnv, tmp_path: Path, events: Path
) -> None:
    """Two configs in sequence (the second reads the first's shared file), one object dropped."""
    first = write_config(tmp_path, RECO, name="first.yaml")
    second = write_config(tmp_path, SECOND, name="second.yaml")
    run_flow(
        [first, second],
        tmp_path / "serial.h5",
        events,
        nompi=True,
        drop=["reco/again"],
        data_dir=tmp_path / "s0",
    )
    args = ["-c", str(first), "-c", str(second), "-i", str(events), "-d", "reco/again"]
    done = run_mpio(mpio, 3, tmp_path, *args, "-o", "m3.h5", "--data-dir", "m3")
    assert done.returncode == 0, done.stderr
    assert SHARED in done.stdout
    out = dump(tmp_path / "m3.h5")
    assert "reco/sums/data" in out
    assert not any(name.startswith("reco/again") for name in out)
    assert out == dump(tmp_path / "serial.h5")


def test_mpio_ctrl_c_stops_every_rank_then_rerun_continues(
    mpio: MpioEnv, tmp_path: Path, events: Path
) -> None:
    """SIGINT to the system mpiexec while rank 0 waits: the job ends, the rerun resumes on mpio."""
    stderr, rerun = interrupt_then_rerun(
        tmp_path, events, launcher=mpio.mpiexec, python=mpio.python
    )
    assert "rank 1: interrupted; run the same command again to continue." in stderr
    assert "resumed: 1 of 3 steps were already done" in rerun
    assert SHARED in rerun


def test_mpio_set_attrs_on_one_rank_only_is_an_error_not_a_hang(
    mpio: MpioEnv, tmp_path: Path, events: Path
) -> None:
    """Attributes are collective on a shared file: a rank-0-only set_attrs stops the job, named."""
    config = write_config(tmp_path, RECO.replace("classname: Scratch", "classname: RankZeroAttrs"))
    args = ["-c", str(config), "-i", str(events), "-o", "out.h5"]
    done = run_mpio(mpio, 2, tmp_path, *args)
    assert done.returncode != 0
    assert "called set_attrs('scratch/tmp') while rank 1 called reserve_data('scratch/tmp')" in (
        done.stderr
    )
    assert not (tmp_path / "out.h5").exists()
    replicas = run_mpio(mpio, 2, tmp_path, *args, nompio=True)  # rank 0's replica is the output
    assert replicas.returncode == 0, replicas.stderr
