"""Logging helpers: the console handler behind ``verbose=True`` and the generation log capture."""

from __future__ import annotations

import logging
import sys
import threading
import time
import weakref
from typing import Any

__all__ = ["GenerationLogCapture", "enable_console", "payload_logger"]

_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
#: One formatter for every capture: formatting keeps no state between records.
_CAPTURE_FORMATTER = logging.Formatter(_FORMAT)
_console_lock = threading.Lock()
_console_handler: logging.Handler | None = None


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the *current* ``sys.stderr`` (like logging's last resort handler).

    Binding the stream at creation would keep writing into a replaced or closed
    ``sys.stderr`` (notebooks, pytest capture) long after the first instance made it.
    """

    def __init__(self) -> None:
        super().__init__()
        # A weak reference: the record's args may hold a large object (an array).
        self._last: weakref.ref[logging.LogRecord] | None = None

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr

    def filter(self, record: logging.LogRecord) -> bool:
        # The handler may sit on a logger and on one of its ancestors (several verbose
        # persistables): a propagated record reaches it twice in a row; show it once.
        if self._last is not None and self._last() is record:
            return False
        self._last = weakref.ref(record)
        return super().filter(record)


def payload_logger(payload_name: str) -> logging.Logger:
    """The logger of one payload name: ``persistable.payload.<payload_name>``."""
    return logging.getLogger(f"persistable.payload.{payload_name}")


def enable_console(logger: logging.Logger) -> None:
    """Show INFO records of ``logger`` on stderr through one shared handler (never duplicated)."""
    global _console_handler
    with _console_lock:
        if _console_handler is None:
            _console_handler = _ConsoleHandler()
            _console_handler.setFormatter(logging.Formatter(_FORMAT))
            _console_handler.set_name("persistable-console")
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        if _console_handler not in logger.handlers:
            logger.addHandler(_console_handler)


class _Forward(logging.Handler):
    """Passes on the records a lowered logger would have emitted anyway, as propagation would."""

    def __init__(self, logger: logging.Logger, threshold: int) -> None:
        super().__init__(threshold)
        self._logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        # No last-resort handling here: the capture handlers on this logger do it (_last_resort).
        parent = self._logger.parent
        while parent is not None:
            for handler in parent.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
            if not parent.propagate:
                break
            parent = parent.parent


_last_resort_state = threading.local()


def _has_user_handler(name: str) -> bool:
    """Whether a record of logger ``name`` reaches a handler that is not one of ours."""
    logger: logging.Logger | None = (
        logging.getLogger(name) if name != "root" else logging.getLogger()
    )
    while logger is not None:
        if any(not isinstance(h, (GenerationLogCapture, _Forward)) for h in logger.handlers):
            return True
        state = _lowered.get(logger.name)
        if not (state.propagate if state is not None else logger.propagate):
            return False
        logger = logger.parent
    return False


def _last_resort(record: logging.LogRecord) -> None:
    """Show a warning on stderr as Python would if our capture handlers were not there.

    Python prints WARNING and above through ``logging.lastResort`` only when a record
    finds no handler at all; a capture handler counts as one, which would silence the
    user's warnings while a payload is generated.
    """
    last_resort = logging.lastResort
    if last_resort is None or record.levelno < last_resort.level:
        return
    seen = getattr(_last_resort_state, "record", None)
    if seen is not None and seen() is record:  # several captures see the same record
        return
    _last_resort_state.record = weakref.ref(record)
    if not _has_user_handler(record.name):
        last_resort.handle(record)


class _Lowered:
    """Reference-counted "this logger emits INFO for capture" state, shared by threads."""

    def __init__(self, logger: logging.Logger) -> None:
        self.count = 0
        self.level = logger.level
        self.propagate = logger.propagate
        self.forward = _Forward(logger, logger.getEffectiveLevel())


_lowered_lock = threading.Lock()
_lowered: dict[str, _Lowered] = {}
#: Per logger name, the names of the loggers below it, and the state of the logging
#: registry they were read in: its size and last name (logging only ever adds loggers).
_below: dict[str, tuple[tuple[int, str | None], list[str]]] = {}


def _set_level(logger: logging.Logger, level: int) -> None:
    """``logger.setLevel(level)`` that forgets the cached levels of ``logger`` and of the
    loggers below it only.

    ``Logger.setLevel`` empties the level cache of every logger in the process, about
    half a microsecond each: twice per generation, in a program with a thousand payload
    names (one logger each) that was a millisecond per generated node. Only the loggers
    below this one inherit its level, so only their cached answers can go stale. The
    cache is cleared under logging's own lock, as ``setLevel`` does, so that a level
    looked up meanwhile in another thread is not stored from the old one.
    """
    registry = logger.manager.loggerDict
    with getattr(logging, "_lock"):  # noqa: B009 - logging's module lock (no public name)
        logger.level = level
        getattr(logger, "_cache").clear()  # noqa: B009
        for name in _names_below(logger.name, registry):
            below = registry.get(name)
            if isinstance(below, logging.Logger):
                getattr(below, "_cache").clear()  # noqa: B009


def _names_below(name: str, registry: dict[str, Any]) -> list[str]:
    state = (len(registry), next(reversed(registry), None))
    known = _below.get(name)
    if known is None or known[0] != state:
        prefix = f"{name}."
        known = _below[name] = (state, [other for other in registry if other.startswith(prefix)])
    return known[1]


def _lower(logger: logging.Logger) -> bool:
    """Lower ``logger`` to INFO for a capture; whether it is lowered (the user did not enable INFO)."""
    # Records at INFO must be created to be captured, but must not reach the user's
    # handlers when the user did not enable INFO: stop propagation and forward only
    # what would have been emitted before.
    with _lowered_lock:
        state = _lowered.get(logger.name)
        if state is None:
            if logger.getEffectiveLevel() <= logging.INFO:
                return False
            state = _lowered[logger.name] = _Lowered(logger)
            _set_level(logger, logging.INFO)
            logger.propagate = False
            logger.addHandler(state.forward)
        state.count += 1
        return True


def _restore(logger: logging.Logger) -> None:
    with _lowered_lock:
        state = _lowered.get(logger.name)
        if state is None:
            return
        state.count -= 1
        if state.count == 0:
            del _lowered[logger.name]
            logger.removeHandler(state.forward)
            _set_level(logger, state.level)
            logger.propagate = state.propagate


class GenerationLogCapture(logging.Handler):
    """Collects, in memory, the records one thread emits while it generates a payload.

    The payload's logger is lowered to INFO for the duration (without showing more to
    the user than before), and the package logger's records at enabled levels are
    collected too. The text is written into the artifact: into ``metadata.json``
    (``generation_log``) when short, else as the file ``generation.log``.
    """

    def __init__(self, payload_logger: logging.Logger) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(_CAPTURE_FORMATTER)
        self.lines: list[str] = []
        self._thread = threading.get_ident()
        self._payload_logger = payload_logger
        self._loggers = [payload_logger, logging.getLogger("persistable")]
        self._last: logging.LogRecord | None = None
        self._lowered = False

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self._thread

    def handle(self, record: logging.LogRecord) -> bool:
        _last_resort(record)  # before the thread filter: other threads' warnings count too
        return super().handle(record)

    def emit(self, record: logging.LogRecord) -> None:
        if record is self._last:  # seen through both loggers
            return
        self._last = record
        try:
            self.lines.append(self.format(record))
        except Exception:  # pragma: no cover - logging must never break generation
            self.handleError(record)

    def info(self, message: str, *args: object) -> None:
        """Log ``message % args`` at INFO on the payload logger, as ``logger.info`` does.

        When the logger is lowered for the capture only (the user did not enable INFO),
        the record would reach no handler but the captures, so the line is formatted
        straight into them (this thread's captures on this logger): a LogRecord and its trip through the handlers cost
        about a tenth of generating a small artifact.
        """
        logger = self._payload_logger
        if not self._lowered or logger.disabled or logger.filters:
            logger.info(message, *args)
            return
        created = time.time()
        stamp = time.strftime(_CAPTURE_FORMATTER.default_time_format, time.localtime(created))
        msecs = int((created - int(created)) * 1000)
        line = f"{stamp},{msecs:03d} INFO [{logger.name}] {message % args}"
        for handler in logger.handlers:  # every capture of this thread on the logger, as a record
            if isinstance(handler, GenerationLogCapture) and handler._thread == self._thread:
                handler.lines.append(line)

    def __enter__(self) -> GenerationLogCapture:
        self._lowered = _lower(self._payload_logger)
        for logger in self._loggers:
            logger.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for logger in self._loggers:
            logger.removeHandler(self)
        _restore(self._payload_logger)

    def text(self) -> bytes:
        """The captured lines as UTF-8 bytes (empty when nothing was logged)."""
        return ("\n".join(self.lines) + "\n").encode("utf-8") if self.lines else b""
