"""A worker process that cannot import a payload's class: a clear error, the artifact untouched.

The user's script defines its classes inside ``if __name__ == "__main__":``, so the
process pool's workers (which import the script as ``__mp_main__``) do not have them:
the upstream artifact, pickled as ``__main__.Model`` by the script, cannot be loaded
there. That is a missing class, not damage: the run reports ``MissingPayloadClassError``
naming the class and the artifact stays where it is, whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from persistable.artifact import Artifact
from persistable.store import make_store

SCRIPT = textwrap.dedent(
    """
    import json
    import sys
    from dataclasses import dataclass
    from typing import Any

    import persistable
    from persistable import Persistable, PersistableParams

    if __name__ == "__main__":

        class Model:
            def __init__(self, weights):
                self.weights = weights

        @dataclass
        class P(PersistableParams):
            n: int = 3

        class Train(Persistable[Any, P]):
            def _generate_payload(self, **kw: Any) -> Any:
                return Model([1.0] * self.params.n)

        class Score(Persistable[float, P]):
            def _generate_payload(self, **kw: Any) -> float:
                (train,) = self.tracked_persistable_dependencies
                return float(sum(train.payload.weights))

        spec = json.loads(sys.argv[1])
        store = persistable.store.make_store(spec["url"], storage_options=spec["options"])
        train = Train(store, P())
        train.load_generate()  # written here, pickled as __main__.Model
        score = Score(store, P(), tracked_persistable_dependencies=[train])
        report = persistable.run([score], executor="processes", max_workers=1, raise_on_failure=False)
        (failed,) = report.with_status("failed")
        print(json.dumps({"key": train.persist_hash, "error": failed.error}))
    """
)


def _run(tmp_path: Path, url: str, options: dict[str, Any] | None, env: dict[str, str]) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), json.dumps({"url": url, "options": options})],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert "MissingPayloadClassError" in outcome["error"]
    assert "__main__.Model, which cannot be imported here" in outcome["error"]
    assert "the artifact is left where it is" in outcome["error"]
    store = make_store(url, storage_options=options)
    artifact = Artifact(store, "train", outcome["key"])
    artifact.verify()
    assert store.list_dir(".persistable/quarantine") == []


def test_a_worker_without_the_class_leaves_a_local_artifact(tmp_path: Path) -> None:
    """On a local folder: the worker's load fails naming __main__.Model; nothing is moved."""
    _run(tmp_path, str(tmp_path / "store"), None, dict(os.environ))


@pytest.mark.s3
def test_a_worker_without_the_class_leaves_an_s3_artifact(
    tmp_path: Path, s3_bucket: tuple[str, dict[str, Any]], s3_env: dict[str, str]
) -> None:
    """On S3 (loopback moto_server): the same error; the artifact verifies and is not moved."""
    url, options = s3_bucket
    _run(tmp_path, url, options, {**os.environ, **s3_env})
