"""The runner and the store listing load on first use; ``persistable.run`` stays the function."""

from __future__ import annotations

import json
import subprocess
import sys

#: What ``import persistable`` no longer loads (issue 14: import time).
DEFERRED = [
    "persistable.run",
    "persistable.run._run",
    "persistable.run._executors",
    "persistable.artifact._listing",
    "concurrent.futures",
]


def _fresh(code: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", f"import json, sys\n{code}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_persistable_does_not_load_the_runner_or_the_listing() -> None:
    code = f"import persistable\nprint(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))"
    assert _fresh(code) == []


def test_run_is_the_function_however_the_runner_is_first_imported() -> None:
    """``persistable.run`` is the runner's function after any first import of the subpackage."""
    firsts = [
        "import persistable\nf = persistable.run",
        "from persistable import run as f",
        "import persistable.run\nf = persistable.run",
        "from persistable.run import resolve\nimport persistable\nf = persistable.run",
        "import persistable.run._graph\nimport persistable\nf = persistable.run",
        "from persistable.run._report import RunReport\nimport persistable\nf = persistable.run",
    ]
    for first in firsts:
        code = (
            f"{first}\n"
            "import persistable\n"
            "runner = sys.modules['persistable.run._run'].run\n"
            "print(json.dumps([f is runner, persistable.run is runner, callable(persistable.run)]))"
        )
        assert _fresh(code) == [True, True, True], first


def test_lazy_names_resolve_to_their_modules() -> None:
    import persistable
    import persistable.artifact

    assert persistable.RunReport.__module__ == "persistable.run._report"
    assert persistable.grid.__module__ == "persistable._map"
    assert persistable.artifact.list_artifacts.__module__ == "persistable.artifact._listing"
    assert persistable.artifact.StoreListing.__name__ == "StoreListing"
    from persistable.artifact import ArtifactInfo, PayloadSummary

    assert {ArtifactInfo.__name__, PayloadSummary.__name__} == {"ArtifactInfo", "PayloadSummary"}
