"""The seed README's examples run against a memory store and an S3 bucket by changing only data_dir.

The example files stay verbatim: each test copies them and replaces the one
``data_dir = ...`` line of each by a value read from the environment, which is the
one-word change a user makes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from persistable import make_store

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = ("seed_example_1_gaussian_points.py", "seed_example_2_outlier_estimator.py")
DATA_DIR_LINE = """data_dir = Path('.').absolute() / "example-data"\n"""


def _copy_with_data_dir(target: Path) -> None:
    for script in SCRIPTS:
        source = (EXAMPLES / script).read_text()
        assert source.count(DATA_DIR_LINE) == 1, f"{script} no longer has its data_dir line"
        changed = source.replace(
            DATA_DIR_LINE, 'data_dir = __import__("os").environ["SEED_DATA_DIR"]\n'
        )
        (target / script).write_text(changed)


def _run(code: str, cwd: Path, data_dir: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key.startswith("AWS_")}
    env.update({"PYTHONPATH": str(cwd), "PATH": "", "SEED_DATA_DIR": data_dir})
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )


RUN_EXAMPLE_2 = "import runpy; runpy.run_path('seed_example_2_outlier_estimator.py')"


def test_seed_examples_on_a_memory_store(tmp_path: Path) -> None:
    """With data_dir="memory://seed", example 2 generates once and then loads, in one process."""
    _copy_with_data_dir(tmp_path)
    code = (
        f"{RUN_EXAMPLE_2}\n{RUN_EXAMPLE_2}\n"
        "from persistable import MemoryStore\n"
        "print(sorted(MemoryStore('seed').iter_artifacts()))\n"
    )
    result = _run(code, tmp_path, "memory://seed")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Generating outlier_estimator_p") == 1
    assert result.stderr.count("Loaded outlier_estimator_p") == 1
    assert "gaussian_distributed_points_p" in result.stdout
    assert "outlier_estimator_p" in result.stdout


@pytest.mark.s3
def test_seed_examples_on_s3(s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    """With data_dir="s3://bucket/cache" (endpoint and credentials from the environment), the
    examples commit their artifacts to S3 and a second run loads them without rewriting."""
    url, options = s3_bucket
    _copy_with_data_dir(tmp_path)
    first = _run(RUN_EXAMPLE_2, tmp_path, url)
    assert first.returncode == 0, first.stderr
    store = make_store(url, storage_options=options)
    artifacts = list(store.iter_artifacts())
    assert [name for name, _ in artifacts] == [
        "gaussian_distributed_points_p",
        "outlier_estimator_p",
    ]
    metadata = {artifact: store.read_metadata(*artifact) for artifact in artifacts}
    second = _run(RUN_EXAMPLE_2, tmp_path, url)
    assert second.returncode == 0, second.stderr
    assert "Loaded outlier_estimator_p" in second.stderr
    # Example 1 calls generate(), which always writes: it replaced the points with the same
    # bytes; example 2's load_generate() kept the estimator.
    again = {artifact: store.read_metadata(*artifact) for artifact in artifacts}
    for artifact in artifacts:
        name = metadata[artifact]["payload_file"]
        assert again[artifact]["files"][name] == metadata[artifact]["files"][name]
    outlier = [artifact for artifact in artifacts if artifact[0] == "outlier_estimator_p"]
    assert [again[a] for a in outlier] == [metadata[a] for a in outlier]
    # The keys are the same as on a local folder: the artifacts are interchangeable.
    local = _run(RUN_EXAMPLE_2, tmp_path, str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    assert sorted(make_store(str(tmp_path / "local")).iter_artifacts()) == artifacts
