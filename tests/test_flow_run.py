"""Serial flows: configs, multi-config runs, drop, requires, resume, the output artifact."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from _flow_stages import write_events

from persistable.exceptions import QuarantineWarning
from persistable.flow import (
    FlowClassNotFoundError,
    FlowConfigError,
    FlowInputError,
    FlowRequirementError,
    FlowStageError,
    load_config,
    run_flow,
)

RECO = """\
flow:
  source: raw/events
  stages: [hit_sum, scratch]
  drop: [scratch/tmp]
raw/events:
  classname: H5FlowDatasetLoopGenerator
  dset_name: raw/events
  params: {chunk_size: 7}
hit_sum:
  classname: HitSum
  path: _flow_stages
  requires: [raw/hits]
scratch:
  classname: Scratch
  path: _flow_stages
resources:
  - classname: Geometry
    path: _flow_stages
    params: !include geometry.yaml
"""


def dump(path: Path) -> dict[str, Any]:
    """Every object of an HDF5 file: dataset bytes and dtype, attributes."""
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:

        def visit(name: str, obj: Any) -> None:
            data = (obj.dtype.str, obj[()].tobytes()) if isinstance(obj, h5py.Dataset) else None
            out[name] = (data, {k: np.asarray(v).tolist() for k, v in obj.attrs.items()})

        f.visititems(visit)
    return out


def write_config(
    folder: Path, text: str = RECO, name: str = "reco.yaml", scale: float = 2.0
) -> Path:
    (folder / "geometry.yaml").write_text(f"scale: {scale}\n")
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.h5"
    write_events(path, n_events=40)
    return path


def test_flow_writes_h5flow_layout_and_drops_exactly(tmp_path: Path, events: Path) -> None:
    """A serial flow writes /<obj>/data, both ref_regions and 64-bit refs; drop removes only the exact object."""
    config = write_config(tmp_path)
    result = run_flow(config, tmp_path / "reco.h5", events, nompi=True, data_dir=tmp_path / "store")
    out = dump(tmp_path / "reco.h5")
    assert "reco/sums/data" in out
    assert "raw/events/ref/reco/sums/ref" in out
    assert "reco/sums/ref/raw/events/ref_region" in out
    assert out["raw/events/ref/reco/sums/ref"][0][0] == "<i8"
    assert not any(name.startswith("scratch") for name in out)  # dropped, group pruned
    assert out["geometry"][1] == {"scale": 2.0}
    with h5py.File(events) as f, h5py.File(tmp_path / "reco.h5") as g:
        hits, refs = f["raw/hits/data"][:], f["raw/events/ref/raw/hits/ref"][:]
        expected = np.zeros(40)
        np.add.at(expected, refs[:, 0], hits["charge"][refs[:, 1]])
        np.testing.assert_allclose(g["reco/sums/data"][:], expected * 2.0)
        assert g["raw"].attrs["detector"] == "test"
    assert result.status == "generated"
    assert len(result.loops) == 1
    assert result.loops[0].chunks == 6

    # the same flow without the drop keeps scratch/tmp and costs its space
    kept = write_config(tmp_path, RECO.replace("  drop: [scratch/tmp]\n", ""), name="keep.yaml")
    run_flow(kept, tmp_path / "kept.h5", events, nompi=True, data_dir=tmp_path / "store")
    assert "scratch/tmp/data" in dump(tmp_path / "kept.h5")
    # a drop name that is a prefix of another object's name drops nothing else
    near = write_config(
        tmp_path, RECO.replace("drop: [scratch/tmp]", "drop: [scratch/tm]"), name="near.yaml"
    )
    run_flow(near, tmp_path / "near.h5", events, nompi=True, data_dir=tmp_path / "store")
    assert "scratch/tmp/data" in dump(tmp_path / "near.h5")


def test_multi_config_flow_reads_previous_output(tmp_path: Path, events: Path) -> None:
    """Two configs in sequence: the second loops over a dataset the first wrote."""
    first = write_config(tmp_path, RECO, name="first.yaml")
    second = write_config(
        tmp_path,
        """\
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
        """,
        name="second.yaml",
    )
    run_flow([first, second], tmp_path / "two.h5", events, nompi=True, data_dir=tmp_path / "store")
    out = dump(tmp_path / "two.h5")
    assert "reco/sums/data" in out
    with h5py.File(tmp_path / "two.h5") as f:
        assert len(f["reco/again/data"]) == 80
    assert not list(tmp_path.glob(".two.h5.flow-*"))  # the work folder is gone


def test_output_is_an_artifact_and_a_rerun_does_nothing(tmp_path: Path, events: Path) -> None:
    """The output is committed with its checksum; a rerun (or a colleague) gets it from the store."""
    config = write_config(tmp_path)
    store = tmp_path / "store"
    first = run_flow(config, tmp_path / "a.h5", events, nompi=True, data_dir=store)
    [meta_file] = store.glob("flow_output/*/metadata.json")
    meta = json.loads(meta_file.read_text())
    assert meta["files"]["payload.h5"]["size"] == (tmp_path / "a.h5").stat().st_size
    assert first.key in str(meta_file)
    again = run_flow(config, tmp_path / "b.h5", events, nompi=True, data_dir=store)
    assert again.status == "from store"
    assert "nothing to do" in again.summary()
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    # another scale is another key
    other = write_config(tmp_path, scale=3.0)
    assert run_flow(other, tmp_path / "c.h5", events, nompi=True, data_dir=store).key != first.key


def test_failed_run_resumes_and_matches_an_uninterrupted_run(tmp_path: Path, events: Path) -> None:
    """A stage error leaves no output; the rerun replays the finished steps and gives the same file."""
    flaky = RECO.replace(
        "stages: [hit_sum, scratch]", "stages: [hit_sum, scratch, trouble]"
    ) + textwrap.dedent(
        """\
        trouble:
          classname: Trouble
          path: _flow_stages
          params: {at_row: 30, action: raise, marker: MARKER}
        """
    ).replace("MARKER", str(tmp_path / "raised"))
    config = write_config(tmp_path, flaky)
    with pytest.raises(
        FlowStageError,
        match=r"stage trouble \(Trouble\)\.run raised ValueError: bad row 30 \(rank 0 at chunk 4",
    ):
        run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store")
    assert not (tmp_path / "out.h5").exists()
    [work] = tmp_path.glob(".out.h5.flow-*")
    assert len(list((work / "journal-0").glob("step-*.pkl"))) == 4
    # the failure was transient (the stage raises once): the same call continues
    resumed = run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store")
    assert resumed.replayed_steps == 4
    assert "resumed: 4 of 6 steps" in resumed.summary()
    clean = write_config(tmp_path, flaky.replace("at_row: 30", "at_row: 999"), name="clean.yaml")
    run_flow(clean, tmp_path / "clean.h5", events, nompi=True, data_dir=tmp_path / "store2")
    assert dump(tmp_path / "out.h5") == dump(tmp_path / "clean.h5")


def test_failed_requirement_names_stage_and_requirement(tmp_path: Path, events: Path) -> None:
    """A requires entry that cannot be loaded raises (h5flow silently gave None)."""
    config = write_config(tmp_path, RECO.replace("requires: [raw/hits]", "requires: [raw/missing]"))
    with pytest.raises(FlowRequirementError, match=r"Stage 'hit_sum' requires 'raw/missing'"):
        run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store")
    assert not (tmp_path / "out.h5").exists()


def test_chunk_size_auto_on_a_contiguous_dataset(tmp_path: Path) -> None:
    """chunk_size: auto works on a dataset stored without HDF5 chunks."""
    path = tmp_path / "flat.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("raw/events/data", data=np.zeros(10, [("id", "i8"), ("energy", "f8")]))
        assert f["raw/events/data"].chunks is None
    config = write_config(
        tmp_path,
        """\
        flow: {source: raw/events, stages: [scratch]}
        scratch: {classname: Scratch, path: _flow_stages}
        """,
    )
    result = run_flow(config, tmp_path / "out.h5", path, nompi=True, data_dir=tmp_path / "store")
    assert result.loops[0].chunks == 1
    with h5py.File(tmp_path / "out.h5") as f:
        assert len(f["scratch/tmp/data"]) == 20


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "flow: {source: raw/events, stages: [a]}\na: {classname: Scratch, path: _flow_stages, colour: red}\n",
            r"key 'a\.colour': unknown key",
        ),
        (
            "flow: {source: raw/events, stages: [a], order: 1}\na: {classname: Scratch}\n",
            r"key 'flow\.order': unknown key",
        ),
        (
            "flow: {source: raw/events, stages: [a]}\n",
            r"key 'a': stage 'a' of flow\.stages has no block",
        ),
        (
            "flow: {source: raw/events, stages: [a, a]}\na: {classname: Scratch}\n",
            r"stage 'a' is listed twice",
        ),
        (
            "flow: {source: raw/events, stages: [a]}\na: {classname: Geometry, path: _flow_stages}\n",
            r"class 'Geometry' is not an H5FlowStage",
        ),
        (
            "flow: {source: raw/events, stages: [a]}\na: {classname: Scratch}\nb: 3\n",
            r"key 'b': unknown key",
        ),
        ("stages: [a]\n", r"key 'flow': missing"),
        (
            "flow: {source: raw/events, stages: [a], drop: [tmp*]}\na: {classname: Scratch}\n",
            r"key 'flow\.drop\[0\]': 'tmp\*' is a pattern .*; write the exact path of a dataset",
        ),
    ],
)
def test_bad_configs_name_file_key_and_fix(
    tmp_path: Path, events: Path, text: str, message: str
) -> None:
    """Each config mistake is one sentence naming the file and the key; nothing is written."""
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(FlowConfigError, match=message) as info:
        run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store")
    assert "bad.yaml" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "events.h5"]


def test_bad_files_and_missing_classes(tmp_path: Path, events: Path) -> None:
    """Not HDF5, no source dataset, output equal to input, no input, unknown class: clear errors."""
    config = write_config(tmp_path)
    text_file = tmp_path / "notes.h5"
    text_file.write_text("not hdf5")
    with pytest.raises(FlowInputError, match=r"is not an HDF5 file"):
        run_flow(config, tmp_path / "o.h5", text_file, nompi=True)
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(FlowInputError, match=r"has no dataset 'raw/events/data'"):
        run_flow(config, tmp_path / "o.h5", tmp_path / "empty.h5", nompi=True)
    with pytest.raises(FlowInputError, match=r"is the input file"):
        run_flow(config, events, events, nompi=True)
    with pytest.raises(FlowInputError, match=r"no input file was given; pass -i"):
        run_flow(config, tmp_path / "o.h5", None, nompi=True)
    assert not (tmp_path / "o.h5").exists()
    (tmp_path / "h5flow_modules").mkdir()
    # a broken module next to the config is parsed, never imported
    (tmp_path / "h5flow_modules" / "broken.py").write_text("raise SystemExit('imported!')\n")
    missing = write_config(
        tmp_path,
        "flow: {source: raw/events, stages: [a]}\na: {classname: NoSuchStage}\n",
        name="m.yaml",
    )
    with pytest.raises(
        FlowClassNotFoundError, match=r"'NoSuchStage' was not found .* under .*h5flow_modules"
    ):
        run_flow(missing, tmp_path / "o.h5", events, nompi=True)


def test_class_discovery_in_the_config_folder(tmp_path: Path, events: Path) -> None:
    """A class without path is found in a file under the config's folder (only that file imported)."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "other.py").write_text("raise SystemExit('imported!')\n")
    (tmp_path / "mods" / "mine.py").write_text(
        "from persistable.flow import H5FlowStage\n"
        "class Marker(H5FlowStage):\n"
        "    def init(self, source_name):\n"
        "        self.data_manager.set_attrs('marker', found=True)\n"
    )
    config = write_config(
        tmp_path, "flow: {source: raw/events, stages: [m]}\nm: {classname: Marker}\n"
    )
    assert load_config(config).stages[0].classname == "Marker"
    run_flow(config, tmp_path / "o.h5", events, nompi=True, data_dir=tmp_path / "store")
    with h5py.File(tmp_path / "o.h5") as f:
        assert bool(f["marker"].attrs["found"])


def test_ctrl_c_then_the_same_command_continues(tmp_path: Path, events: Path) -> None:
    """SIGINT in the middle of a serial run: the rerun continues from the journal."""
    marker = tmp_path / "waiting"
    sleepy = RECO.replace("stages: [hit_sum, scratch]", "stages: [hit_sum, scratch, pause]") + (
        f"pause:\n  classname: Trouble\n  path: _flow_stages\n"
        f"  params: {{at_row: 30, action: sleep, marker: {marker}}}\n"
    )
    config = write_config(tmp_path, sleepy)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    command = [
        sys.executable,
        "-m",
        "persistable.flow",
        "--nompi",
        "-c",
        str(config),
        "-i",
        str(events),
        "-o",
        "out.h5",
    ]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test runner started in the background (`make test &`) ignores SIGINT, and its
        # children inherit that: the child must take Ctrl-C as a terminal's would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # never leave it running into the next tests
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "run the same command again to continue" in stderr
    assert not (tmp_path / "out.h5").exists()
    rerun = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed: 4 of 6 steps were already done" in rerun.stdout


def test_a_stage_that_is_not_resumable_makes_the_rerun_start_over(
    tmp_path: Path, events: Path
) -> None:
    """With resumable = False on a stage, the rerun after a failure runs every chunk again."""
    text = RECO.replace("classname: Scratch", "classname: Stateful").replace(
        "stages: [hit_sum, scratch]", "stages: [hit_sum, scratch, trouble]"
    ) + (
        "trouble:\n  classname: Trouble\n  path: _flow_stages\n"
        f"  params: {{at_row: 30, action: raise, marker: {tmp_path / 'raised'}}}\n"
    )
    config = write_config(tmp_path, text)
    with pytest.raises(FlowStageError):
        run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store")
    rerun = run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store")
    assert rerun.replayed_steps == 0
    with h5py.File(tmp_path / "out.h5") as f:
        assert len(f["reco/sums/data"]) == 40


def test_mpi_is_off_with_nompi_or_h5flow_nompi(monkeypatch: pytest.MonkeyPatch) -> None:
    """--nompi and h5flow's H5FLOW_NOMPI give the serial communicator."""
    from persistable.flow._mpi import SerialComm, get_comm, mpi_wanted

    assert not mpi_wanted(nompi=True)
    assert type(get_comm(nompi=True)) is SerialComm
    monkeypatch.setenv("H5FLOW_NOMPI", "1")
    assert not mpi_wanted()
    assert type(get_comm()) is SerialComm


def test_mpio_is_detected_from_h5py_build() -> None:
    """has_mpio() is h5py's own build flag (False for the pip wheel, which has serial HDF5)."""
    from persistable.flow._h5 import has_mpio

    assert has_mpio() is bool(h5py.get_config().mpi)


def test_a_second_run_of_the_same_flow_at_once_is_refused(tmp_path: Path, events: Path) -> None:
    """While one run holds the flow's work folder, another run of it fails at once, naming the lock."""
    import filelock

    text = RECO.replace("stages: [hit_sum, scratch]", "stages: [hit_sum, scratch, trouble]") + (
        "trouble:\n  classname: Trouble\n  path: _flow_stages\n  params: {at_row: 30, action: raise}\n"
    )
    config = write_config(tmp_path, text)
    with pytest.raises(FlowStageError):
        run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store")
    [work] = tmp_path.glob(".out.h5.flow-*")
    with (
        filelock.FileLock(str(work / "run.lock"), timeout=0),
        pytest.raises(FlowInputError, match=r"Another run of this flow"),
    ):
        run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store")


def test_changing_a_helper_a_stage_calls_changes_the_key(tmp_path: Path, events: Path) -> None:
    """The key covers the stages' code fingerprints, including the user functions they call."""
    keys = []
    for factor in ("2.0", "3.0"):
        folder = tmp_path / f"f{factor[0]}"
        folder.mkdir()
        (folder / "stages.py").write_text(
            "from persistable.flow import H5FlowStage\n"
            f"def factor():\n    return {factor}\n"
            "class Helped(H5FlowStage):\n"
            "    def init(self, source_name):\n"
            "        self.data_manager.set_attrs('helped', factor=factor())\n"
        )
        config = write_config(
            folder, "flow: {source: raw/events, stages: [h]}\nh: {classname: Helped}\n"
        )
        keys.append(
            run_flow(config, folder / "o.h5", events, nompi=True, data_dir=tmp_path / "store").key
        )
    assert keys[0] != keys[1]


def test_a_changed_output_never_changes_what_the_store_serves(tmp_path: Path, events: Path) -> None:
    """-o is a read-only hard link (or a clone) of the stored file; a change made anyway is caught.

    The stored file is read-only; when -o shares its inode, writing -o takes a deliberate
    chmod (or root), and the next run finds the checksum wrong, quarantines the artifact
    and writes a correct output again. ``copy_output=True`` gives -o a writable file of
    its own, which the store never sees. With or without a drop; the input is never written.
    """
    input_bytes = events.read_bytes()
    store = tmp_path / "store"
    for text, name in (
        (RECO, "drop.yaml"),
        (RECO.replace("  drop: [scratch/tmp]\n", ""), "keep.yaml"),
    ):
        config = write_config(tmp_path, text, name=name)
        out = tmp_path / f"{name}.h5"
        first = run_flow(config, out, events, nompi=True, data_dir=store)
        [stored] = (store / "flow_output" / first.key).glob("payload*")
        assert stored.stat().st_mode & 0o222 == 0  # the committed file is read-only
        linked = stored.stat().st_ino == out.stat().st_ino
        assert first.placed == ("link" if linked else "clone")
        assert ("read-only hard link" in first.summary()) is linked
        original = dump(out)
        os.chmod(out, 0o644)  # a deliberate change of -o (root needs no chmod)
        with h5py.File(out, "r+") as f:
            f["reco/sums/data"][0] = -1.0
        again = tmp_path / f"{name}.again.h5"
        if linked:
            with pytest.warns(QuarantineWarning, match="regenerating"):
                result = run_flow(config, again, events, nompi=True, data_dir=store)
            assert result.status == "generated"
            assert list(store.glob(".persistable/quarantine/*/*/payload.h5"))
        else:  # a clone shares no bytes once written
            assert (
                run_flow(config, again, events, nompi=True, data_dir=store).status == "from store"
            )
        assert dump(again) == original

        copied = tmp_path / f"{name}.copy.h5"
        result = run_flow(config, copied, events, nompi=True, data_dir=store, copy_output=True)
        assert result.status == "from store"
        assert result.placed == "copy"
        [stored] = (store / "flow_output" / first.key).glob("payload*")
        assert copied.stat().st_ino != stored.stat().st_ino
        with h5py.File(copied, "r+") as f:  # writable, no chmod needed
            f["reco/sums/data"][0] = -2.0
        third = tmp_path / f"{name}.third.h5"
        assert run_flow(config, third, events, nompi=True, data_dir=store).status == "from store"
        assert dump(third) == original
    assert events.read_bytes() == input_bytes  # rank 0 writes a copy of the input, never the input


def test_a_store_on_another_file_system_gets_a_copy(tmp_path: Path, events: Path) -> None:
    """No rename or hard link across file systems: the store and -o each get a whole copy."""
    shm = Path("/dev/shm")  # tmpfs: another device than the test's temporary folder
    assert shm.stat().st_dev != tmp_path.stat().st_dev
    store = Path(tempfile.mkdtemp(dir=shm))
    try:
        config = write_config(tmp_path)
        out = tmp_path / "out.h5"
        first = run_flow(config, out, events, nompi=True, data_dir=store)
        [stored] = (store / "flow_output" / first.key).glob("payload*")
        assert stored.read_bytes() == out.read_bytes()
        assert stored.stat().st_mode & 0o222 == 0
        assert out.stat().st_mode & 0o200
        again = run_flow(config, tmp_path / "again.h5", events, nompi=True, data_dir=store)
        assert again.status == "from store"
        assert (tmp_path / "again.h5").read_bytes() == out.read_bytes()
        assert not list(tmp_path.glob(".out.h5.*"))  # no work folder or temporary file left
    finally:
        shutil.rmtree(store)


def test_an_array_changed_after_write_data_is_replayed_as_written(
    tmp_path: Path, events: Path
) -> None:
    """The journal keeps what write_data wrote, not the array as a stage changes it later."""
    text = RECO.replace("stages: [hit_sum, scratch]", "stages: [reuse, trouble]") + textwrap.dedent(
        """\
        reuse:
          classname: Reuse
          path: _flow_stages
        trouble:
          classname: Trouble
          path: _flow_stages
          params: {at_row: 30, action: raise, marker: MARKER}
        """
    ).replace("MARKER", str(tmp_path / "raised"))
    config = write_config(tmp_path, text)
    with pytest.raises(FlowStageError):
        run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store")
    resumed = run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store")
    assert resumed.replayed_steps == 4
    clean = write_config(tmp_path, text.replace("at_row: 30", "at_row: 999"), name="clean.yaml")
    run_flow(clean, tmp_path / "clean.h5", events, nompi=True, data_dir=tmp_path / "store2")
    assert dump(tmp_path / "out.h5") == dump(tmp_path / "clean.h5")
    with h5py.File(tmp_path / "out.h5", "r") as f:
        energy = f["raw/events/data"]["energy"]
        assert np.array_equal(f["reuse/first/data"][()], energy)
        assert np.array_equal(f["reuse/second/data"][()], energy + 100.0)


def test_a_stage_keeping_state_across_chunks_makes_the_rerun_start_over(
    tmp_path: Path, events: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A running total kept in a stage is not journaled: the rerun runs every chunk again, never a wrong total."""
    stateful = RECO.replace(
        "stages: [hit_sum, scratch]", "stages: [hit_sum, acc, trouble]"
    ) + textwrap.dedent(
        """\
        acc:
          classname: Accumulate
          path: _flow_stages
        trouble:
          classname: Trouble
          path: _flow_stages
          params: {at_row: 30, action: raise, marker: MARKER}
        """
    ).replace("MARKER", str(tmp_path / "raised"))
    config = write_config(tmp_path, stateful)
    with pytest.raises(FlowStageError, match="bad row 30"):
        run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store")
    [work] = tmp_path.glob(".out.h5.flow-*")
    assert (work / "journal-0" / "stateful.txt").read_text() == (
        "stage acc (Accumulate) changed self.total between chunks"
    )
    with caplog.at_level("WARNING", logger="persistable.flow"):
        rerun = run_flow(
            config, tmp_path / "out.h5", events, nompi=True, data_dir=tmp_path / "store"
        )
    assert rerun.replayed_steps == 0
    assert "Not resuming: stage acc (Accumulate) changed self.total between chunks" in caplog.text
    with h5py.File(events) as f, h5py.File(tmp_path / "out.h5") as g:
        assert g["summary"].attrs["total"] == pytest.approx(
            float(np.sum(f["raw/events/data"]["energy"]))
        )


def test_a_generator_that_changes_between_runs_is_never_replayed(
    tmp_path: Path, events: Path
) -> None:
    """If the rerun's generator gives other slices than the journal's, it stops; the next run starts over."""
    size_file = tmp_path / "size.txt"
    size_file.write_text("7")
    shifting = (
        RECO.replace(
            "classname: H5FlowDatasetLoopGenerator", "classname: Shifting\n  path: _flow_stages"
        )
        .replace("params: {chunk_size: 7}", f"params: {{size_file: {size_file}}}")
        .replace("stages: [hit_sum, scratch]", "stages: [hit_sum, scratch, trouble]")
    ) + textwrap.dedent(
        """\
        trouble:
          classname: Trouble
          path: _flow_stages
          params: {at_row: 30, action: raise, marker: MARKER}
        """
    ).replace("MARKER", str(tmp_path / "raised"))
    config = write_config(tmp_path, shifting)
    store = tmp_path / "store"
    with pytest.raises(FlowStageError, match="bad row 30"):
        run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=store)
    size_file.write_text("5")  # the same config now loops in other chunks
    with pytest.raises(
        FlowStageError,
        match=r"Cannot resume: generator raw/events \(Shifting\) gave rows 0:5 at step 0 on rank 0, "
        r"the interrupted run gave 0:7; its next\(\) is not deterministic",
    ):
        run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=store)
    assert not (tmp_path / "out.h5").exists()
    again = run_flow(config, tmp_path / "out.h5", events, nompi=True, data_dir=store)
    assert again.replayed_steps == 0
    clean = write_config(tmp_path, shifting.replace("at_row: 30", "at_row: 999"), name="clean.yaml")
    run_flow(clean, tmp_path / "clean.h5", events, nompi=True, data_dir=tmp_path / "store2")
    assert dump(tmp_path / "out.h5") == dump(tmp_path / "clean.h5")


def test_repack_prunes_groups_left_empty_by_a_drop(tmp_path: Path) -> None:
    """Dropping b/c removes its references' groups up to the first group that keeps something."""
    from persistable.flow._merge import repack

    with h5py.File(tmp_path / "in.h5", "w") as f:
        f["a/data"] = np.arange(3)
        f["a/ref/b/c/ref"] = np.zeros((1, 2), "i8")
        f["b/c/data"] = np.arange(2)
        f["b/d/data"] = np.arange(2)
        f.create_group("empty")  # empty before the drop: kept
    repack(tmp_path / "in.h5", tmp_path / "out.h5", ["b/c"])
    names: list[str] = []
    with h5py.File(tmp_path / "out.h5") as f:
        f.visit(names.append)
    assert sorted(names) == ["a", "a/data", "b", "b/d", "b/d/data", "empty"]
