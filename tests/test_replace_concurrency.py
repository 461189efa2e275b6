"""Eight processes replace, delete and load one key at once: nothing half-written, nothing lost but what was deleted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from persistable.artifact import Artifact
from persistable.store import Store, make_store

WORKER = Path(__file__).with_name("replace_worker.py")


def _run(
    url: str, storage_options: dict[str, Any] | None, steps: int, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                json.dumps(
                    {
                        "url": url,
                        "storage_options": storage_options,
                        "writer": f"w{index}",
                        "seed": index,
                        "steps": steps,
                    }
                ),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for index in range(8)
    ]
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        outcomes += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return outcomes


def _check(store: Store, outcomes: list[dict[str, Any]], steps: int) -> None:
    assert len(outcomes) == 8 * steps
    errors = [o for o in outcomes if "error" in o]
    assert errors == []
    loads = [o for o in outcomes if "whole" in o]
    assert loads, "no process loaded anything"
    assert all(o["whole"] for o in loads)
    generated = {o["header"] for o in outcomes if o["action"] == "generate"}
    # What a generate() wrote is what that process holds: its own payload.
    for o in outcomes:
        if o["action"] == "generate":
            assert o["header"].startswith(o["writer"] + ":")
    assert generated
    # The end state: no artifact, or one whole artifact that verifies; no leftovers.
    keys = store.list_keys("contended")
    assert len(keys) <= 1
    for key in keys:
        artifact = Artifact(store, "contended", key)
        artifact.verify()
    assert store.list_dir(".persistable/quarantine") == []


def test_eight_processes_on_a_local_store(tmp_path: Path) -> None:
    """On a local folder: every load is whole, the end state verifies, no lock file or staging folder is left."""
    url = str(tmp_path / "store")
    outcomes = _run(url, None, steps=12)
    store = make_store(url)
    _check(store, outcomes, 12)
    assert list((tmp_path / "store" / ".persistable" / "locks").rglob("*.lock")) == []
    assert list((tmp_path / "store" / ".persistable" / "staging").iterdir()) == []


@pytest.mark.s3
def test_eight_processes_on_s3(
    s3_bucket: tuple[str, dict[str, Any]], s3_env: dict[str, str]
) -> None:
    """On S3 (loopback moto_server): every load is whole and the end state verifies."""
    url, storage_options = s3_bucket
    outcomes = _run(url, storage_options, steps=4, env={**os.environ, **s3_env})
    _check(make_store(url, storage_options=storage_options), outcomes, 4)
