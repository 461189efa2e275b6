"""explain() reads each artifact's params.json once per user: the lineage cache (SQLite) serves later processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import persistable._explain as explain_module
import persistable._lineage_index as lineage_index
from persistable import JsonFileIO, Persistable, PersistableParams
from persistable._lineage_cache import lineage_cache


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PERSISTABLE_CACHE_DIR", str(tmp_path / "cache"))
    lineage_cache.clear_memory()
    yield
    lineage_cache.clear_memory()


@dataclass
class Two(PersistableParams):
    a: int
    b: int = 0


class Echo(Persistable[int, Two]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return self.params.a


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every params.json read from a store (local or object store)."""
    seen: list[str] = []
    local, stored = explain_module._read_local, explain_module._read_stored
    batch = lineage_index.fetch_params

    def counted_batch(store: Any, payload_name: str, keys: list[str]) -> Any:
        seen.extend(keys)
        return batch(store, payload_name, keys)

    def counted_local(folder: str, key: str) -> tuple[dict[str, Any], str] | None:
        seen.append(key)
        return local(folder, key)

    def counted_stored(store: Any, payload_name: str, key: str) -> dict[str, Any] | None:
        seen.append(key)
        return stored(store, payload_name, key)

    monkeypatch.setattr(explain_module, "_read_local", counted_local)
    monkeypatch.setattr(explain_module, "_read_stored", counted_stored)
    monkeypatch.setattr(lineage_index, "fetch_params", counted_batch)
    return seen


def _fill(data_dir: Any, options: dict[str, Any] | None, count: int) -> None:
    for index in range(count):
        Echo(data_dir, Two(index), payload_io=JsonFileIO(), storage_options=options).generate()


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_new_process_reads_no_params_json_again(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """After one explain(), a fresh cache in memory finds every lineage in SQLite: no params.json is read."""
    if where == "s3":
        data_dir, options = request.getfixturevalue("s3_bucket")
    else:
        data_dir, options = str(tmp_path / "store"), None
    _fill(data_dir, options, 12)
    wanted = Echo(data_dir, Two(5, b=1), payload_io=JsonFileIO(), storage_options=options)
    reads = _reads(monkeypatch)
    first = wanted.explain()
    assert first.compared == 12
    assert len(reads) == 12
    assert str(first).endswith("differs in:\n  params.b: 0 -> 1"), str(first)
    lineage_cache.clear_memory()  # as a new process would start
    reads.clear()
    second = wanted.explain()
    assert reads == []
    assert str(second) == str(first)
    assert (tmp_path / "cache" / "lineages.sqlite").is_file()


def test_the_cache_serves_another_process(tmp_path: Path) -> None:
    """A second Python process explains from the SQLite file written by the first (same answer)."""
    store = tmp_path / "store"
    _fill(str(store), None, 5)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import persistable._explain as module
        from test_explain_cache import Echo, Two
        from persistable import JsonFileIO
        reads = []
        original = module._read_local
        module._read_local = lambda folder, key: reads.append(key) or original(folder, key)
        print(Echo({str(store)!r}, Two(2, b=7), payload_io=JsonFileIO()).explain())
        print("reads", len(reads))
        """
    )
    env = {**os.environ, "PERSISTABLE_CACHE_DIR": str(tmp_path / "cache")}
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert runs[0].endswith("reads 5\n"), runs[0]
    assert runs[1].endswith("reads 0\n"), runs[1]
    assert runs[0].replace("reads 5", "") == runs[1].replace("reads 0", "")
    assert "  params.b: 0 -> 7\n" in runs[1], runs[1]


def test_an_unwritable_cache_folder_still_explains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the cache folder cannot be created, explain() reads params.json every time and is right."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("PERSISTABLE_CACHE_DIR", str(blocker / "cache"))
    lineage_cache.clear_memory()
    store = str(tmp_path / "store")
    _fill(store, None, 3)
    explanation = Echo(store, Two(1, b=2), payload_io=JsonFileIO()).explain()
    assert explanation.compared == 3
    assert explanation.nearest == Echo(store, Two(1), payload_io=JsonFileIO()).key
