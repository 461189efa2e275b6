"""A cache written by the real persistable 1.3.1 is adopted: same payload, 1.x files untouched."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import v1_pipeline
from _v1_venv import run_v1

import persistable
from persistable.exceptions import PersistableWarning
from persistable.migration import migrate_v1

TESTS = Path(__file__).resolve().parent
N = 40


@pytest.fixture(scope="module")
def v1_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A 1.x cache of the points (CSV) and the scaled points (pickle), written by 1.3.1, and its md5s."""
    folder = tmp_path_factory.mktemp("v1")
    output = run_v1(TESTS / "v1_pipeline.py", str(folder / "cache"), str(N), cwd=folder)
    return folder / "cache", output.split()


@pytest.fixture
def cache(v1_cache: tuple[Path, list[str]], tmp_path: Path) -> Iterator[Path]:
    """A private copy of the 1.x cache (mtimes kept)."""
    copy = tmp_path / "cache"
    shutil.copytree(v1_cache[0], copy)
    v1_pipeline.GENERATED.clear()
    yield copy
    v1_pipeline.GENERATED.clear()


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        path.name: (path.read_bytes(), path.stat().st_mtime_ns)
        for path in folder.iterdir()
        if path.is_file()
    }


def test_a_real_1x_cache_is_adopted(v1_cache: tuple[Path, list[str]], cache: Path) -> None:
    """The 1.x payloads load without regenerating, equal to 1.x's, committed as artifacts noting their origin."""
    before = _snapshot(cache)
    assert sorted(before) == [
        f"points_p({v1_cache[1][0]}).csv",
        f"points_p({v1_cache[1][0]}).params.json",
        "points_p.log",
        f"scaled_p({v1_cache[1][1]}).params.json",
        f"scaled_p({v1_cache[1][1]}).persistable",
        "scaled_p.log",
        "summary_p.log",
    ]
    points, scaled, summary = v1_pipeline.build(cache, N)
    assert [points.v1_persist_hash, scaled.v1_persist_hash] == v1_cache[1]
    points.load()
    scaled.load_generate()
    assert v1_pipeline.GENERATED == []
    v1_points = np.loadtxt(cache / f"points_p({v1_cache[1][0]}).csv", delimiter=",")
    with (cache / f"scaled_p({v1_cache[1][1]}).persistable").open("rb") as file:
        v1_scaled = pickle.load(file)
    np.testing.assert_array_equal(points.payload, v1_points)
    np.testing.assert_array_equal(scaled.payload, v1_scaled)
    origin = scaled.metadata["adopted_from"]
    assert origin["format"] == "persistable 1.x"
    assert origin["payload_file"] == f"scaled_p({v1_cache[1][1]}).persistable"
    assert origin["md5"] == v1_cache[1][1]
    log = scaled.artifact.read_log()
    assert log.startswith("Adopted from the persistable 1.x file scaled_p(")
    scaled.verify()
    # The summary was never persisted by 1.x: it is generated from the adopted upstream.
    summary.load_generate()
    assert v1_pipeline.GENERATED == ["summary_p"]
    assert _snapshot(cache) == before
    # Next time, the artifacts load; nothing is adopted twice.
    metadata = scaled.metadata
    _, again, _ = v1_pipeline.build(cache, N)
    again.load()
    assert again.metadata == metadata


def test_the_runner_adopts_1x_files(cache: Path) -> None:
    """persistable.run counts an adoptable 1.x file as existing, so nothing upstream is generated."""
    _, _, summary = v1_pipeline.build(cache, N)
    report = persistable.run([summary], executor="serial")
    assert v1_pipeline.GENERATED == ["summary_p"]
    assert report.failed == []
    _, scaled, _ = v1_pipeline.build(cache, N)
    assert "adopted_from" in scaled.metadata


def test_a_1x_md5_collision_is_refused(v1_cache: tuple[Path, list[str]], cache: Path) -> None:
    """A 1.x file whose params JSON disagrees with the params is not adopted, says why, and stays."""
    params_file = cache / f"points_p({v1_cache[1][0]}).params.json"
    tree = json.loads(params_file.read_text())
    params_file.write_text(json.dumps({**tree, "random_state": 101}))
    before = _snapshot(cache)
    points, _, _ = v1_pipeline.build(cache, N)
    with pytest.warns(PersistableWarning, match=r"random_state .*md5 collision"):
        points.load_generate()
    assert v1_pipeline.GENERATED == ["points_p"]
    assert "adopted_from" not in points.metadata
    assert _snapshot(cache) == before


def test_an_unreadable_1x_pickle_is_reported_and_left(
    v1_cache: tuple[Path, list[str]], cache: Path
) -> None:
    """A damaged 1.x pickle is reported, left in place, and the payload generated anew."""
    damaged = cache / f"scaled_p({v1_cache[1][1]}).persistable"
    damaged.write_bytes(b"not a pickle")
    before = _snapshot(cache)
    _, scaled, _ = v1_pipeline.build(cache, N)
    with pytest.warns(PersistableWarning, match="PickleFileIO could not read it"):
        scaled.load_generate()
    assert v1_pipeline.GENERATED == ["scaled_p"]
    assert _snapshot(cache) == before


def test_adoption_can_be_switched_off(cache: Path) -> None:
    """With adopt_v1_caches = False the 1.x file is ignored and the payload generated."""
    points, _, _ = v1_pipeline.build(cache, N)
    points.adopt_v1_caches = False
    with pytest.raises(persistable.exceptions.ArtifactNotFoundError):
        points.load()
    points.load_generate()
    assert v1_pipeline.GENERATED == ["points_p"]


def test_migrate_v1_reports_then_adopts(v1_cache: tuple[Path, list[str]], cache: Path) -> None:
    """migrate_v1 lists what it can adopt, lists what it cannot rebuild with the reason, then adopts."""
    (cache / "gone_p(0123456789abcdef0123456789abcdef).params.json").write_text("{}")
    before = _snapshot(cache)
    classes = [v1_pipeline.PointsP, v1_pipeline.ScaledP]
    report = migrate_v1(cache, classes)
    by_name = {entry.payload_name: entry for entry in report.entries}
    assert sorted(by_name) == ["gone_p", "points_p", "scaled_p"]
    assert by_name["points_p"].status == "adoptable"
    assert by_name["scaled_p"].status == "not adoptable"
    assert "ScaledP(data_dir, params, [dependencies]) failed" in by_name["scaled_p"].reason
    assert by_name["gone_p"].reason == "no class given for this payload name"
    assert "adoptable (1):" in str(report)
    assert _snapshot(cache) == before
    assert not (cache / "points_p").exists()

    adopted = migrate_v1(cache, classes, adopt=True)
    assert [entry.payload_name for entry in adopted.with_status("adopted")] == ["points_p"]
    points, _, _ = v1_pipeline.build(cache, N)
    assert adopted.with_status("adopted")[0].key == points.key
    assert points.metadata["adopted_from"]["md5"] == v1_cache[1][0]
    again = migrate_v1(cache, classes)
    assert [entry.payload_name for entry in again.with_status("already adopted")] == ["points_p"]
    assert v1_pipeline.GENERATED == []
    assert _snapshot(cache) == before


def test_migrate_v1_refuses_params_that_do_not_give_the_md5(
    v1_cache: tuple[Path, list[str]], cache: Path
) -> None:
    """A params file whose rebuilt params give another md5 is listed, not adopted."""
    params_file = cache / f"points_p({v1_cache[1][0]}).params.json"
    params_file.write_text(json.dumps({**json.loads(params_file.read_text()), "n": 41}))
    report = migrate_v1(cache, {"points_p": v1_pipeline.PointsP}, adopt=True)
    (entry,) = [entry for entry in report.entries if entry.payload_name == "points_p"]
    assert entry.status == "not adoptable"
    assert "give the 1.x md5" in entry.reason


def test_the_migrate_v1_command(v1_cache: tuple[Path, list[str]], cache: Path) -> None:
    """persistable migrate-v1 reports (exit 1: one file cannot be adopted), then --adopt adopts."""

    def migrate(*options: str) -> subprocess.CompletedProcess[str]:
        module = str(TESTS / "v1_pipeline.py")
        return subprocess.run(
            [sys.executable, "-m", "persistable", "migrate-v1", str(cache), "-m", module, *options],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    before = _snapshot(cache)
    dry = migrate("--json")
    assert dry.returncode == 1, dry.stderr
    statuses = {
        entry["payload_name"]: entry["status"] for entry in json.loads(dry.stdout)["entries"]
    }
    assert statuses == {"points_p": "adoptable", "scaled_p": "not adoptable"}
    assert _snapshot(cache) == before
    adopted = migrate("--adopt")
    assert adopted.returncode == 1, adopted.stderr
    assert f"persistable 1.x files in {cache}: 2" in adopted.stdout
    assert f"points_p({v1_cache[1][0]})" in adopted.stdout.split("not adoptable")[0]
    assert "ScaledP(data_dir, params, [dependencies]) failed" in adopted.stdout
    points, _, _ = v1_pipeline.build(cache, N)
    assert points.metadata["adopted_from"]["md5"] == v1_cache[1][0]
    missing = subprocess.run(
        [sys.executable, "-m", "persistable", "migrate-v1", str(cache / "nowhere")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert missing.returncode == 2
    assert "is not a folder" in missing.stderr


def test_migrate_v1_wants_a_folder(tmp_path: Path) -> None:
    """migrate_v1 on a path that is not a folder says what it expected."""
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        migrate_v1(tmp_path / "missing", [])


def test_the_golden_v1_md5_values_are_1_3_1_s(tmp_path: Path) -> None:
    """The frozen golden 1.x md5 values are what the real 1.3.1 prints for the same cases."""
    from test_v1_md5 import GOLDEN_V1_MD5

    output = run_v1(TESTS / "v1_golden.py", str(tmp_path / "golden"), cwd=tmp_path)
    assert dict(line.split() for line in output.splitlines()) == GOLDEN_V1_MD5


def test_a_read_only_1x_folder_is_loaded_in_place(
    v1_cache: tuple[Path, list[str]], cache: Path
) -> None:
    """In a read-only local store the checked 1.x file is loaded where it is; nothing is written."""
    before = _snapshot(cache)
    store = persistable.LocalStore(cache, read_only=True)
    _, scaled, _ = v1_pipeline.build(store, N)
    scaled.load_generate()
    assert v1_pipeline.GENERATED == []
    with (cache / f"scaled_p({v1_cache[1][1]}).persistable").open("rb") as file:
        np.testing.assert_array_equal(scaled.payload, pickle.load(file))
    assert not scaled.exists()
    assert sorted(path.name for path in cache.iterdir()) == sorted(before)
    assert _snapshot(cache) == before
