"""A chunked HDF5 flow (h5flow-compatible), serially and under ``mpiexec -n 2``.

Writes a small ``events.h5`` (events, hits and their references), runs
``examples/flow/reco.yaml`` on it, shows one event's hits through ``dereference``,
then runs the same flow on 2 MPI ranks and checks the outputs are identical. Run it
twice: the second time every output comes from the store ("nothing to do").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from persistable.flow import H5FlowDataManager, dereference, run_flow

HERE = Path(__file__).resolve().parent
DATA = Path("example-data") / "flow"
EVENT_DTYPE = np.dtype([("id", "i8"), ("energy", "f8")])
HIT_DTYPE = np.dtype([("event", "i8"), ("charge", "f8")])


def write_events(path: Path, n_events: int = 500) -> None:
    """Events with 0-5 hits each, and the events -> hits references."""
    rng = np.random.default_rng(7)
    per_event = rng.integers(0, 6, n_events)
    parents = np.repeat(np.arange(n_events), per_event)
    events = np.zeros(n_events, EVENT_DTYPE)
    events["id"] = np.arange(n_events)
    events["energy"] = rng.random(n_events)
    hits = np.zeros(len(parents), HIT_DTYPE)
    hits["event"], hits["charge"] = parents, rng.random(len(parents)) * 5
    with H5FlowDataManager(path) as dm:
        dm.create_dset("raw/events", EVENT_DTYPE)
        dm.create_dset("raw/hits", HIT_DTYPE)
        dm.create_ref("raw/events", "raw/hits")
        dm.write_data("raw/events", dm.reserve_data("raw/events", n_events), events)
        dm.write_data("raw/hits", dm.reserve_data("raw/hits", len(hits)), hits)
        dm.write_ref("raw/events", "raw/hits", np.c_[parents, np.arange(len(parents))])


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    events = DATA / "events.h5"
    if not events.exists():
        write_events(events)
    config = HERE / "flow" / "reco.yaml"
    result = run_flow(config, DATA / "reco.h5", events, nompi=True, data_dir=DATA / "store")
    print(result.summary())
    with h5py.File(DATA / "reco.h5") as f:
        hits = dereference(
            f["reco/hits/data"],
            f["raw/events/ref/reco/hits/ref"],
            f["raw/events/ref/reco/hits/ref_region"],
            sel=slice(0, 3),
        )
        print("charges of the hits of events 0-2:", np.round(hits["charge"], 2).tolist())
        print("summed charge of events 0-2:", np.round(f["reco/charge/data"][:3], 2).tolist())
        print(
            "datasets:",
            sorted(n for n in f if n != "geometry"),
            "- reco/tmp dropped:",
            "tmp" not in f["reco"],
        )
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        print("no mpiexec beside this Python: pip install 'persistable[mpi]' to run the MPI part")
        return
    command = [str(mpiexec), "-n", "2", sys.executable, "-m", "persistable.flow", "--no-progress"]
    command += [
        "-c",
        str(config),
        "-i",
        str(events),
        "-o",
        str(DATA / "reco-2ranks.h5"),
        "--data-dir",
        str(DATA / "store-mpi"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    print(done.stdout.strip())
    with h5py.File(DATA / "reco.h5") as a, h5py.File(DATA / "reco-2ranks.h5") as b:
        same = all(
            np.array_equal(a[n][()], b[n][()]) for n in ("reco/hits/data", "reco/charge/data")
        )
    print("1 rank and 2 ranks give the same datasets:", same)


if __name__ == "__main__":
    main()
