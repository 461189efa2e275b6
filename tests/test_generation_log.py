"""Where the generation log lives: a short one in ``metadata.json``, a long one in ``generation.log``.

Artifacts committed before the log moved into ``metadata.json`` hold the file
``generation.log`` whatever its length: they load, verify and show their log as before.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import pytest
import xxhash

from persistable import LocalStore, MemoryStore, Persistable, PersistableParams
from persistable._artifact import GENERATION_LOG_FIELD, INLINE_LOG_LIMIT, dump_metadata
from persistable.artifact import Artifact
from persistable.exceptions import CorruptArtifactError


@dataclass
class LogParams(PersistableParams):
    lines: int


class Chatty(Persistable[int, LogParams]):
    """Logs ``lines`` lines while it generates; counts its generations."""

    generations = 0

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        type(self).generations += 1
        for index in range(self.params.lines):
            self.logger.info("line %d of the generation", index)
        return self.params.lines


def _names(store: LocalStore | MemoryStore, p: Chatty) -> list[str]:
    if isinstance(store, LocalStore):
        return sorted(path.name for path in (store.root / p.artifact_dir).iterdir())
    return sorted(path.rsplit("/", 1)[1] for path in store.files if path.startswith(p.artifact_dir))


def _overwrite(store: LocalStore | MemoryStore, path: str, data: bytes) -> None:
    """Change a committed file behind the store's back (damage)."""
    if isinstance(store, LocalStore):
        (store.root / path).write_bytes(data)
    else:
        store.files[path] = data


def test_a_short_log_is_a_field_of_metadata_json(
    local_or_memory_store: LocalStore | MemoryStore,
) -> None:
    """Three files (payload, params.json, metadata.json); the log is in metadata.json and reads back."""
    p = Chatty(local_or_memory_store, LogParams(lines=2))
    p.generate()
    assert _names(local_or_memory_store, p) == ["metadata.json", "params.json", "payload.pkl"]
    metadata = p.metadata
    assert "generation.log" not in metadata["files"]
    log = metadata[GENERATION_LOG_FIELD]
    assert f"Generating chatty (key {p.persist_hash})" in log
    assert "line 1 of the generation" in log
    assert len(log.encode("utf-8")) <= INLINE_LOG_LIMIT
    fresh = Artifact(local_or_memory_store, "chatty", p.persist_hash)
    assert fresh.read_log() == log
    fresh.verify()


def test_a_long_log_is_a_checksummed_file(local_or_memory_store: LocalStore | MemoryStore) -> None:
    """A log over the limit is the file generation.log, listed by size and checksum, and verified."""
    p = Chatty(local_or_memory_store, LogParams(lines=60))
    p.generate()
    assert _names(local_or_memory_store, p) == [
        "generation.log",
        "metadata.json",
        "params.json",
        "payload.pkl",
    ]
    metadata = p.metadata
    assert GENERATION_LOG_FIELD not in metadata
    data = local_or_memory_store.read_bytes(f"{p.artifact_dir}/generation.log")
    assert len(data) > INLINE_LOG_LIMIT
    assert metadata["files"]["generation.log"] == {
        "size": len(data),
        "xxh3_128": xxhash.xxh3_128_hexdigest(data),
    }
    log = Artifact(local_or_memory_store, "chatty", p.persist_hash).read_log()
    assert log == data.decode("utf-8")
    assert "line 59 of the generation" in log
    p.artifact.verify()
    _overwrite(local_or_memory_store, f"{p.artifact_dir}/generation.log", data[:-1] + b"!")
    with pytest.raises(CorruptArtifactError, match=r"generation\.log"):
        Artifact(local_or_memory_store, "chatty", p.persist_hash).verify()


def test_a_persist_without_a_generation_has_no_log(
    local_or_memory_store: LocalStore | MemoryStore,
) -> None:
    """persist() of a payload set from outside logs nothing: neither the field nor the file."""
    p = Chatty(local_or_memory_store, LogParams(lines=3))
    p._set_payload(3)
    p.persist()
    assert _names(local_or_memory_store, p) == ["metadata.json", "params.json", "payload.pkl"]
    assert GENERATION_LOG_FIELD not in p.metadata
    assert p.artifact.read_log() == ""


def test_an_artifact_with_the_earlier_layout_loads_verifies_and_shows_its_log(
    local_store: LocalStore,
) -> None:
    """An artifact as committed before (a short log in generation.log, no field) is read as before."""
    p = Chatty(local_store, LogParams(lines=2))
    p.generate()
    folder = local_store.root / p.artifact_dir
    metadata = json.loads((folder / "metadata.json").read_text("utf-8"))
    log = metadata.pop(GENERATION_LOG_FIELD).encode("utf-8")
    # What the earlier write path committed: the log as a listed, checksummed file.
    (folder / "generation.log").write_bytes(log)
    metadata["files"]["generation.log"] = {
        "size": len(log),
        "xxh3_128": xxhash.xxh3_128_hexdigest(log),
    }
    (folder / "metadata.json").write_bytes(dump_metadata(metadata))
    generations = Chatty.generations
    again = Chatty(local_store, LogParams(lines=2))
    again.load_generate()
    assert Chatty.generations == generations  # loaded, not generated again
    assert again.payload == 2
    assert again.artifact.read_log() == log.decode("utf-8")
    again.artifact.verify()
    again.load(verify=True)
    (folder / "generation.log").write_bytes(log[:-1] + b"!")
    with pytest.raises(CorruptArtifactError, match=r"generation\.log"):
        Artifact(local_store, "chatty", p.persist_hash).verify()


def test_the_library_s_own_lines_are_formatted_as_the_user_s(local_store: LocalStore) -> None:
    """With INFO not enabled, the 'Generating'/'Generated' lines (written without a LogRecord) look like the user's lines and come in order."""
    p = Chatty(local_store, LogParams(lines=1))
    p.generate()
    lines = p.metadata[GENERATION_LOG_FIELD].splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    name = re.escape(p.logger.name)
    assert re.fullmatch(
        rf"{stamp} INFO \[{name}\] Generating chatty \(key {p.persist_hash}\)", lines[0]
    )
    assert re.fullmatch(rf"{stamp} INFO \[{name}\] line 0 of the generation", lines[1])
    assert re.fullmatch(rf"{stamp} INFO \[{name}\] Generated chatty in \d+\.\d{{3}} s", lines[2])


def test_a_user_who_enabled_info_still_gets_the_library_s_lines(
    local_store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    """With INFO enabled on the payload logger the lines are records: the user's handlers get them, and so does the log."""
    p = Chatty(local_store, LogParams(lines=0))
    with caplog.at_level(logging.INFO, logger=p.logger.name):
        p.generate()
    messages = [record.getMessage() for record in caplog.records]
    assert f"Generating chatty (key {p.persist_hash})" in messages
    assert any(message.startswith("Generated chatty in ") for message in messages)
    assert "Generated chatty in " in p.metadata[GENERATION_LOG_FIELD]


class Nesting(Persistable[int, LogParams]):
    """Generates the artifact of ``lines - 1`` (same payload name) inside its own generation."""

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        if self.params.lines:
            inner = Nesting(self.store, LogParams(lines=self.params.lines - 1))
            inner.load_generate()
        return self.params.lines


def test_a_nested_generation_of_the_same_payload_name_shows_in_the_outer_log(
    local_store: LocalStore,
) -> None:
    """The outer generation's log holds the inner one's lines too (both captures sit on one logger)."""
    outer = Nesting(local_store, LogParams(lines=1))
    outer.generate()
    inner = Nesting(local_store, LogParams(lines=0))
    log = outer.metadata[GENERATION_LOG_FIELD]
    assert f"Generating nesting (key {inner.persist_hash})" in log
    assert f"Generating nesting (key {outer.persist_hash})" in log
    assert (
        f"Generating nesting (key {outer.persist_hash})" not in inner.metadata[GENERATION_LOG_FIELD]
    )
