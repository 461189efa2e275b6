"""An explicit generate() that would write the very bytes already stored keeps the stored artifact."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _samples_nodes import Add, Number

from persistable import Persistable, PersistableParams
from persistable.samples import Compose, Save
from persistable.store import Store


@dataclass
class _Params(PersistableParams):
    n: int


class _Same(Persistable[list[int], _Params]):
    def _generate_payload(self, **untracked_payload_params: Any) -> list[int]:
        return list(range(self.params.n))


def _replaced(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "Replaced the stored artifact" in r.getMessage()]


def test_same_bytes_are_kept_not_replaced(
    local_or_memory_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A second generate() of the same bytes logs no WARNING; the first commit (its time) stays."""
    store = local_or_memory_store
    first = _Same(store, _Params(5))
    first.generate()
    created = first.metadata["created_utc"]
    again = _Same(store, _Params(5))
    with caplog.at_level(logging.INFO):
        again.generate()
    assert _replaced(caplog) == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("same bytes already; kept it" in r.getMessage() for r in caplog.records)
    assert again.metadata["created_utc"] == created
    assert again.payload == [0, 1, 2, 3, 4]
    again.verify()


def test_a_damaged_copy_with_the_same_record_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored bytes that no longer match their checksum are not 'the same': generate() replaces them."""
    item = _Same(tmp_path / "store", _Params(200))
    item.generate()
    payload = tmp_path / "store" / item.artifact_dir / item.payload_file
    data = bytearray(payload.read_bytes())
    data[-2] ^= 0xFF  # same size, other bytes
    payload.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO):
        _Same(tmp_path / "store", _Params(200)).generate()
    assert len(_replaced(caplog)) == 1
    fresh = _Same(tmp_path / "store", _Params(200))
    fresh.verify()
    fresh.load()
    assert fresh.payload == list(range(200))


def test_save_on_a_rerun_does_not_say_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """samples' Save() writes the same sample again on a rerun: kept, no 'Replaced' warning."""
    journal = tmp_path / "journal"
    pipeline = Compose([Add(step=1, journal=str(journal)), Save()])
    pipeline(Number(id="a"), store=tmp_path / "store")
    with caplog.at_level(logging.INFO):
        pipeline(Number(id="a"), store=tmp_path / "store")
    assert _replaced(caplog) == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
