"""Logging helpers: the console handler behind ``verbose=True`` and the generation log capture."""

from __future__ import annotations

import logging
import threading

__all__ = ["GenerationLogCapture", "enable_console", "payload_logger"]

_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
_console_lock = threading.Lock()
_console_handler: logging.Handler | None = None


def payload_logger(payload_name: str) -> logging.Logger:
    """The logger of one payload name: ``persistable.payload.<payload_name>``."""
    return logging.getLogger(f"persistable.payload.{payload_name}")


def enable_console(logger: logging.Logger) -> None:
    """Show INFO records of ``logger`` on stderr through one shared handler (never duplicated)."""
    global _console_handler
    with _console_lock:
        if _console_handler is None:
            _console_handler = logging.StreamHandler()
            _console_handler.setFormatter(logging.Formatter(_FORMAT))
            _console_handler.set_name("persistable-console")
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        if _console_handler not in logger.handlers:
            logger.addHandler(_console_handler)


class GenerationLogCapture(logging.Handler):
    """Collects, in memory, the records one thread emits while it generates a payload.

    Attached to the payload's logger and the package logger for the duration of one
    generation, then written into the artifact as ``generation.log`` in one write.
    """

    def __init__(self, loggers: list[logging.Logger]) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(_FORMAT))
        self.lines: list[str] = []
        self._thread = threading.get_ident()
        self._loggers = loggers
        self._levels: list[int] = []

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self._thread

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # pragma: no cover - logging must never break generation
            self.handleError(record)

    def __enter__(self) -> GenerationLogCapture:
        for logger in self._loggers:
            self._levels.append(logger.level)
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for logger, level in zip(self._loggers, self._levels, strict=True):
            logger.removeHandler(self)
            logger.setLevel(level)

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode("utf-8") if self.lines else b""
