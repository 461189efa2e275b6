"""map on processes: workers inherit persistable's sample machinery from a preloaded forkserver instead of importing it again."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import os

    from persistable.samples import BaseSample, Compose, Processor
    from persistable.samples import _map


    class Item(BaseSample):
        inherited: bool = False


    class Probe(Processor):
        def process(self, sample: Item) -> Item:
            sample.inherited = _map.IMPORTED_BY_PID != os.getpid()
            return sample


    if __name__ == "__main__":
        items = [Item(id=f"i{index}") for index in range(4)]
        done = Compose([Probe()]).map(items, executor="processes", max_workers=2)
        print(sorted({item.inherited for item in done}))
    """
)


def test_process_workers_inherit_the_preloaded_modules(tmp_path: Path) -> None:
    """In a fresh program, the workers of map(executor='processes') did not import persistable.samples themselves."""
    script = tmp_path / "probe_map.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True]"
