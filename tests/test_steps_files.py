"""``@step`` with File and Directory arguments, and the step example."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from persistable import Directory, File, step
from persistable.store import LocalStore

REPO = Path(__file__).resolve().parent.parent


def test_file_arguments_are_keyed_by_content(local_store: LocalStore, tmp_path: Path) -> None:
    """A File argument recomputes when its content changes and not when it is renamed."""
    calls: list[str] = []

    @step(data_dir=local_store, payload_name="words")
    def words(text: File) -> int:
        calls.append(text.name)
        return len(text.read_text().split())

    source = tmp_path / "a.txt"
    source.write_text("one two")
    assert words(File(source)) == 2
    assert words(File(source)) == 2
    renamed = source.rename(tmp_path / "b.txt")
    assert words(File(renamed)) == 2
    assert calls == ["a.txt"]
    renamed.write_text("one two three")
    assert words(File(renamed)) == 3
    assert calls == ["a.txt", "b.txt"]
    lineage = words.bind(File(renamed)).lineage()
    assert lineage["text"]["path"].endswith("b.txt")


def test_directory_arguments_are_keyed_by_their_tree(
    local_store: LocalStore, tmp_path: Path
) -> None:
    """A Directory argument recomputes when a file inside it changes."""

    @step(data_dir=local_store, payload_name="count_files")
    def count_files(folder: Directory) -> int:
        return sum(1 for path in folder.iterdir() if path.is_file())

    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "1.txt").write_text("a")
    key = count_files.key(Directory(folder))
    assert count_files(Directory(folder)) == 1
    (folder / "2.txt").write_text("b")
    assert count_files.key(Directory(folder)) != key
    assert count_files(Directory(folder)) == 2


def test_the_step_example_runs_and_then_loads(tmp_path: Path) -> None:
    """examples/step_pipeline.py computes on its first run and loads everything on its second."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PERSISTABLE_DEMO_DIR": str(tmp_path)}
    command = [sys.executable, str(REPO / "examples" / "step_pipeline.py")]
    first = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=300, check=True
    )
    assert "computed 6 steps" in first.stdout
    second = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=300, check=True
    )
    assert "computed 0 steps" in second.stdout
    results = [line for line in first.stdout.splitlines() if line.startswith("signal-")]
    assert len(results) == 3
    assert results == [line for line in second.stdout.splitlines() if line.startswith("signal-")]
