"""run(executor='processes'): workers inherit persistable from a preloaded forkserver instead of importing it again."""

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

    import persistable
    from persistable import JsonFileIO, Persistable, PersistableParams, _forkserver


    @dataclass
    class ProbeParams(PersistableParams):
        index: int


    class Probe(Persistable[bool, ProbeParams]):
        default_payload_io = JsonFileIO()

        def _generate_payload(self, **untracked_payload_params: Any) -> bool:
            return _forkserver.IMPORTED_BY_PID != os.getpid()


    if __name__ == "__main__":
        probes = [Probe(sys.argv[1], ProbeParams(index)) for index in range(4)]
        report = persistable.run(probes, executor="processes", max_workers=2, progress=False)
        assert report.ok, str(report)
        inherited = sorted({Probe(sys.argv[1], ProbeParams(i)).payload for i in range(4)})
        workers = sorted({result.worker for result in report.results})
        print(json.dumps({"inherited": inherited, "workers": len(workers)}))
    """
)


def test_process_workers_inherit_the_preloaded_persistable(tmp_path: Path) -> None:
    """In a fresh program, the workers of run(executor='processes') did not import persistable themselves."""
    script = tmp_path / "probe_run.py"
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
    assert outcome["inherited"] == [True]
    assert outcome["workers"] >= 1
