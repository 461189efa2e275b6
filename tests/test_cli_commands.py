"""Every ``persistable`` subcommand through a real subprocess, on a local store and on S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _cli_helpers import CountParams, Squares, Total, run_cli, run_json

from persistable.store import make_store


def _lineage_store(root: Path) -> dict[str, str]:
    """Squares n=1..3 and a Total over squares n=3: refs by name."""
    refs = {}
    for n in (1, 2, 3):
        squares = Squares(root, CountParams(n))
        squares.load_generate()
        refs[f"squares{n}"] = f"squares/{squares.key}"
    total = Total(root, CountParams(3), [Squares(root, CountParams(3))])
    total.load_generate()
    refs["total"] = f"total/{total.key}"
    return refs


def _short(ref: str) -> str:
    name, _, key = ref.partition("/")
    return f"{name}/{key[:10]}"


def test_show_prints_provenance_params_and_log(tmp_path: Path) -> None:
    """`show` resolves a key prefix and prints where, who, the files (of a replaced artifact: in its folder) and the params; --json has the metadata."""
    refs = _lineage_store(tmp_path / "cache")
    root = tmp_path / "cache"
    changed = Total(root, CountParams(3), [Squares(root, CountParams(3))])
    changed._generate_payload = lambda **kw: -1  # type: ignore[method-assign]
    changed.generate()  # other bytes under the same key: replaced, its files in .r-<id>/
    shown = run_cli("show", str(tmp_path / "cache"), _short(refs["total"]), "--log")
    assert shown.returncode == 0, shown.stderr
    assert f"files (in {changed.metadata['files_folder']}/, a replace's folder):" in shown.stdout
    assert refs["total"] in shown.stdout
    assert "upstream" in shown.stdout
    assert refs["squares3"] in shown.stdout
    assert '"n": 3' in shown.stdout
    assert "Generating total" in shown.stdout
    document = run_json("show", str(tmp_path / "cache"), _short(refs["total"]))
    assert document["metadata"]["upstream"] == [refs["squares3"].split("/")]
    assert document["params"]["n"] == 3
    assert document["metadata"]["files_folder"] == changed.metadata["files_folder"]


def test_diff_exits_1_when_params_differ_and_0_when_equal(tmp_path: Path) -> None:
    """`diff` lists the params that differ (exit 1) and says 'no differences' for one artifact (exit 0)."""
    refs = _lineage_store(tmp_path / "cache")
    root = str(tmp_path / "cache")
    different = run_cli("diff", root, _short(refs["squares1"]), _short(refs["squares2"]))
    assert different.returncode == 1
    assert "params.n: 1 -> 2" in different.stdout
    same = run_cli("diff", root, _short(refs["squares1"]), refs["squares1"])
    assert same.returncode == 0
    assert "no differences" in same.stdout


def test_verify_lists_damage_and_changes_nothing(tmp_path: Path) -> None:
    """`verify` exits 0 on a sound store, 1 with the damaged artifact named after a byte flips, and moves nothing."""
    root = tmp_path / "cache"
    refs = _lineage_store(root)
    assert run_cli("verify", str(root)).returncode == 0
    payload = root / refs["squares2"] / "payload.pkl"
    data = bytearray(payload.read_bytes())
    data[-2] ^= 0xFF
    payload.write_bytes(bytes(data))
    damaged = run_cli("verify", str(root))
    assert damaged.returncode == 1
    assert f"DAMAGED {refs['squares2']}" in damaged.stdout
    assert "4 artifacts checked, 1 damaged." in damaged.stdout
    assert payload.read_bytes() == bytes(data)
    document = json.loads(run_cli("verify", str(root), "--json").stdout)
    assert [item["ref"] for item in document["damaged"]] == [refs["squares2"]]


def test_rm_prints_the_plan_and_deletes_only_with_yes(tmp_path: Path) -> None:
    """`rm` without --yes deletes nothing; with --yes the artifact is gone; bad references exit 2."""
    root = tmp_path / "cache"
    refs = _lineage_store(root)
    plan = run_cli("rm", str(root), _short(refs["squares1"]))
    assert plan.returncode == 0
    assert f"would delete {refs['squares1']}" in plan.stdout
    assert (root / refs["squares1"] / "metadata.json").is_file()
    done = run_cli("rm", str(root), _short(refs["squares1"]), "--yes")
    assert done.returncode == 0, done.stderr
    assert not (root / refs["squares1"]).exists()
    ambiguous = run_cli("rm", str(root), "squares/k1-", "--yes")
    assert ambiguous.returncode == 2
    assert "matches 2 artifacts" in ambiguous.stderr
    missing = run_cli("rm", str(root), "squares/k1-ffffffff", "--yes")
    assert missing.returncode == 2
    assert "No artifact matches 'squares/k1-ffffffff'" in missing.stderr
    assert sorted(p.name for p in (root / "squares").iterdir()) == sorted(
        refs[name].split("/")[1] for name in ("squares2", "squares3")
    )


def test_rm_of_an_artifact_being_regenerated_waits_or_refuses(tmp_path: Path) -> None:
    """`rm --timeout 1` while another process holds the key's lock exits 3 naming the holder; nothing is deleted."""
    root = tmp_path / "cache"
    refs = _lineage_store(root)
    script = (
        "import sys, time\n"
        "from persistable.store import LocalStore\n"
        f"store = LocalStore({str(root)!r})\n"
        f"with store.lock('squares', {refs['squares1'].split('/')[1]!r}):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        refused = run_cli("rm", str(root), refs["squares1"], "--yes", "--timeout", "1")
        assert refused.returncode == 3
        assert "Waited 1.0 s for the lock" in refused.stderr
        assert "held by" in refused.stderr
        assert (root / refs["squares1"] / "metadata.json").is_file()
    finally:
        holder.kill()
        holder.communicate()


def test_gc_needs_a_selector_and_keeps_what_is_asked(tmp_path: Path) -> None:
    """`gc` refuses to run without a selector; --keep-last and --keep-lineage-of delete the rest only with --yes."""
    root = tmp_path / "cache"
    refs = _lineage_store(root)
    bare = run_cli("gc", str(root))
    assert bare.returncode == 2
    assert "gc needs a selector" in bare.stderr
    lineage_plan = run_json("gc", str(root), "--keep-lineage-of", _short(refs["total"]))
    assert sorted(item["ref"] for item in lineage_plan["artifacts"]) == sorted(
        [refs["squares1"], refs["squares2"]]
    )
    assert lineage_plan["deleted"] == []
    assert (root / refs["squares1"]).is_dir()
    time.sleep(0.01)
    keep_last = run_json("gc", str(root), "--keep-last", "1", "-p", "squares")
    assert len(keep_last["artifacts"]) == 2
    done = run_json("gc", str(root), "--keep-lineage-of", refs["total"], "--yes")
    assert sorted(done["deleted"]) == sorted([refs["squares1"], refs["squares2"]])
    assert not (root / refs["squares1"]).exists()
    assert (root / refs["squares3"]).is_dir()
    old = run_json("gc", str(root), "--older-than", "30d")
    assert old["artifacts"] == []
    bad = run_cli("gc", str(root), "--older-than", "soon")
    assert bad.returncode == 2
    assert "is not an age" in bad.stderr


def test_gc_empties_the_quarantine_and_removes_leftovers(tmp_path: Path) -> None:
    """`gc --quarantine --leftovers --yes` removes quarantined folders and a dead writer's staging folder."""
    from persistable.artifact import Artifact
    from persistable.store._local import _host_tag

    root = tmp_path / "cache"
    refs = _lineage_store(root)
    store = make_store(str(root))
    Artifact(store, *refs["squares1"].split("/")).quarantine()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    staging = root / ".persistable" / "staging" / f"{'d' * 32}-{int(dead.stdout)}-{_host_tag()}"
    staging.mkdir(parents=True)
    plan = run_json("gc", str(root), "--quarantine", "--leftovers")
    assert len(plan["quarantine"]) == 1
    assert len(plan["leftovers"]) == 1
    assert staging.is_dir()
    done = run_json("gc", str(root), "--quarantine", "--leftovers", "--yes")
    assert len(done["quarantine"]) == 1
    assert not staging.exists()
    assert list((root / ".persistable" / "quarantine").rglob("payload.pkl")) == []


def test_du_and_graph(tmp_path: Path) -> None:
    """`du` sums sizes per payload name; `graph` draws the lineage as text, Mermaid, dot and SVG."""
    root = tmp_path / "cache"
    refs = _lineage_store(root)
    usage = run_json("du", str(root))
    assert set(usage["payload_names"]) == {"squares", "total"}
    assert usage["total"] >= sum(usage["payload_names"].values())
    text = run_cli("graph", str(root), _short(refs["total"]))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("total/")
    assert lines[1].startswith("└── squares/")
    mermaid = run_cli("graph", str(root), refs["total"], "--format", "mermaid").stdout
    assert mermaid.startswith("graph BT")
    assert "-->" in mermaid
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no Graphviz: the fallback
    svg = run_cli("graph", str(root), refs["total"], "--format", "svg", env=env).stdout
    assert svg.startswith("<svg")
    assert "squares/" in svg
    assert "total/" in svg
    graph = run_json("graph", str(root), refs["total"])
    assert graph["edges"][refs["total"]] == [refs["squares3"]]


def test_damaged_metadata_is_one_clear_sentence(tmp_path: Path) -> None:
    """`show` of an artifact whose metadata.json is not JSON exits 2 with one sentence; `ls` lists it as damaged."""
    root = tmp_path / "cache"
    refs = _lineage_store(root)
    (root / refs["squares1"] / "metadata.json").write_text("{not json")
    shown = run_cli("show", str(root), refs["squares1"])
    assert shown.returncode == 2
    assert "is not valid JSON" in shown.stderr
    assert "Traceback" not in shown.stderr
    listed = run_cli("ls", str(root))
    assert "1 damaged" in listed.stdout


def test_push_and_pull_between_a_folder_and_s3(
    tmp_path: Path, s3_bucket: tuple[str, dict[str, Any]], s3_env: dict[str, str]
) -> None:
    """`push` copies a folder's artifacts to S3 (-o endpoint), `pull` brings them into a new folder, `ls`/`verify` work on S3."""
    url, storage_options = s3_bucket
    endpoint = storage_options["client_kwargs"]["endpoint_url"]
    env = {**os.environ, **s3_env}
    option = [
        "-o",
        f"client_kwargs.endpoint_url={endpoint}",
        "-o",
        "key=testing",
        "-o",
        "secret=testing",
    ]
    root = tmp_path / "cache"
    refs = _lineage_store(root)
    pushed = run_cli("push", str(root), url, *option, "--json", env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert len(json.loads(pushed.stdout)["copied"]) == 4
    listing = run_json("ls", url, *option, env=env)
    assert sorted(f"{a['payload_name']}/{a['key']}" for a in listing["artifacts"]) == sorted(
        refs.values()
    )
    assert run_cli("verify", url, *option, env=env).returncode == 0
    again = run_json("push", str(root), url, *option, env=env)
    assert again["copied"] == []
    assert len(again["skipped"]) == 4
    pulled = run_json("pull", url, str(tmp_path / "copy"), *option, env=env)
    assert len(pulled["copied"]) == 4
    assert run_cli("verify", str(tmp_path / "copy")).returncode == 0
    graph = run_cli("graph", url, refs["total"], *option, env=env)
    assert graph.returncode == 0
    assert "squares/" in graph.stdout
    # An anonymous S3 store is read-only: rm refuses with exit code 3 and changes nothing.
    refused = run_cli(
        "rm",
        url,
        refs["squares1"],
        "--yes",
        "-o",
        f"client_kwargs.endpoint_url={endpoint}",
        "-o",
        "anon=true",
        env=env,
    )
    assert refused.returncode == 3, refused.stderr
    assert "read-only" in refused.stderr
    assert run_json("ls", url, *option, env=env)["artifacts"]
