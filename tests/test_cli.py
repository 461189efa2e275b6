"""The ``persistable`` command, run as users run it: in a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from _cli_helpers import CountParams, Squares, run_cli, run_json


def _store(tmp_path: Path, count: int = 3) -> Path:
    root = tmp_path / "cache"
    for n in range(count):
        Squares(root, CountParams(n)).load_generate()
    return root


def test_help_lists_every_registered_command_without_heavy_imports() -> None:
    """`persistable --help` lists the subcommands of the registry and imports neither numpy nor fsspec."""
    from persistable.cli import COMMANDS

    script = (
        "import sys, json\n"
        "from persistable.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps([m for m in ('numpy', 'fsspec', 's3fs', 'dask') if m in sys.modules]))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    for name in COMMANDS:
        assert f"  {name} " in completed.stdout
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
    assert "Exit codes:" in completed.stdout


def test_console_script_and_module_give_the_same_help() -> None:
    """The installed `persistable` script and `python -m persistable` are the same command."""
    script = Path(sysconfig.get_path("scripts")) / "persistable"
    via_script = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    via_module = run_cli("--help")
    assert via_module.returncode == 0
    assert via_script.stdout == via_module.stdout


def test_ls_summarises_payload_names(tmp_path: Path) -> None:
    """`ls STORE` prints one row per payload name with its artifact count; --json gives the same facts."""
    root = _store(tmp_path)
    completed = run_cli("ls", str(root))
    assert completed.returncode == 0, completed.stderr
    header, row = completed.stdout.strip().splitlines()
    assert header.split()[:4] == ["payload_name", "artifacts", "size", "newest"]
    assert row.split()[:2] == ["squares", "3"]
    document = run_json("ls", str(root))
    assert [entry["payload_name"] for entry in document["payload_names"]] == ["squares"]
    assert document["payload_names"][0]["artifacts"] == 3
    keys = sorted(Squares(root, CountParams(n)).persist_hash for n in range(3))
    assert [entry["key"] for entry in document["artifacts"]] == keys
    assert all(entry["size"] > 0 and entry["error"] is None for entry in document["artifacts"])


def test_ls_of_a_missing_folder_is_one_clear_sentence(tmp_path: Path) -> None:
    """`ls` of a folder that does not exist exits 2 with one sentence and creates nothing."""
    missing = tmp_path / "nothing-here"
    completed = run_cli("ls", str(missing))
    assert completed.returncode == 2
    assert completed.stderr.startswith("persistable: error: There is no folder")
    assert len(completed.stderr.strip().splitlines()) == 1
    assert not missing.exists()


def test_ls_of_an_unknown_scheme_is_a_clear_error() -> None:
    """An unknown URL scheme exits 2 naming the URL."""
    completed = run_cli("ls", "nosuchscheme://bucket/cache")
    assert completed.returncode == 2
    assert "nosuchscheme://bucket/cache" in completed.stderr
    assert "Traceback" not in completed.stderr
