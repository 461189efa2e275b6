"""Memoized shell commands: ``run_command(...)`` and ``persistable memo``.

A command's key covers the executable as spelled and the content of the file it
resolves to, the content of each declared dependency script, the arguments, and the
content of every argument that names an existing file (declared outputs excepted: they
are keyed by their spelling). Declared outputs are stored in the artifact (a zip
archive, with the captured stdout and stderr) and, on a hit, re-validated by checksum
and restored when missing or changed. A non-zero exit code raises and is never
memoized; an output that was not produced or lies outside the working folder is refused
before anything is memoized.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from persistable._content import file_digest
from persistable._persistable import Persistable
from persistable.io import FileIO
from persistable.params import UNTRACKED, PersistableParams
from persistable.steps._errors import (
    CommandError,
    CommandFailedError,
    CommandNotFoundError,
    CommandOutputError,
)
from persistable.store import Store, StoreLike, make_store

__all__ = ["CommandResult", "command_persistable", "run_command", "run_commands"]

logger = logging.getLogger(__name__)

_RECORD = "record.json"
_STDOUT = "stdout.txt"
_STDERR = "stderr.txt"
_OUTPUTS = "outputs/"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _digest(path: Path) -> tuple[int, str]:
    """Size and xxh3-128 of a file (remembered while it is unchanged)."""
    info = path.stat()
    return info.st_size, file_digest(path, info)


@dataclass
class CommandRecord:
    """What a successful command left: its exit code, output streams and declared outputs.

    On the generating side ``source`` is the working folder the outputs are read from;
    on the loading side ``archive`` is the zip (a local path, or its bytes) they are
    extracted from.
    """

    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes
    #: Declared outputs (relative to the working folder): size and xxh3-128.
    outputs: dict[str, dict[str, Any]]
    source: Path | None = None
    archive: Path | bytes | None = None

    def extract(self, name: str, destination: Path) -> None:
        """Write the stored copy of output ``name`` to ``destination`` (atomically)."""
        if self.archive is None:
            raise CommandOutputError(f"The memoized run holds no archive to restore {name!r} from.")
        source = io.BytesIO(self.archive) if isinstance(self.archive, bytes) else self.archive
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
        with (
            zipfile.ZipFile(source) as archive,
            archive.open(_OUTPUTS + name) as stored,
            partial.open("wb") as target,
        ):
            shutil.copyfileobj(stored, target, 1 << 20)
        os.replace(partial, destination)


class CommandArchiveIO(FileIO[CommandRecord]):
    """A command's record, streams and output files as one zip archive."""

    name = "command-zip"
    suffix = ".zip"

    def save(self, payload: CommandRecord, stream: IO[bytes]) -> None:
        record = {
            "argv": payload.argv,
            "returncode": payload.returncode,
            "outputs": payload.outputs,
        }
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            archive.writestr(_RECORD, json.dumps(record, indent=2, sort_keys=True))
            archive.writestr(_STDOUT, payload.stdout)
            archive.writestr(_STDERR, payload.stderr)
            if payload.outputs and payload.source is None:
                raise CommandOutputError(
                    "A command record without its working folder cannot be saved."
                )
            for name in sorted(payload.outputs):
                archive.write(Path(payload.source or ".") / name, _OUTPUTS + name)

    def _read(self, source: Path | BinaryIO, archive_ref: Path | bytes) -> CommandRecord:
        with zipfile.ZipFile(source) as archive:
            record = json.loads(archive.read(_RECORD))
            return CommandRecord(
                argv=list(record["argv"]),
                returncode=int(record["returncode"]),
                stdout=archive.read(_STDOUT),
                stderr=archive.read(_STDERR),
                outputs=dict(record["outputs"]),
                archive=archive_ref,
            )

    def load(self, stream: IO[bytes]) -> CommandRecord:
        data = stream.read()
        return self._read(io.BytesIO(data), data)

    def load_path(self, path: Path) -> CommandRecord:
        return self._read(path, path)


@dataclass
class CommandParams(PersistableParams):
    """The identity of one command line (see the module docstring) and how to run it."""

    #: The canonical description of the command that is hashed.
    identity: dict[str, Any] = field(default_factory=dict, metadata={"persistable": UNTRACKED})
    argv: list[str] = field(default_factory=list, metadata={"persistable": UNTRACKED})
    outputs: list[str] = field(default_factory=list, metadata={"persistable": UNTRACKED})
    cwd: str = field(default=".", metadata={"persistable": UNTRACKED})
    echo: bool = field(default=True, metadata={"persistable": UNTRACKED})

    def to_dict(self) -> dict[str, Any]:
        return self.identity


class CommandPersistable(Persistable[CommandRecord, CommandParams]):
    """One memoized command line; generating it runs the command."""

    default_payload_io = CommandArchiveIO()
    #: The command's identity is in its key (executable and script bytes); no Python code.
    code_changes = "ignore"

    def __init__(self, store: Store, params: CommandParams, payload_name: str) -> None:
        super().__init__(store, params, None, payload_name=payload_name)
        #: Whether this object ran the command (rather than loading a memoized run).
        self.ran = False

    def _generate_payload(self, **untracked_payload_params: Any) -> CommandRecord:
        params = self.params
        cwd = Path(params.cwd)
        for name in params.outputs:
            # A stale output of an earlier run must not pass for one this run produced.
            stale = cwd / name
            if stale.is_file():
                stale.unlink()
        returncode, stdout, stderr = _execute(params.argv, cwd, self.logger, echo=params.echo)
        if returncode != 0:
            raise CommandFailedError(
                f"{' '.join(params.argv)!r} exited with code {returncode} in {str(cwd)!r}; "
                "nothing was memoized (fix the command and run it again).",
                returncode,
            )
        outputs: dict[str, dict[str, Any]] = {}
        for name in params.outputs:
            path = cwd / name
            if not path.is_file():
                raise CommandOutputError(
                    f"{' '.join(params.argv)!r} exited with code 0 but did not produce the "
                    f"declared output {name!r} in {str(cwd)!r}; nothing was memoized (fix the "
                    "command or the -o list)."
                )
            size, digest = _digest(path)
            outputs[name] = {"size": size, "xxh3_128": digest}
        self.ran = True
        return CommandRecord(
            argv=list(params.argv),
            returncode=returncode,
            stdout=stdout,
            stderr=stderr,
            outputs=outputs,
            source=cwd,
        )


def _pump(
    source: IO[bytes],
    sink: BinaryIO | None,
    kept: list[bytes],
    lines: queue.Queue[tuple[str, bytes] | None],
    label: str,
) -> None:
    for line in iter(source.readline, b""):
        kept.append(line)
        if sink is not None:
            sink.write(line)
            sink.flush()
        lines.put((label, line))
    source.close()
    lines.put(None)


def _execute(
    argv: list[str], cwd: Path, log: logging.Logger, *, echo: bool
) -> tuple[int, bytes, bytes]:
    """Run ``argv`` in ``cwd``, streaming its stdout/stderr to ours (when ``echo``) and the log.

    The lines are logged by the calling thread: the generation log records only the
    thread that generates.
    """
    try:
        process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as error:
        kind = CommandNotFoundError if isinstance(error, FileNotFoundError) else CommandError
        hint = (
            " (a script needs a '#!' line and execute permission)"
            if isinstance(error, PermissionError) or error.errno == 8  # ENOEXEC
            else ""
        )
        raise kind(
            f"{argv[0]!r} could not be started ({error.strerror}){hint}; nothing was memoized."
        ) from None
    out: list[bytes] = []
    err: list[bytes] = []
    lines: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
    sinks = (sys.stdout.buffer, sys.stderr.buffer) if echo else (None, None)
    pipes = (process.stdout, process.stderr)
    threads = [
        threading.Thread(target=_pump, args=(pipe, sink, kept, lines, label), daemon=True)
        for pipe, sink, kept, label in zip(
            pipes, sinks, (out, err), ("stdout", "stderr"), strict=True
        )
    ]
    for thread in threads:
        thread.start()
    open_pipes = len(threads)
    while open_pipes:
        item = lines.get()
        if item is None:
            open_pipes -= 1
        else:
            log.info("%s: %s", item[0], item[1].decode(errors="replace").rstrip("\n"))
    returncode = process.wait()
    for thread in threads:
        thread.join()
    return returncode, b"".join(out), b"".join(err)


def _resolve_executable(program: str, cwd: Path) -> Path:
    if os.sep in program or (os.altsep and os.altsep in program):
        candidate = (cwd / program).resolve()
        if candidate.is_file():
            return candidate
        raise CommandNotFoundError(
            f"The command {program!r} does not exist (looked for {str(candidate)!r}); "
            "nothing was run or memoized."
        )
    found = shutil.which(program, path=os.environ.get("PATH"))
    if found is None:
        raise CommandNotFoundError(
            f"The command {program!r} was not found on PATH; nothing was run or memoized."
        )
    return Path(found).resolve()


def _inside(cwd: Path, name: str | os.PathLike[str]) -> str:
    """``name`` relative to ``cwd`` (POSIX), refusing anything outside it."""
    path = Path(name)
    resolved = (path if path.is_absolute() else cwd / path).resolve()
    try:
        relative = resolved.relative_to(cwd.resolve())
    except ValueError:
        raise CommandOutputError(
            f"The declared output {str(name)!r} lies outside the working folder {str(cwd)!r}; "
            "declare outputs inside it (run from a parent folder or use relative paths)."
        ) from None
    if not relative.parts:
        raise CommandOutputError(f"The declared output {str(name)!r} is the working folder itself.")
    return relative.as_posix()


def command_persistable(
    command: Sequence[str],
    *,
    data_dir: StoreLike,
    dependencies: Sequence[str | os.PathLike[str]] = (),
    outputs: Sequence[str | os.PathLike[str]] = (),
    name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    echo: bool = True,
) -> CommandPersistable:
    """The memoized run of ``command`` as a Persistable (nothing runs); see :func:`run_command`."""
    argv = [os.fspath(part) for part in command]
    if not argv:
        raise CommandNotFoundError("No command was given; pass the program and its arguments.")
    folder = Path(cwd) if cwd is not None else Path.cwd()
    executable = _resolve_executable(argv[0], folder)
    declared = [_inside(folder, output) for output in outputs]
    scripts = []
    for dependency in dependencies:
        path = Path(dependency)
        path = path if path.is_absolute() else folder / path
        if not path.is_file():
            raise CommandNotFoundError(
                f"The dependency {os.fspath(dependency)!r} is not an existing file (looked for "
                f"{str(path)!r}); nothing was run or memoized."
            )
        scripts.append({"path": os.fspath(dependency), "xxh3_128": _digest(path)[1]})
    arguments: list[Any] = []
    output_set = set(declared)
    for argument in argv[1:]:
        path = Path(argument)
        path = path if path.is_absolute() else folder / path
        is_output = False
        with contextlib.suppress(CommandOutputError):  # outside the folder: not an output
            is_output = _inside(folder, argument) in output_set
        if not is_output and path.is_file():
            arguments.append({"file": argument, "xxh3_128": _digest(path)[1]})
        else:
            arguments.append(argument)
    identity = {
        "executable": {"name": argv[0], "xxh3_128": _digest(executable)[1]},
        "dependencies": scripts,
        "arguments": arguments,
        "outputs": declared,
    }
    payload_name = name if name is not None else Path(argv[0]).name
    payload_name = "".join(c if c in _NAME_CHARS else "_" for c in payload_name).lstrip(".-")
    params = CommandParams(
        identity=identity,
        argv=[str(executable), *argv[1:]] if os.sep in argv[0] else argv,
        outputs=declared,
        cwd=str(folder),
        echo=echo,
    )
    return CommandPersistable(make_store(data_dir), params, payload_name or "command")


@dataclass
class CommandResult:
    """The outcome of :func:`run_command`."""

    returncode: int
    stdout: bytes
    stderr: bytes
    #: Declared outputs, relative to the working folder.
    outputs: list[str]
    #: True when the command did not run because a memoized run was found.
    memoized: bool
    key: str
    #: Outputs written back from the memoized copy because they were missing or changed.
    restored: list[str] = field(default_factory=list)


def finish(persistable: CommandPersistable) -> CommandResult:
    """Load (or take) the run's record and restore its outputs where they differ on disk."""
    record = persistable.payload
    cwd = Path(persistable.params.cwd)
    restored = []
    if not persistable.ran:
        for name, expected in sorted(record.outputs.items()):
            path = cwd / name
            if path.is_file() and _digest(path) == (expected["size"], expected["xxh3_128"]):
                continue
            record.extract(name, path)
            restored.append(name)
        logger.info(
            "%s: memoized (key %s)%s",
            " ".join(record.argv),
            persistable.persist_hash,
            f"; restored {', '.join(restored)}" if restored else "",
        )
    return CommandResult(
        returncode=record.returncode,
        stdout=record.stdout,
        stderr=record.stderr,
        outputs=sorted(record.outputs),
        memoized=not persistable.ran,
        key=persistable.persist_hash,
        restored=restored,
    )


def run_command(
    command: Sequence[str],
    *,
    data_dir: StoreLike,
    dependencies: Sequence[str | os.PathLike[str]] = (),
    outputs: Sequence[str | os.PathLike[str]] = (),
    name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    echo: bool = True,
) -> CommandResult:
    """Run ``command`` unless a memoized run of the same command, scripts and inputs exists.

    Parameters
    ----------
    command
        The program and its arguments (no shell).
    data_dir
        The store of the memoized runs.
    dependencies
        Scripts the command reads (their content enters the key).
    outputs
        Files the command writes, inside the working folder: stored with the run and
        restored on a hit when missing or changed.
    name
        Payload name of the runs (default: the program's file name).
    cwd
        The working folder (default the current one).
    echo
        Stream the command's stdout/stderr to ours while it runs.

    Raises
    ------
    CommandNotFoundError, CommandFailedError, CommandOutputError
        Nothing is memoized in each case.
    """
    persistable = command_persistable(
        command,
        data_dir=data_dir,
        dependencies=dependencies,
        outputs=outputs,
        name=name,
        cwd=cwd,
        echo=echo,
    )
    persistable.load_generate()
    return finish(persistable)


def run_commands(
    persistables: Sequence[CommandPersistable], *, max_workers: int | None = None
) -> list[CommandResult | CommandError]:
    """Run many memoized commands in parallel through :func:`persistable.run` (threads).

    Returns one :class:`CommandResult`, or the :class:`CommandError` that says why it
    failed, per command, in order.
    """
    from persistable.run import run

    report = run(list(persistables), executor="threads", max_workers=max_workers)
    status = {(node.payload_name, node.key): node for node in report}
    results: list[CommandResult | CommandError] = []
    for persistable in persistables:
        node = status[(persistable.payload_name, persistable.persist_hash)]
        if node.status != "generated" and node.status != "loaded":
            results.append(
                CommandError(f"{' '.join(persistable.params.argv)!r}: {node.error or node.reason}")
            )
            continue
        persistable.ran = node.status == "generated"
        results.append(finish(persistable))
    return results
