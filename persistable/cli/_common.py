"""Helpers every subcommand shares: the store argument and options, JSON output, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

__all__ = [
    "delegate_command",
    "emit_json",
    "exit_code_for",
    "json_option",
    "open_store",
    "parse_storage_options",
    "storage_options_option",
    "store_argument",
    "yes_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def store_argument(name: str = "store") -> Callable[[F], F]:
    """The positional STORE argument: a folder, ``file://``, ``memory://`` or any fsspec URL."""
    return click.argument(name, metavar=name.upper())


def storage_options_option(help_for: str = "STORE") -> Callable[[F], F]:
    """``-o/--storage-option KEY=VALUE`` (repeatable): fsspec options such as an S3 endpoint."""
    return click.option(
        "-o",
        "--storage-option",
        "storage_option",
        multiple=True,
        metavar="KEY=VALUE",
        help=(
            f"fsspec storage option of {help_for} (repeatable); VALUE is read as JSON when it parses "
            "(true, 3, {...}) and as text otherwise; a dotted KEY nests "
            "(client_kwargs.endpoint_url=http://127.0.0.1:9000)."
        ),
    )


def json_option(function: F) -> F:
    """``--json``: print one JSON document instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def yes_option(function: F) -> F:
    """``--yes``: do it; without it a destructive command only prints what it would do."""
    return click.option(
        "-y", "--yes", is_flag=True, help="Do it (without --yes, only print what would be done)."
    )(function)


def parse_storage_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["anon=true", "client_kwargs.endpoint_url=http://x"]`` -> nested options."""
    from persistable.exceptions import StoreConfigurationError

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise StoreConfigurationError(
                f"--storage-option {pair!r} is not KEY=VALUE; write e.g. "
                "-o client_kwargs.endpoint_url=http://127.0.0.1:9000."
            )
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        target = options
        *parents, leaf = key.split(".")
        for parent in parents:
            nested = target.setdefault(parent, {})
            if not isinstance(nested, dict):
                raise StoreConfigurationError(
                    f"--storage-option {pair!r} nests under {parent!r}, which already has the "
                    f"value {nested!r}."
                )
            target = nested
        target[leaf] = value
    return options


def open_store(url: str, storage_options: Sequence[str] = (), *, read_only: bool) -> Any:
    """The store at ``url``; a local folder must exist (nothing is created to read it).

    Raises
    ------
    StoreConfigurationError
        An unknown scheme, bad options, or a local folder that does not exist.
    """
    from persistable.exceptions import StoreConfigurationError
    from persistable.store import LocalStore, make_store

    options = parse_storage_options(storage_options)
    store = make_store(url, storage_options=options or None, read_only=read_only)
    if isinstance(store, LocalStore) and not store.root.is_dir():
        raise StoreConfigurationError(
            f"There is no folder {str(store.root)!r}; pass the data_dir of your persistables "
            "(a folder, or a URL such as s3://bucket/prefix)."
        )
    return store


def emit_json(document: Any) -> None:
    """Print one JSON document to stdout."""
    json.dump(document, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def exit_code_for(error: BaseException) -> int:
    """The documented exit code of an error (see :mod:`persistable.cli._main`)."""
    from persistable.exceptions import (
        LockTimeoutError,
        ReadOnlyStoreError,
        StoreAccessDeniedError,
        UntrustedPayloadError,
    )

    refused = (ReadOnlyStoreError, StoreAccessDeniedError, LockTimeoutError, UntrustedPayloadError)
    return 3 if isinstance(error, refused) else 2


def delegate_command(name: str, target: str, help_text: str) -> click.Command:
    """A subcommand that hands its arguments, untouched, to ``target`` (``"module:function"``).

    For command lines built with another parser (argparse): ``function(argv) -> int`` gets
    every argument after the subcommand's name (``--help`` included) and its return value
    is the exit code. The module is imported only when the subcommand runs.
    """

    @click.command(
        name,
        help=help_text,
        short_help=help_text.split(". ")[0].rstrip("."),
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    )
    @click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
    def delegated(arguments: tuple[str, ...]) -> None:
        import importlib

        module_name, _, function_name = target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        raise SystemExit(function(list(arguments)))

    return delegated
