"""Memoized commands: ``run_command`` and ``persistable memo``, through real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from persistable.artifact import Artifact
from persistable.steps import CommandFailedError, CommandNotFoundError, CommandOutputError
from persistable.steps._command import CommandResult, run_command
from persistable.store import LocalStore

REPO = Path(__file__).resolve().parent.parent

REGISTER = """#!/bin/sh
# register.sh IN OUT: uses helper.sh, counts its runs in runs.txt
. ./helper.sh
echo "run" >> runs.txt
echo "registering $1"
echo "warning from register" >&2
printf '%s:%s' "$(helper_tag)" "$(cat "$1")" > "$2"
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A working folder with register.sh, its helper.sh and an input file."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "register.sh").write_text(REGISTER)
    (folder / "register.sh").chmod(0o755)
    (folder / "helper.sh").write_text("helper_tag() { echo v1; }\n")
    (folder / "in.txt").write_text("image")
    return folder


def runs(folder: Path) -> int:
    path = folder / "runs.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


#: The console script ``pip install`` made, next to this interpreter.
CONSOLE = Path(sys.executable).with_name("persistable")


def memo(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``persistable memo ARGS`` in ``folder``, through the installed console script."""
    return subprocess.run(
        [str(CONSOLE), "memo", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def register(folder: Path, store: Path, outputs: Sequence[str] = ("out.txt",)) -> CommandResult:
    return run_command(
        ["./register.sh", "in.txt", "out.txt"],
        data_dir=store,
        dependencies=["helper.sh"],
        outputs=outputs,
        cwd=folder,
        echo=False,
    )


def test_a_command_runs_once_and_its_outputs_are_restored(work: Path, tmp_path: Path) -> None:
    """A second identical call does not run; a deleted or changed output is restored from the artifact."""
    store = tmp_path / "hashes"
    first = register(work, store)
    assert runs(work) == 1
    assert (work / "out.txt").read_text() == "v1:image"
    assert first.memoized is False
    assert first.stdout == b"registering in.txt\n"
    second = register(work, store)
    assert second.memoized is True
    assert second.stdout == b"registering in.txt\n"
    assert runs(work) == 1
    (work / "out.txt").unlink()
    third = register(work, store)
    assert third.restored == ["out.txt"]
    (work / "out.txt").write_text("damaged")
    register(work, store)
    assert (work / "out.txt").read_text() == "v1:image"
    assert runs(work) == 1


def test_inputs_dependencies_and_the_executable_enter_the_key(work: Path, tmp_path: Path) -> None:
    """A changed input file, dependency script or command script runs the command again."""
    store = tmp_path / "hashes"
    register(work, store)
    (work / "in.txt").write_text("other image")
    register(work, store)
    assert runs(work) == 2
    assert (work / "out.txt").read_text() == "v1:other image"
    (work / "helper.sh").write_text("helper_tag() { echo v2; }\n")
    register(work, store)
    assert runs(work) == 3
    assert (work / "out.txt").read_text() == "v2:other image"
    (work / "register.sh").write_text(REGISTER + "# a comment changes the bytes\n")
    register(work, store)
    assert runs(work) == 4
    (work / "in.txt").write_text("image")
    (work / "helper.sh").write_text("helper_tag() { echo v1; }\n")
    (work / "register.sh").write_text(REGISTER)
    register(work, store)  # the very first inputs again: memoized, restored
    assert runs(work) == 4
    assert (work / "out.txt").read_text() == "v1:image"


def test_the_cli_memoizes_and_streams(work: Path) -> None:
    """`persistable memo` streams the command's output, memoizes it, and logs it in the artifact."""
    args = [
        "-d",
        "hashes",
        "-o",
        "out.txt",
        "-c",
        "helper.sh",
        "--",
        "./register.sh",
        "in.txt",
        "out.txt",
    ]
    first = memo(work, *args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "registering in.txt\n"
    assert "warning from register" in first.stderr
    second = memo(work, *args)
    assert second.returncode == 0
    assert second.stdout == ""
    assert runs(work) == 1
    [artifact] = [p for p in (work / "hashes" / "register.sh").iterdir()]
    log = Artifact(LocalStore(work / "hashes"), "register.sh", artifact.name).read_log()
    assert "stdout: registering in.txt" in log
    assert "stderr: warning from register" in log
    LocalStore(work / "hashes")  # a valid store folder


def test_the_cli_reruns_when_a_dependency_script_changes(work: Path) -> None:
    """`persistable memo -c helper.sh`: an edited helper runs the command again; the old one is memoized."""
    args = ["-d", "hashes", "-o", "out.txt", "-c", "helper.sh", "--", "./register.sh", "in.txt"]
    args.append("out.txt")
    assert memo(work, *args).returncode == 0
    (work / "helper.sh").write_text("helper_tag() { echo v2; }\n")
    changed = memo(work, *args)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout == "registering in.txt\n"  # it ran (and streamed) again
    assert (work / "out.txt").read_text() == "v2:image"
    assert runs(work) == 2
    (work / "helper.sh").write_text("helper_tag() { echo v1; }\n")
    back = memo(work, *args)
    assert back.returncode == 0, back.stderr
    assert back.stdout == ""  # memoized: the v1 output is restored, not recomputed
    assert (work / "out.txt").read_text() == "v1:image"
    assert runs(work) == 2


def test_a_failing_command_is_reported_and_never_memoized(work: Path, tmp_path: Path) -> None:
    """A non-zero exit code is the CLI's exit code and is not memoized: the next call runs again."""
    (work / "fail.sh").write_text("#!/bin/sh\necho run >> runs.txt\necho broken >&2\nexit 3\n")
    (work / "fail.sh").chmod(0o755)
    result = memo(work, "-d", "hashes", "--", "./fail.sh")
    assert result.returncode == 3
    assert "exited with code 3" in result.stderr
    assert "nothing was memoized" in result.stderr
    assert memo(work, "-d", "hashes", "--", "./fail.sh").returncode == 3
    assert runs(work) == 2
    assert not (work / "hashes" / "fail.sh").exists() or not any(
        (work / "hashes" / "fail.sh").iterdir()
    )
    with pytest.raises(CommandFailedError) as raised:
        run_command(["./fail.sh"], data_dir=tmp_path / "h", cwd=work, echo=False)
    assert raised.value.returncode == 3


def test_bad_commands_and_outputs(work: Path, tmp_path: Path) -> None:
    """A missing command, a missing dependency, an output not produced or outside the folder: one sentence, nothing memoized."""
    store = tmp_path / "hashes"
    with pytest.raises(CommandNotFoundError, match="'no-such-program-xyz' was not found on PATH"):
        run_command(["no-such-program-xyz"], data_dir=store, cwd=work)
    with pytest.raises(CommandNotFoundError, match="does not exist"):
        run_command(["./missing.sh"], data_dir=store, cwd=work)
    with pytest.raises(
        CommandNotFoundError, match=r"dependency 'nope\.sh' is not an existing file"
    ):
        run_command(
            ["./register.sh", "in.txt", "o.txt"], data_dir=store, cwd=work, dependencies=["nope.sh"]
        )
    with pytest.raises(
        CommandOutputError, match=r"did not produce the declared output 'never\.txt'"
    ):
        register(work, store, outputs=["out.txt", "never.txt"])
    with pytest.raises(CommandOutputError, match="lies outside the working folder"):
        register(work, store, outputs=["../escape.txt"])
    assert runs(work) == 1  # only the run that missed never.txt
    assert not store.exists() or not any(p for p in store.rglob("metadata.json"))
    result = memo(work, "-d", "hashes", "--", "no-such-program-xyz")
    assert result.returncode == 1
    assert "was not found on PATH" in result.stderr


def test_parallel_argument_sets(work: Path) -> None:
    """-p N with --argK/--arg_outputK runs each argument set once, through the runner's threads."""
    (work / "other.txt").write_text("second")
    args = [
        "-d", "hashes", "-c", "helper.sh", "-p", "2",
        "--arg0", "in.txt", "a.txt", "--arg_output0", "a.txt",
        "--arg1", "other.txt", "b.txt", "--arg_output1", "b.txt",
        "--", "./register.sh",
    ]  # fmt: skip
    result = memo(work, *args)
    assert result.returncode == 0, result.stderr
    assert (work / "a.txt").read_text() == "v1:image"
    assert (work / "b.txt").read_text() == "v1:second"
    assert memo(work, *args).returncode == 0
    assert runs(work) == 2
    (work / "b.txt").unlink()
    assert memo(work, *args).returncode == 0
    assert (work / "b.txt").read_text() == "v1:second"
    assert runs(work) == 2


def test_usage_errors(work: Path) -> None:
    """No '--', no -d, or --argK without -p are usage errors (exit 2)."""
    assert memo(work, "-d", "hashes", "./register.sh").returncode == 2
    assert memo(work, "--", "./register.sh").returncode == 2
    assert memo(work, "-d", "h", "--arg0", "x", "--", "./register.sh").returncode == 2


def test_python_m_persistable_memo_and_help(work: Path) -> None:
    """``python -m persistable memo`` works as the console script does; -h lists the options."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "persistable",
            "memo",
            "--data-dir=hashes",
            "-q",
            "--",
            "./register.sh",
            "in.txt",
            "o.txt",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ""  # -q: the command's output is not streamed
    assert runs(work) == 1
    helped = memo(work, "-h")
    assert helped.returncode == 0
    assert "--outputs" in helped.stdout


def test_a_script_that_cannot_be_started_is_one_sentence(work: Path) -> None:
    """A script without a '#!' line is refused in one sentence, not a traceback; nothing is memoized."""
    (work / "plain.sh").write_text("echo hi\n")
    (work / "plain.sh").chmod(0o755)
    result = memo(work, "-d", "hashes", "--", "./plain.sh")
    assert result.returncode == 1
    assert "could not be started" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any((work / "hashes").rglob("metadata.json"))
