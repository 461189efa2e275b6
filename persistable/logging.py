"""1.x's ``persistable.logging.get_logger``: a logger with a console and an optional file handler.

The package itself never calls it (it logs through ``logging.getLogger(__name__)`` and
attaches no handlers); it is kept for 1.x code that configures its own loggers with it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

__all__ = ["get_logger"]

_FORMAT = "%(asctime)s - %(name)s - %(funcName)s - %(levelname)s - %(message)s"


def get_logger(
    name: str,
    file_loc: Path | None,
    console_level: int | None = logging.DEBUG,
    file_level: int | None = logging.DEBUG,
    format_str: str = _FORMAT,
    adapt_from_logger: logging.Logger | None = None,
) -> logging.Logger:
    """The logger ``name`` (or ``adapt_from_logger``) with handlers set up as 1.x did.

    A console handler on stdout at ``console_level`` (None: none added) and, when
    ``file_loc`` is given, a file handler at ``file_level``; handlers of either kind
    already on the logger are reconfigured instead of duplicated.
    """
    formatter = logging.Formatter(format_str)
    if adapt_from_logger is not None:
        logger = adapt_from_logger
    else:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
    if console_level is not None:
        consoles = [
            handler
            for handler in logger.handlers
            if isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler)
        ]
        if not consoles:
            console = logging.StreamHandler(sys.stdout)
            logger.addHandler(console)
            consoles = [console]
        for handler in consoles:
            handler.setLevel(console_level)
            handler.setFormatter(formatter)
    if file_loc is not None:
        files = [handler for handler in logger.handlers if isinstance(handler, logging.FileHandler)]
        if not files:
            file_handler = logging.FileHandler(file_loc, encoding="utf-8")
            logger.addHandler(file_handler)
            files = [file_handler]
        for handler in files:
            handler.setLevel(logging.DEBUG if file_level is None else file_level)
            handler.setFormatter(formatter)
    return logger
