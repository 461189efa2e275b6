"""``show``, ``diff``, ``verify``, ``du``, ``gc`` and ``rm`` through real subprocesses on S3.

The store holds an artifact replaced by an explicit ``generate()`` (its files in the
folder its ``metadata.json`` names), so every command reads an S3 artifact of each layout.
"""

from __future__ import annotations

import os
from typing import Any

from _cli_helpers import CountParams, Squares, Total, run_cli, run_json

from persistable.artifact import Artifact
from persistable.store import make_store


def test_commands_on_s3_with_a_replaced_artifact(
    s3_bucket: tuple[str, dict[str, Any]], s3_env: dict[str, str]
) -> None:
    """Every read command sees the replaced artifact as one whole artifact; gc plans, then deletes with --yes; rm deletes."""
    url, options = s3_bucket
    endpoint = options["client_kwargs"]["endpoint_url"]
    env = {**os.environ, **s3_env}
    option = ["-o", f"client_kwargs.endpoint_url={endpoint}"]
    store = make_store(url, storage_options=options)
    refs = {}
    for n in (1, 2, 3):
        squares = Squares(store, CountParams(n))
        squares.load_generate()
        refs[f"squares{n}"] = f"squares/{squares.key}"
    total = Total(store, CountParams(3), [Squares(store, CountParams(3))])
    total.load_generate()
    refs["total"] = f"total/{total.key}"
    replaced = Squares(store, CountParams(2))
    replaced.generate()  # same bytes: kept
    assert "files_folder" not in replaced.metadata
    replaced.persist()  # a persist() of a loaded payload: same bytes again, kept
    artifact = Artifact(store, "squares", replaced.key)
    # Other bytes under the same key (as after a code change): a real replace.
    changed = Squares(store, CountParams(2))
    changed._generate_payload = lambda **kw: [0, 1, 99]  # type: ignore[method-assign]
    changed.generate()
    artifact.refresh()
    assert str(artifact.metadata["files_folder"]).startswith(".r-")

    shown = run_json("show", url, refs["squares2"][:18], *option, env=env)
    assert shown["metadata"]["files_folder"] == artifact.metadata["files_folder"]
    assert shown["params"]["n"] == 2
    different = run_cli("diff", url, refs["squares1"], refs["squares2"], *option, env=env)
    assert different.returncode == 1, different.stderr
    assert "params.n: 1 -> 2" in different.stdout
    verified = run_cli("verify", url, *option, env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "4 artifacts checked, 0 damaged." in verified.stdout
    usage = run_json("du", url, *option, env=env)
    assert set(usage["payload_names"]) == {"squares", "total"}

    plan = run_json("gc", url, "--keep-lineage-of", refs["total"], *option, env=env)
    assert sorted(item["ref"] for item in plan["artifacts"]) == sorted(
        [refs["squares1"], refs["squares2"]]
    )
    assert plan["deleted"] == []
    assert store.has_artifact("squares", refs["squares2"].split("/")[1])
    done = run_json("gc", url, "--keep-lineage-of", refs["total"], "--yes", *option, env=env)
    assert sorted(done["deleted"]) == sorted([refs["squares1"], refs["squares2"]])
    assert store.list_dir(refs["squares2"]) == []  # the replaced artifact's folder is empty

    removed = run_cli("rm", url, refs["total"], "--yes", *option, env=env)
    assert removed.returncode == 0, removed.stderr
    assert not store.has_artifact("total", total.key)
    assert [payload for payload, _ in store.iter_artifacts()] == ["squares"]
