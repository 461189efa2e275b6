"""run(executor='dask') starts its LocalCluster's workers from the preloaded forkserver, without the dashboard or the workers' profiler."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import json
    import os
    import sys
    from dataclasses import dataclass
    from typing import Any

    import dask

    import persistable
    from persistable import JsonFileIO, Persistable, PersistableParams, _forkserver


    @dataclass
    class ProbeParams(PersistableParams):
        index: int


    class Probe(Persistable[list, ProbeParams]):
        default_payload_io = JsonFileIO()

        def _generate_payload(self, **untracked_payload_params: Any) -> list:
            return [
                _forkserver.IMPORTED_BY_PID != os.getpid(),
                bool(dask.config.get("distributed.worker.profile.enabled")),
            ]


    if __name__ == "__main__":
        probes = [Probe(sys.argv[1], ProbeParams(index)) for index in range(4)]
        report = persistable.run(probes, executor="dask", max_workers=2, progress=False)
        assert report.ok, str(report)
        seen = sorted({tuple(Probe(sys.argv[1], ProbeParams(i)).payload) for i in range(4)})
        print(json.dumps({
            "seen": seen,
            "pids": sorted({result.worker.rsplit(":", 1)[1] for result in report.results}),
            "main": str(os.getpid()),
            "pandas_here": "pandas" in sys.modules,
        }))
    """
)


def test_the_run_s_local_cluster_forks_workers_with_persistable_preloaded(tmp_path: Path) -> None:
    """In a fresh program, run(executor='dask') ran every node in worker processes forked with persistable imported, profiler off."""
    script = tmp_path / "probe_dask.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["seen"] == [[True, False]]
    assert outcome["main"] not in outcome["pids"]
    assert not outcome["pandas_here"]


PORT_TAKEN_SCRIPT = textwrap.dedent(
    """
    import contextlib
    import faulthandler
    import socket
    import sys
    import warnings
    from dataclasses import dataclass
    from typing import Any

    import persistable
    from persistable import JsonFileIO, Persistable, PersistableParams


    @dataclass
    class QuietParams(PersistableParams):
        index: int


    class Quiet(Persistable[int, QuietParams]):
        default_payload_io = JsonFileIO()

        def _generate_payload(self, **untracked_payload_params: Any) -> int:
            return self.params.index


    if __name__ == "__main__":
        # A hang prints every thread's stack and ends the program (the test then fails).
        faulthandler.dump_traceback_later(float(sys.argv[2]), exit=True)
        warnings.simplefilter("error")
        with contextlib.ExitStack() as stack:
            holder = stack.enter_context(socket.socket())
            with contextlib.suppress(OSError):  # already taken by someone else: the same case
                holder.bind(("127.0.0.1", 8787))
                holder.listen()
            probe = stack.enter_context(socket.socket())
            taken = probe.connect_ex(("127.0.0.1", 8787)) == 0
            probe.close()
            targets = [Quiet(sys.argv[1], QuietParams(index)) for index in range(2)]
            report = persistable.run(targets, executor="dask", max_workers=2, progress=False)
        assert report.ok, str(report)
        print("TAKEN", taken, "PAYLOADS", sorted(target.payload for target in targets))
    """
)


def test_the_run_s_local_cluster_starts_quietly_while_port_8787_is_taken(tmp_path: Path) -> None:
    """With Dask's default HTTP port held (a dashboard, another cluster), a run under
    warnings-as-errors starts its own cluster without a warning and completes."""
    script = tmp_path / "port_taken.py"
    script.write_text(PORT_TAKEN_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store"), "240"],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "TAKEN True PAYLOADS [0, 1]"
