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


SECOND = """\
flow:
  source: raw/events
  stages: [reader]
raw/events:
  classname: H5FlowDatasetLoopGenerator
  dset_name: raw/events
  params: {chunk_size: 9}
reader:
  classname: Scratch
  path: _flow_stages
  params: {output: reco/from_scratch}
  requires: [scratch/tmp]
"""


def test_drop_applies_to_the_final_output_of_every_config(tmp_path: Path) -> None:
    """-d leaves objects out of the final output; later configs still read them; bad names exit 2."""
    import h5py

    write_events(tmp_path / "events.h5")
    first = write_config(tmp_path, RECO.replace("  drop: [scratch/tmp]\n", ""), name="a.yaml")
    second = tmp_path / "b.yaml"
    second.write_text(SECOND)
    args = ["-c", str(first), str(second), "-i", "events.h5", "-o", "out.h5"]
    # scratch/tmp is written by the first config, read by the second, dropped from the output;
    # raw/hits comes from the input; the references to both go with them
    run = flow(tmp_path, *args, "-d", "scratch/tmp", "-d", "/raw/hits", "-d", "reco/nothing")
    assert run.returncode == 0, run.stderr
    with h5py.File(tmp_path / "out.h5") as f:
        names: list[str] = []
        f.visit(names.append)
        assert len(f["reco/from_scratch/data"]) == 80  # the second config read scratch/tmp
    assert "reco/sums/data" in names
    assert "raw/events/data" in names
    assert not [n for n in names if n.startswith("scratch") or "raw/hits" in n]
    assert "the output has no object 'reco/nothing', so nothing was dropped" in run.stderr
    # without -d the same configs keep everything (another key, another output)
    kept = flow(tmp_path, *args[:-1], "kept.h5")
    assert kept.returncode == 0, kept.stderr
    with h5py.File(tmp_path / "kept.h5") as f:
        assert "scratch/tmp/data" in f
        assert "raw/events/ref/raw/hits/ref" in f
    # a pattern or an empty name is refused before anything is written
    for bad, problem in (("scratch/*", "is a pattern"), ("", "is empty"), ("a//b", "has an empty")):
        refused = flow(tmp_path, *args[:-1], "bad.h5", "-d", bad)
        assert refused.returncode == 2, refused.stderr
        assert f"The drop name {bad!r} (--drop / drop=) {problem}" in refused.stderr
        assert "write the exact path of a dataset or group" in refused.stderr
        assert not (tmp_path / "bad.h5").exists()
        assert not list(tmp_path.glob(".bad.h5.flow-*"))
