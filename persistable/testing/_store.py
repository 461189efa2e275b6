"""``StoreTests``: the Store contract as a pytest class that every Store implementation runs.

Subclass it in a test module and provide two fixtures: ``store`` (a fresh, empty,
writable store) and ``read_only_store`` (a read-only view of the same location)::

    class TestMyStore(StoreTests):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(tmp_path)

        @pytest.fixture
        def read_only_store(self, store):
            return MyStore(store.root, read_only=True)
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import pytest

from persistable._persistable import Persistable
from persistable.exceptions import ArtifactNotFoundError, ReadOnlyStoreError
from persistable.params import PersistableParams
from persistable.store import INTERNAL_DIR, METADATA_FILE, Store

__all__ = ["StoreTests"]


@dataclass
class _SquaresParams(PersistableParams):
    n: int


class _Squares(Persistable[list[int], _SquaresParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> list[int]:
        return [i * i for i in range(self.params.n)]


def _metadata(tag: str) -> bytes:
    return json.dumps({"tag": tag}).encode()


def _write(store: Store, artifact_dir: str, tag: str, *, commit: bool = True) -> bool:
    transaction = store.begin(artifact_dir)
    try:
        transaction.write_bytes("payload.bin", f"payload {tag}".encode())
        transaction.write_bytes("params.json", b"{}")
        return transaction.commit(_metadata(tag)) if commit else False
    finally:
        transaction.abort()


def _write_then_fail(store: Store, artifact_dir: str) -> None:
    with store.begin(artifact_dir) as transaction:
        transaction.write_bytes("payload.bin", b"half")
        raise RuntimeError("interrupted")


class StoreTests:
    """The behaviour every Store must have; subclass and provide ``store`` and ``read_only_store``."""

    @pytest.fixture
    def store(self) -> Store:
        """A fresh, empty, writable store (override in the subclass)."""
        raise NotImplementedError("provide a `store` fixture in the StoreTests subclass")

    @pytest.fixture
    def read_only_store(self, store: Store) -> Store:
        """A read-only view of ``store`` (override in the subclass)."""
        raise NotImplementedError("provide a `read_only_store` fixture in the StoreTests subclass")

    def test_empty_store_has_nothing(self, store: Store) -> None:
        """A new store lists nothing and reports missing files as FileNotFoundError."""
        assert store.list_payload_names() == []
        assert list(store.iter_artifacts()) == []
        assert store.list_keys("p") == []
        assert store.list_dir("p/k") == []
        assert not store.exists("p/k/payload.bin")
        assert not store.has_artifact("p", "k")
        with pytest.raises(FileNotFoundError):
            store.open_read("p/k/payload.bin")
        with pytest.raises(FileNotFoundError):
            store.size("p/k/payload.bin")
        with pytest.raises(ArtifactNotFoundError):
            store.read_metadata("p", "k")

    def test_commit_makes_the_artifact_visible(self, store: Store) -> None:
        """Files written in a transaction appear, with the shared layout, only once committed."""
        transaction = store.begin("p/k1")
        transaction.write_bytes("payload.bin", b"\x00\x01payload")
        with transaction.open_write("params.json") as stream:
            stream.write(b'{"n": ')
            stream.write(b"1}")
        assert not store.has_artifact("p", "k1")
        assert store.list_keys("p") == []
        assert transaction.commit(_metadata("one")) is True
        transaction.abort()  # after commit, abort changes nothing
        assert store.has_artifact("p", "k1")
        assert store.list_keys("p") == ["k1"]
        assert list(store.iter_artifacts()) == [("p", "k1")]
        assert store.list_payload_names() == ["p"]
        assert store.list_dir("p/k1") == sorted(["payload.bin", "params.json", METADATA_FILE])
        assert store.read_bytes("p/k1/payload.bin") == b"\x00\x01payload"
        assert store.size("p/k1/payload.bin") == 9
        with store.open_read("p/k1/params.json") as stream:
            assert stream.read() == b'{"n": 1}'
        assert store.read_metadata("p", "k1") == {"tag": "one"}

    def test_abort_leaves_nothing_visible(self, store: Store) -> None:
        """An aborted transaction, or one left by an exception, leaves no artifact."""
        assert _write(store, "p/k", "a", commit=False) is False
        with pytest.raises(RuntimeError, match="interrupted"):
            _write_then_fail(store, "p/k")
        assert not store.has_artifact("p", "k")
        assert store.list_keys("p") == []
        assert list(store.iter_artifacts()) == []
        assert _write(store, "p/k", "b") is True
        assert store.read_bytes("p/k/payload.bin") == b"payload b"

    def test_first_committer_wins(self, store: Store) -> None:
        """A writer that commits after another one for the same key loses and keeps nothing of its own."""
        first = store.begin("p/k")
        first.write_bytes("payload.bin", b"payload first")
        second = store.begin("p/k")
        assert first.commit(_metadata("first")) is True
        second.write_bytes("payload.bin", b"payload second")
        assert second.commit(_metadata("second")) is False
        second.abort()
        assert store.read_metadata("p", "k") == {"tag": "first"}
        assert store.read_bytes("p/k/payload.bin") == b"payload first"
        assert _write(store, "p/k", "third") is False
        assert store.read_bytes("p/k/payload.bin") == b"payload first"

    def test_racing_writers_commit_exactly_once(self, store: Store) -> None:
        """Threads writing the same key at once: one wins and its files match its metadata."""
        results: dict[str, bool] = {}

        def writer(tag: str) -> None:
            results[tag] = _write(store, "p/race", tag)

        threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [tag for tag, won in results.items() if won]
        assert len(winners) == 1
        assert store.read_metadata("p", "race") == {"tag": winners[0]}
        assert store.read_bytes("p/race/payload.bin") == f"payload {winners[0]}".encode()

    def test_independent_keys_do_not_interfere(self, store: Store) -> None:
        """Artifacts of several payload names and keys are listed separately."""
        for payload_name, key in [("a", "k2"), ("a", "k1"), ("b.v2", "k1")]:
            assert _write(store, f"{payload_name}/{key}", key)
        assert store.list_payload_names() == ["a", "b.v2"]
        assert store.list_keys("a") == ["k1", "k2"]
        assert list(store.iter_artifacts()) == [("a", "k1"), ("a", "k2"), ("b.v2", "k1")]

    def test_large_file_streams(self, store: Store) -> None:
        """A file written in many chunks reads back byte for byte."""
        chunk = bytes(range(256)) * 4096  # 1 MiB
        with store.begin("p/big") as transaction:
            with transaction.open_write("payload.bin") as stream:
                for i in range(3):
                    stream.write(bytes([i]) + chunk)
            assert transaction.commit(_metadata("big"))
        assert store.size("p/big/payload.bin") == 3 * (len(chunk) + 1)
        data = store.read_bytes("p/big/payload.bin")
        assert data == b"".join(bytes([i]) + chunk for i in range(3))

    def test_move_and_remove_dir(self, store: Store) -> None:
        """move_dir sets an artifact folder aside; remove_dir deletes a folder and its files."""
        assert _write(store, "p/k", "a")
        store.move_dir("p/k", f"{INTERNAL_DIR}/aside/k")
        assert not store.has_artifact("p", "k")
        assert store.read_bytes(f"{INTERNAL_DIR}/aside/k/payload.bin") == b"payload a"
        store.remove_dir(f"{INTERNAL_DIR}/aside")
        assert not store.exists(f"{INTERNAL_DIR}/aside/k/payload.bin")

    def test_quarantine_moves_the_artifact_aside(self, store: Store) -> None:
        """quarantine_dir hides a damaged artifact and keeps its files for inspection."""
        assert _write(store, "p/k", "a")
        destination = store.quarantine_dir("p/k")
        assert destination.startswith(f"{INTERNAL_DIR}/")
        assert not store.has_artifact("p", "k")
        assert store.read_bytes(f"{destination}/payload.bin") == b"payload a"
        assert list(store.iter_artifacts()) == []

    def test_read_only_store_loads_but_refuses_writes(
        self, store: Store, read_only_store: Store
    ) -> None:
        """A read-only view reads committed artifacts and refuses to begin a write."""
        assert _write(store, "p/k", "a")
        assert read_only_store.read_only
        assert read_only_store.has_artifact("p", "k")
        assert read_only_store.read_bytes("p/k/payload.bin") == b"payload a"
        with pytest.raises(ReadOnlyStoreError):
            read_only_store.check_writable()
        with pytest.raises(ReadOnlyStoreError):
            read_only_store.begin("p/k2")

    def test_persistable_round_trip(self, store: Store, read_only_store: Store) -> None:
        """A Persistable generates into the store once and loads from it, also read-only."""
        generated = _Squares(store, _SquaresParams(n=5), payload_name="squares")
        generated.load_generate()
        assert generated.payload == [0, 1, 4, 9, 16]
        assert store.list_keys("squares") == [generated.key]
        loaded = _Squares(read_only_store, _SquaresParams(n=5), payload_name="squares")
        loaded.load(verify=True)
        assert loaded.payload == [0, 1, 4, 9, 16]
        loaded.verify()
        missing = _Squares(read_only_store, _SquaresParams(n=6), payload_name="squares")
        with pytest.raises(ReadOnlyStoreError):
            missing.load_generate()

    # -- replace, delete, locks ---------------------------------------------------

    def test_replace_commit_swaps_the_artifact(self, store: Store) -> None:
        """A transaction begun with replace=True replaces a committed artifact whole."""
        assert _write(store, "p/k", "old")
        with store.begin("p/k", replace=True) as transaction:
            transaction.write_bytes("payload.bin", b"payload new")
            assert transaction.commit(_metadata("new")) is True
        metadata = store.read_metadata("p", "k")
        # An object store puts the new files in a folder of their own (the old ones stay
        # whole until metadata.json is replaced) and records it as files_folder.
        folder = metadata.pop("files_folder", None)
        if folder is not None:
            assert metadata.pop("metadata_scheme") == 2
        assert metadata == {"tag": "new"}
        where = f"p/k/{folder}" if folder else "p/k"
        assert store.read_bytes(f"{where}/payload.bin") == b"payload new"
        # The old files are gone.
        assert store.list_dir("p/k") == sorted([folder or "payload.bin", METADATA_FILE])
        assert store.list_keys("p") == ["k"]

    def test_delete_artifact_removes_it_whole(self, store: Store) -> None:
        """delete_artifact removes the folder (metadata.json first); a second delete finds nothing."""
        assert _write(store, "p/k", "a")
        assert _write(store, "p/other", "b")
        assert store.delete_artifact("p", "k") is True
        assert not store.has_artifact("p", "k")
        assert store.list_dir("p/k") == []
        assert store.list_keys("p") == ["other"]
        assert store.delete_artifact("p", "k") is False

    def test_read_only_store_refuses_delete(self, store: Store, read_only_store: Store) -> None:
        """delete_artifact on a read-only view raises ReadOnlyStoreError and changes nothing."""
        assert _write(store, "p/k", "a")
        with pytest.raises(ReadOnlyStoreError):
            read_only_store.delete_artifact("p", "k")
        assert store.has_artifact("p", "k")

    def test_lock_excludes_and_times_out_naming_the_holder(self, store: Store) -> None:
        """While one thread holds a key's lock another times out with a LockTimeoutError; other keys stay free."""
        from persistable.exceptions import LockTimeoutError

        held = threading.Event()
        release = threading.Event()

        def holder() -> None:
            with store.lock("p", "k", timeout=30):
                held.set()
                release.wait(60)

        thread = threading.Thread(target=holder)
        thread.start()
        try:
            assert held.wait(60)
            if type(store).lock is not Store.lock:  # the base store has no lock
                with (
                    pytest.raises(LockTimeoutError, match=r"'p' key k .*held by"),
                    store.lock("p", "k", timeout=0.2),
                ):
                    pass  # pragma: no cover
            with store.lock("p", "other", timeout=30):
                pass
        finally:
            release.set()
            thread.join()
        with store.lock("p", "k", timeout=30):
            pass

    def test_locks_leave_no_lock_files_behind(self, store: Store) -> None:
        """Taking and releasing many keys' locks leaves no lock file per key (at most one lease each)."""
        for index in range(20):
            with store.lock("p", f"k{index}", timeout=30):
                pass
        locks = f"{INTERNAL_DIR}/locks/p"
        assert store.list_dir(locks) == []

    def test_artifact_handle_reads_verifies_copies_and_deletes(self, store: Store) -> None:
        """The Artifact handle and the listing work on this store: read, load, verify, find, copy, delete."""
        from persistable.artifact import Artifact, find_artifact, list_artifacts
        from persistable.store import MemoryStore

        made = _Squares(store, _SquaresParams(n=4), payload_name="squares")
        made.load_generate()
        artifact = Artifact(store, "squares", made.key)
        assert artifact.exists()
        assert artifact.metadata["key"] == made.key
        assert artifact.payload_io_name == "pickle"
        assert artifact.read_params() == {"n": 4}
        assert isinstance(artifact.read_log(), str)
        assert artifact.load() == [0, 1, 4, 9]
        artifact.verify()
        assert artifact.damage() is None
        assert find_artifact(store, f"squares/{made.key[:8]}") == artifact
        listing = list_artifacts(store)
        assert [info.ref for info in listing] == [artifact.ref]
        assert listing.size == artifact.size > 0
        copy = MemoryStore(f"copy-{made.key}")
        try:
            assert artifact.copy_to(copy) is not None
            assert Artifact(copy, "squares", made.key).load() == [0, 1, 4, 9]
        finally:
            MemoryStore.clear(copy.name)
        assert artifact.delete(timeout=30) is True
        assert not artifact.exists()
        assert list_artifacts(store).artifacts == []
