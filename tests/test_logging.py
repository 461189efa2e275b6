"""Logging: verbose shows INFO once, silence by default, no handler leaks, per-thread generation logs."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import tempfile
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from persistable import MemoryStore, Persistable, PersistableParams, Store


@dataclass
class Params(PersistableParams):
    n: int


class ChattyP(Persistable[int, Params]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        self.logger.info("computing n=%d", self.params.n)
        self.logger.debug("debug detail n=%d", self.params.n)
        return self.params.n


def _handler_counts() -> dict[str, int]:
    manager = logging.Logger.manager
    counts = {"<root>": len(logging.getLogger().handlers)}
    for name, logger in list(manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.startswith("persistable"):
            counts[name] = len(logger.handlers)
    return counts


def test_verbose_shows_each_info_message_once(
    memory_store: MemoryStore, capfd: pytest.CaptureFixture[str]
) -> None:
    """verbose=True prints each INFO message once on stderr, even after 100 verbose instances of one name."""
    instances = [ChattyP(memory_store, Params(n=1), verbose=True) for _ in range(100)]
    instances[-1].generate()
    err = capfd.readouterr().err
    assert err.count("computing n=1") == 1, err
    assert err.count("Generating chatty_p") == 1, err
    assert "debug detail" not in err
    assert len(logging.getLogger("persistable.payload.chatty_p").handlers) == 1


def test_verbose_load_and_generate_messages_reach_stderr(
    memory_store: MemoryStore, capfd: pytest.CaptureFixture[str]
) -> None:
    """A verbose load_generate prints the generation, a second one prints the load, each once."""
    ChattyP(memory_store, Params(n=2), verbose=True).load_generate()
    ChattyP(memory_store, Params(n=2), verbose=True).load_generate()
    err = capfd.readouterr().err
    assert err.count("computing n=2") == 1
    assert err.count("Loaded chatty_p") == 1
    assert "INFO" in err


def test_many_verbose_names_keep_handler_counts_bounded(memory_store: MemoryStore) -> None:
    """100 verbose instances with 100 names give each logger at most one handler and add none to root or the package logger."""
    before = _handler_counts()
    for index in range(100):
        ChattyP(memory_store, Params(n=index), payload_name=f"bounded_{index}", verbose=True)
        ChattyP(memory_store, Params(n=index), payload_name=f"bounded_{index}", verbose=True)
    after = _handler_counts()
    assert after["<root>"] == before["<root>"]
    assert after.get("persistable", 0) == before.get("persistable", 0)
    for index in range(100):
        assert after[f"persistable.payload.bounded_{index}"] == 1


def test_generate_leaves_logger_configuration_as_it_was(memory_store: MemoryStore) -> None:
    """After generate, the payload and package loggers have their former levels, propagation and handlers."""
    watched = [
        logging.getLogger("persistable"),
        logging.getLogger("persistable.payload.chatty_p"),
        logging.getLogger(),
    ]
    before = [(lg.level, lg.propagate, list(lg.handlers)) for lg in watched]
    for n in range(5):
        ChattyP(memory_store, Params(n=n)).load_generate()
    assert [(lg.level, lg.propagate, list(lg.handlers)) for lg in watched] == before


def test_verbose_follows_a_replaced_stderr(
    memory_store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console handler writes to the current sys.stderr, not to the one that existed when it was made."""
    ChattyP(memory_store, Params(n=3), verbose=True)
    replaced = io.StringIO()
    monkeypatch.setattr(sys, "stderr", replaced)
    ChattyP(memory_store, Params(n=3), verbose=True).generate()
    assert replaced.getvalue().count("computing n=3") == 1


def test_user_logger_gets_the_messages_and_verbose_shows_them(
    memory_store: MemoryStore, capfd: pytest.CaptureFixture[str]
) -> None:
    """A user's logger passed as logger= receives the messages; verbose prints them once."""
    logger = logging.getLogger("user_app.points")
    records: list[logging.LogRecord] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = ListHandler(logging.INFO)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        ChattyP(memory_store, Params(n=4), logger=logger, verbose=True).generate()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert [r.getMessage() for r in records].count("computing n=4") == 1
    assert capfd.readouterr().err.count("computing n=4") == 1


def test_concurrent_generations_log_only_their_own_thread(memory_store: MemoryStore) -> None:
    """Two threads generating at once each write only their own messages into their generation.log."""
    barrier = threading.Barrier(2)

    class SlowP(ChattyP):
        def _generate_payload(self, **untracked_payload_params: Any) -> int:
            barrier.wait(timeout=10)
            for step in range(20):
                self.logger.info("n=%d step %d", self.params.n, step)
            barrier.wait(timeout=10)
            return self.params.n

    persistables = [SlowP(memory_store, Params(n=n)) for n in (1, 2)]
    threads = [threading.Thread(target=p.generate) for p in persistables]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for p, other in zip(persistables, reversed(persistables), strict=False):
        log = p.artifact.read_log()
        assert log.count(f"n={p.params.n} step") == 20
        assert f"n={other.params.n} step" not in log


def _run(script: str) -> subprocess.CompletedProcess[str]:
    prelude = textwrap.dedent(
        """
        import logging
        from dataclasses import dataclass
        from typing import Any
        from persistable import Persistable, PersistableParams

        @dataclass
        class Params(PersistableParams):
            n: int

        class ChattyP(Persistable[int, Params]):
            def _generate_payload(self, **untracked_payload_params: Any) -> int:
                self.logger.info("computing n=%d", self.params.n)
                self.logger.warning("careful n=%d", self.params.n)
                return self.params.n
        """
    )
    # A script file, as users run them: code given with -c has no readable source, and
    # its fingerprint would add an UnreadableCodeWarning to the output compared here.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "script.py"
        path.write_text(prelude + textwrap.dedent(script))
        return subprocess.run(
            [sys.executable, str(path)], capture_output=True, text=True, check=True
        )


def test_without_verbose_and_without_logging_config_only_warnings_print() -> None:
    """Without verbose and without logging configured, a full cycle prints no INFO; the user's warning shows once."""
    completed = _run(
        """
        p = ChattyP("memory://quiet", Params(n=1), None)
        p.load_generate()
        ChattyP("memory://quiet", Params(n=1), None).load_generate()
        assert logging.getLogger().handlers == []
        """
    )
    assert completed.stdout == ""
    assert completed.stderr == "careful n=1\n"


def test_verbose_shows_a_warning_once() -> None:
    """With verbose and no logging configured, INFO and the user's warning each print once."""
    completed = _run(
        """
        ChattyP("memory://verbose", Params(n=5), None, verbose=True).load_generate()
        """
    )
    lines = completed.stderr.splitlines()
    assert sum("careful n=5" in line for line in lines) == 1, lines
    assert sum("computing n=5" in line for line in lines) == 1, lines


def test_user_logging_at_warning_hides_library_info() -> None:
    """With the user's logging at WARNING, generating shows no INFO from persistable (only the warning)."""
    completed = _run(
        """
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
        ChattyP("memory://warn", Params(n=2), None).load_generate()
        ChattyP("memory://warn", Params(n=2), None).load_generate()
        """
    )
    assert completed.stderr == "WARNING persistable.payload.chatty_p careful n=2\n"


def test_user_logging_at_info_shows_library_info() -> None:
    """With the user's logging at INFO, the library's INFO messages reach the user's handler once each."""
    completed = _run(
        """
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
        ChattyP("memory://info", Params(n=3), None).load_generate()
        """
    )
    lines = completed.stderr.splitlines()
    assert lines.count("INFO persistable.payload.chatty_p computing n=3") == 1
    assert lines.count("WARNING persistable.payload.chatty_p careful n=3") == 1
    assert len(lines) == len(set(lines))


def test_library_never_attaches_root_handlers(memory_store: Store) -> None:
    """Creating, generating and loading many persistables, verbose or not, adds no handler to the root logger."""
    root_handlers = list(logging.getLogger().handlers)
    for n in range(20):
        ChattyP(memory_store, Params(n=n), verbose=n % 2 == 0).load_generate()
        ChattyP(memory_store, Params(n=n)).load_generate()
    assert logging.getLogger().handlers == root_handlers


class DetailP(Persistable[int, Params]):
    """Logs through a logger below its payload logger."""

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        logging.getLogger(f"{self.logger.name}.detail").info("detail n=%d", self.params.n)
        return self.params.n


def test_a_logger_below_the_payload_logger_is_lowered_and_restored_with_it(
    memory_store: MemoryStore,
) -> None:
    """A child of the payload logger logs INFO into the generation log, and is quiet again after."""
    below = logging.getLogger("persistable.payload.detail_p.detail")
    assert not below.isEnabledFor(logging.INFO)  # answered, and cached, before the generation
    p = DetailP(memory_store, Params(n=4))
    p.generate()
    assert "detail n=4" in p.metadata["generation_log"]
    assert not below.isEnabledFor(logging.INFO)


def test_a_generation_keeps_the_level_caches_of_other_loggers(memory_store: MemoryStore) -> None:
    """Lowering and restoring the payload logger leaves other loggers' cached levels in place
    (Logger.setLevel empties every logger's cache: twice per generation, that cost about a
    millisecond per node in a process with a thousand loggers)."""
    other = logging.getLogger("tests.logging.unrelated")
    assert not other.isEnabledFor(logging.INFO)
    p = DetailP(memory_store, Params(n=5), payload_name="never_verbose")
    assert p.logger.getEffectiveLevel() > logging.INFO  # so the generation lowers it
    p.generate()
    assert "detail n=5" in p.metadata["generation_log"]
    assert getattr(other, "_cache") == {logging.INFO: False}  # noqa: B009
