"""Run the ``persistable`` command in a real subprocess, and make small stores to run it on."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persistable import Persistable, PersistableParams


@dataclass
class CountParams(PersistableParams):
    """How many squares."""

    n: int


class Squares(Persistable[list[int], CountParams]):
    """The first n squares."""

    def _generate_payload(self, **untracked_payload_params: Any) -> list[int]:
        return [i * i for i in range(self.params.n)]


class Total(Persistable[int, CountParams]):
    """The sum of the upstream squares."""

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        (squares,) = self.tracked_persistable_dependencies
        return sum(squares.payload)


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m persistable ARGS`` in a subprocess; never raises on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "persistable", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def run_json(*args: str, env: dict[str, str] | None = None) -> Any:
    """The parsed JSON output of a command that must succeed."""
    completed = run_cli(*args, "--json", env=env)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)
