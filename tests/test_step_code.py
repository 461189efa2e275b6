"""Code changes re-run steps and stages across processes (``code_changes="rerun"``, memori's semantics)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from persistable import step
from persistable.store import LocalStore

REPO = Path(__file__).resolve().parent.parent

MODULE = '''
"""A user's module with a step and a memori stage."""
import sys
from pathlib import Path

from persistable import step
from persistable.memori import Stage

FACTOR = {factor}


def scale(x):
    return helper(x)  # {comment}


def helper(x, offset={offset}):
    return x * FACTOR + offset


@step(data_dir=sys.argv[1])
def compute(x: int) -> int:
    with Path(sys.argv[2]).open("a") as journal:
        journal.write("compute\\n")
    return {body}


def stage_function(x):
    with Path(sys.argv[2]).open("a") as journal:
        journal.write("stage\\n")
    return {body}


if __name__ == "__main__":
    print(compute(3), Stage(stage_function, hash_output=sys.argv[1]).run(3)["output"])
'''


def run_module(folder: Path, store: Path, journal: Path, **source: str) -> str:
    """Write the module with ``source`` filled in and run it as a script in a new process."""
    values = {"factor": "2", "offset": "0", "comment": "helper does the work", "body": "scale(x)"}
    values |= source
    script = folder / "user_steps.py"
    script.write_text(MODULE.format(**values))
    completed = subprocess.run(
        [sys.executable, str(script), str(store), str(journal)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    return completed.stdout.strip()


def test_code_changes_rerun_across_processes(tmp_path: Path) -> None:
    """An edit of the step, of a callee two calls deep, of a module constant or of a callee's default re-runs; a comment does not."""
    store, journal = tmp_path / "store", tmp_path / "journal.txt"
    journal.touch()

    def computed() -> int:
        return len(journal.read_text().splitlines())

    assert run_module(tmp_path, store, journal) == "6 6"
    assert computed() == 2
    assert run_module(tmp_path, store, journal, comment="reworded, same code") == "6 6"
    assert computed() == 2  # comments and formatting do not count
    assert run_module(tmp_path, store, journal, factor="3") == "9 9"
    assert computed() == 4  # a module constant read by a callee of a callee
    assert run_module(tmp_path, store, journal, factor="3", body="scale(x) + 1") == "10 10"
    assert computed() == 6  # the step's own code
    assert run_module(tmp_path, store, journal, factor="3", body="scale(x) + 1") == "10 10"
    assert computed() == 6
    assert (
        run_module(tmp_path, store, journal, factor="3", offset="1", body="scale(x) + 1") == "11 11"
    )
    assert computed() == 8  # a default value in a callee


def test_code_changes_options(local_store: LocalStore) -> None:
    """code_changes="ignore" keeps the code out of the key; "rerun" puts its fingerprint in."""

    def double(x: int) -> int:
        return 2 * x

    def triple(x: int) -> int:
        return 3 * x

    rerun = [step(data_dir=local_store, payload_name="f")(f) for f in (double, triple)]
    ignore = [
        step(data_dir=local_store, payload_name="f", code_changes="ignore")(f)
        for f in (double, triple)
    ]
    assert rerun[0].key(1) != rerun[1].key(1)
    assert ignore[0].key(1) == ignore[1].key(1)
    assert "code" in rerun[0].bind(1).key_tree()
    assert "code" not in ignore[0].bind(1).key_tree()


def test_code_changes_warn(local_store: LocalStore) -> None:
    """code_changes="warn" keeps the key and warns, naming the function, when other code made the artifact."""
    from persistable.exceptions import CodeChangedWarning

    def version_one(x: int) -> int:
        return x + 1

    def version_two(x: int) -> int:
        return x + 2

    first = step(data_dir=local_store, payload_name="g", code_changes="warn")(version_one)
    second = step(data_dir=local_store, payload_name="g", code_changes="warn")(version_two)
    assert first(1) == 2
    assert first.key(1) == second.key(1)
    with pytest.warns(CodeChangedWarning, match="version_two"):
        assert second(1) == 2
    assert first.bind(1).metadata["code"]["functions"]
