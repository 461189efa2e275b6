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
