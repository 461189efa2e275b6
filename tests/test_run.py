"""The runner: resolve (dedup, order, cycles, pruning), executors, failures, resume, Ctrl-C, map."""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from _run_nodes import Step, StepParams, journal_counts, journal_pids, step

import persistable
from persistable import LocalStore, MemoryStore, grid, run
from persistable.exceptions import DependencyError, RunError, StoreConfigurationError
from persistable.run import RunReport, resolve
from persistable.run._executors import dumps_node, execute_task

TESTS_DIR = Path(__file__).resolve().parent
POOLS = ["serial", "threads", "processes"]


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    """A folder where every generation drops one file."""
    path = tmp_path / "journal"
    path.mkdir()
    return path


def diamond(store: LocalStore, journal: Path, n: int) -> list[Step]:
    """``n`` targets, each with its own (equal) upstream object: one shared upstream node."""
    return [
        step(store, f"leaf{i}", step(store, "root", journal=str(journal)), payload_name="leaf",
             value=i, journal=str(journal))
        for i in range(n)
    ]  # fmt: skip


def test_resolve_merges_equal_upstreams_into_one_node(local_store: LocalStore) -> None:
    """Fifty targets whose upstream objects have one key resolve to fifty-one nodes."""
    targets = diamond(local_store, local_store.root, 50)
    graph = resolve(targets)
    assert len(graph.nodes) == 51
    assert [node.payload_name for node in graph.nodes].count("root") == 1
    root = graph.nodes[0]
    assert root.payload_name == "root"
    assert len(root.downstream) == 50


def test_resolve_orders_upstream_first(local_store: LocalStore) -> None:
    """Every node comes after all of its upstream nodes, whatever the target order."""
    a = step(local_store, "a")
    b = step(local_store, "b", a)
    c = step(local_store, "c", a, b)
    d = step(local_store, "d", c)
    e = step(local_store, "e", b, d)
    graph = resolve([e, d, c])
    position = {node.payload_name: index for index, node in enumerate(graph.nodes)}
    assert sorted(position) == ["a", "b", "c", "d", "e"]
    for node in graph.nodes:
        for upstream in node.upstream:
            assert position[upstream.payload_name] < position[node.payload_name]
    assert {node.payload_name for node in graph.targets} == {"c", "d", "e"}


def test_cycle_is_reported_with_its_members(local_store: LocalStore) -> None:
    """A cycle made by mutating tracked dependencies raises DependencyError naming the loop."""
    a = step(local_store, "a")
    b = step(local_store, "b", a)
    c = step(local_store, "c", b)
    a.tracked_persistable_dependencies.append(c)
    with pytest.raises(
        DependencyError, match=r"cycle: Step\('c'.* -> Step\('b'.* -> Step\('a'.* -> Step\('c'"
    ):
        run([c])


def test_self_dependency_is_a_cycle(local_store: LocalStore) -> None:
    """A persistable listed in its own dependencies is a cycle of one."""
    a = step(local_store, "a")
    a.tracked_persistable_dependencies.append(a)
    with pytest.raises(DependencyError, match="cycle"):
        resolve([a])


def test_non_persistable_dependency_is_rejected(local_store: LocalStore) -> None:
    """Something that is not a Persistable among the dependencies raises a DependencyError."""
    a = step(local_store, "a")
    a.tracked_persistable_dependencies.append("oops")  # type: ignore[arg-type]
    with pytest.raises(DependencyError, match="must hold Persistable instances"):
        resolve([a])
    with pytest.raises(DependencyError, match="expects Persistable targets"):
        resolve(["oops"])  # type: ignore[list-item]


def test_committed_nodes_are_loaded_and_their_upstream_is_not_visited(
    local_store: LocalStore, journal: Path
) -> None:
    """A committed target is reported loaded and its missing upstream is not regenerated."""
    a = step(local_store, "a", journal=str(journal))
    b = step(local_store, "b", a, journal=str(journal))
    first = run([b])
    assert [(r.payload_name, r.status) for r in first] == [("a", "generated"), ("b", "generated")]
    local_store.remove_dir(a.artifact_dir)
    second = run([b])
    assert [(r.payload_name, r.status) for r in second] == [("b", "loaded")]
    assert journal_counts(journal) == {"a.a": 1, "b.b": 1}
    assert b.payload == 0


@pytest.mark.parametrize("executor", POOLS)
def test_each_node_is_generated_once(executor: str, local_store: LocalStore, journal: Path) -> None:
    """A shared upstream and every target are generated exactly once, dependencies first."""
    targets = diamond(local_store, journal, 12)
    report = run(targets, executor=executor, max_workers=2, progress=False)
    assert report.ok
    assert len(report.generated) == 13
    counts = journal_counts(journal)
    assert counts.pop("root.root") == 1
    assert counts == {f"leaf.leaf{i}": 1 for i in range(12)}
    assert [t.payload for t in targets] == list(range(12))
    pids = journal_pids(journal)
    if executor == "processes":
        assert os.getpid() not in pids
    else:
        assert pids == {os.getpid()}
    assert all(result.duration_s is not None for result in report)


def failing_graph(store: LocalStore, journal: Path, flag: Path) -> list[Step]:
    """root -> bad -> bad_child, root -> good -> good_child, and an independent node."""
    kw: dict[str, Any] = {"journal": str(journal)}
    root = step(store, "root", **kw)
    bad = step(store, "bad", root, fail_if_exists=str(flag), **kw)
    bad_child = step(store, "bad_child", bad, **kw)
    good_child = step(store, "good_child", step(store, "good", root, **kw), **kw)
    return [bad_child, good_child, step(store, "alone", **kw)]


@pytest.mark.parametrize("executor", POOLS)
def test_failure_skips_dependents_and_keeps_independent_work(
    executor: str, local_store: LocalStore, journal: Path, tmp_path: Path
) -> None:
    """A failing node's dependents are skipped, the rest is committed, the report has the traceback."""
    flag = tmp_path / "fail"
    flag.touch()
    targets = failing_graph(local_store, journal, flag)
    report = run(targets, executor=executor, max_workers=2, progress=False)
    status = {r.payload_name: r.status for r in report}
    assert status == {
        "root": "generated",
        "bad": "failed",
        "bad_child": "skipped",
        "good": "generated",
        "good_child": "generated",
        "alone": "generated",
    }
    [failure] = report.failed
    assert failure.error == "ValueError: boom in bad"
    assert failure.traceback is not None
    assert "_generate_payload" in failure.traceback
    assert report.skipped[0].reason == f"upstream {failure.label} failed"
    assert not report.ok
    assert not targets[0].exists()
    assert not local_store.list_keys("bad")
    text = str(report)
    assert "FAILED bad[" in text
    assert "ValueError: boom in bad" in text
    assert "_generate_payload" in text


def test_rerun_resumes_only_failed_and_skipped_nodes(
    local_store: LocalStore, journal: Path, tmp_path: Path
) -> None:
    """Rerunning the same call after fixing the cause generates only what failed or was skipped."""
    flag = tmp_path / "fail"
    flag.touch()
    targets = failing_graph(local_store, journal, flag)
    run(targets, progress=False)
    flag.unlink()
    report = run(targets, progress=False)
    assert {r.payload_name: r.status for r in report} == {
        "root": "loaded",
        "bad": "generated",
        "bad_child": "generated",
        "good_child": "loaded",
        "alone": "loaded",
    }
    counts = journal_counts(journal)
    assert counts.pop("bad.bad") == 2  # failed once, then generated
    assert set(counts.values()) == {1}
    assert report.ok


def test_raise_on_failure_raises_run_error_with_report(
    local_store: LocalStore, journal: Path, tmp_path: Path
) -> None:
    """raise_on_failure=True raises RunError carrying the report after independent work is done."""
    flag = tmp_path / "fail"
    flag.touch()
    targets = failing_graph(local_store, journal, flag)
    with pytest.raises(
        RunError, match=r"1 of 6 nodes failed, first bad\[.*ValueError: boom"
    ) as info:
        run(targets, raise_on_failure=True)
    report = info.value.report
    assert isinstance(report, RunReport)
    assert targets[2].exists()


def test_processes_refuse_a_memory_store(memory_store: MemoryStore) -> None:
    """A memory store cannot reach worker processes: a clear error before anything runs."""
    with pytest.raises(StoreConfigurationError, match="worker processes cannot see"):
        run([step(memory_store, "a")], executor="processes")
    assert not memory_store.list_payload_names()


def test_threads_work_on_a_memory_store(memory_store: MemoryStore) -> None:
    """Threads share the process's memory store."""
    targets = [step(memory_store, f"n{i}", step(memory_store, "up"), payload_name="n", value=i)
               for i in range(5)]  # fmt: skip
    report = run(targets, executor="threads", max_workers=2)
    assert len(report.generated) == 6
    assert [t.payload for t in targets] == list(range(5))


def test_memory_store_pickles_within_a_process_only(memory_store: MemoryStore) -> None:
    """A pickled memory store reattaches by name here and fails clearly in another process."""
    data = pickle.dumps(memory_store)
    again = pickle.loads(data)
    assert isinstance(again, MemoryStore)
    assert again.files is memory_store.files
    code = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"
    done = subprocess.run(
        [sys.executable, "-c", code], input=data, capture_output=True, check=False
    )
    assert done.returncode == 1
    assert b"StoreConfigurationError" in done.stderr
    assert b"lives in the memory of process" in done.stderr


def test_a_node_that_cannot_unpickle_in_a_worker_fails_alone(memory_store: MemoryStore) -> None:
    """A node whose pickle fails in the worker process comes back failed, the pool survives."""
    task = dumps_node(step(memory_store, "a"))
    with concurrent.futures.ProcessPoolExecutor(1) as pool:
        outcome = pool.submit(execute_task, task, "a", "k1-0").result()
        assert outcome.status == "failed"
        assert outcome.error is not None
        assert outcome.error.startswith("StoreConfigurationError: The store 'memory://")
        assert outcome.worker is not None
        assert outcome.worker.endswith(f":{pool.submit(os.getpid).result()}")


def test_a_worker_computing_another_key_fails_the_node(local_store: LocalStore) -> None:
    """A node whose key differs in the worker (another environment) fails instead of writing."""
    node = step(local_store, "a")
    outcome = execute_task(dumps_node(node), "a", "k1-" + "0" * 64)
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith(f"KeyMismatchError: a has key {node.persist_hash} in worker")
    assert not node.exists()


def test_resolve_handles_chains_deeper_than_the_recursion_limit(local_store: LocalStore) -> None:
    """Keys are hashed upstream first, once each, so a 3,000-node chain resolves without recursing."""
    node = step(local_store, "n0")
    for i in range(1, 3000):
        node = step(local_store, f"n{i}", node)
    graph = resolve([node])
    assert len(graph.to_run) == 3000
    assert graph.nodes[0].payload_name == "n0"


def test_local_store_pickles_to_the_same_folder(local_store: LocalStore) -> None:
    """A pickled local store points at the same folder with the same flags."""
    again = pickle.loads(pickle.dumps(LocalStore(local_store.root, read_only=True)))
    assert isinstance(again, LocalStore)
    assert again.root == local_store.root
    assert again.read_only


def test_a_user_executor_is_used_and_left_running(local_store: LocalStore) -> None:
    """A concurrent.futures executor passed in runs the nodes and is not shut down."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        report = run([step(local_store, "a"), step(local_store, "b")], executor=pool)
        assert report.executor == "ThreadPoolExecutor"
        assert len(report.generated) == 2
        assert pool.submit(lambda: 1).result() == 1


def test_unknown_executor_and_bad_max_workers_are_rejected(local_store: LocalStore) -> None:
    """An unknown executor name or a non-positive max_workers raises ValueError."""
    with pytest.raises(ValueError, match="executor must be one of 'serial'"):
        run([step(local_store, "a")], executor="gpu")
    with pytest.raises(ValueError, match="max_workers must be a positive int"):
        run([step(local_store, "a")], executor="threads", max_workers=0)


def test_a_single_target_and_nothing_to_do(local_store: LocalStore) -> None:
    """One persistable may be passed alone; a second run has nothing to generate."""
    a = step(local_store, "a", value=3)
    assert run(a).generated[0].payload_name == "a"
    again = run(a, executor="processes")
    assert again.executor == "processes"
    assert [r.status for r in again] == ["loaded"]
    assert a.payload == 3


def test_progress_bar_shows_on_request_and_by_size(
    local_store: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """progress=True draws a bar, False never does, None draws one above a few nodes."""
    run([step(local_store, "a")], progress=True)
    assert "persistable.run" in capsys.readouterr().err
    run([step(local_store, "b")], progress=False)
    run([step(local_store, f"c{i}") for i in range(3)])
    assert capsys.readouterr().err == ""
    run([step(local_store, f"d{i}") for i in range(8)])
    err = capsys.readouterr().err
    assert "persistable.run" in err
    assert "8/8" in err


def test_report_text_and_html_tables(local_store: LocalStore, journal: Path) -> None:
    """The report prints one row per payload_name with counts and renders an HTML table."""
    targets = diamond(local_store, journal, 3)
    run(targets[:1])
    report = run(targets)
    lines = str(report).splitlines()
    assert lines[0].startswith("persistable.run: 4 nodes in ")
    assert lines[2].split() == [
        "payload_name",
        "generated",
        "loaded",
        "skipped",
        "failed",
        "time",
        "(s)",
    ]
    rows = {line.split()[0]: line.split()[1:5] for line in lines[4:] if line and line[0] != "-"}
    assert rows["leaf"] == ["2", "1", "0", "0"]
    assert rows["root"] == ["0", "1", "0", "0"]
    assert rows["total"] == ["2", "2", "0", "0"]
    assert report.counts()["leaf"]["generated"] == 2
    assert repr(report).startswith("RunReport(generated=2, loaded=2, skipped=0, failed=0")
    page = report._repr_html_()
    assert "<table>" in page
    assert "<th>payload_name</th>" in page
    assert '<td style="text-align:left">leaf</td>' in page


def test_map_builds_one_persistable_per_params_on_one_store(tmp_path: Path) -> None:
    """Persistable.map with a grid, shared, per-item and callable dependencies, then run."""
    up = step(tmp_path, "up", value=100)
    params = [StepParams(**p) for p in grid(name=["x", "y"], value=[1, 2, 3])]
    assert [(p.name, p.value) for p in params][:3] == [("x", 1), ("x", 2), ("x", 3)]
    shared = Step.map(params, data_dir=tmp_path / "s", tracked_persistable_dependencies=[up],
                      payload_name="mapped")  # fmt: skip
    assert len(shared) == 6
    assert len({id(p.store) for p in shared}) == 1
    assert len({p.persist_hash for p in shared}) == 6
    per_item = Step.map(params[:2], tmp_path / "s", [[up], []], payload_name="mapped")
    assert per_item[1].tracked_persistable_dependencies == []
    by_function = Step.map(params, tmp_path / "s", lambda p: [up] if p.value > 1 else [],
                           payload_name="mapped")  # fmt: skip
    report = run([*shared, *per_item, *by_function])
    assert len(report) == 10  # up, 6 with up, x/2 alone, x/1 and y/1 alone: the rest dedupe
    assert sorted(p.payload for p in shared) == [101, 101, 102, 102, 103, 103]
    with pytest.raises(DependencyError, match="got 1 dependency entries for 6 params"):
        Step.map(params, tmp_path, [[up]])


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_ctrl_c_stops_scheduling_and_leaves_no_partial_artifact(
    executor: str, tmp_path: Path
) -> None:
    """Ctrl-C lets running nodes finish, skips the rest, raises RunInterrupted; a rerun completes."""
    journal = tmp_path / "journal"
    journal.mkdir()
    script = tmp_path / "interrupted.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        from _run_nodes import step
        from persistable import run
        from persistable.exceptions import RunInterrupted

        if __name__ == "__main__":  # process pools start workers that import this script
            targets = [step({str(tmp_path / "store")!r}, f"n{{i}}", payload_name="n",
                            journal={str(journal)!r}, sleep=float(sys.argv[1])) for i in range(8)]
            try:
                report = run(targets, executor={executor!r}, max_workers=2, progress=False)
            except RunInterrupted as interrupted:
                print(interrupted.report)
                print("GENERATED", len(interrupted.report.generated))
                sys.exit(3)
            print(report)
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    child = subprocess.Popen(
        [sys.executable, str(script), "0.8"],
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C signals
        # A background test runner ignores SIGINT and its children inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(list(journal.iterdir())) < 2 and time.monotonic() < deadline:  # both running
        time.sleep(0.02)
    os.killpg(child.pid, signal.SIGINT)  # the whole group, pool workers included
    out, err = child.communicate(timeout=60)
    assert child.returncode == 3, err
    assert "(interrupted)" in out
    generated = int(out.split("GENERATED ")[1])
    # Every node that had started when Ctrl-C came finishes and is committed (a loaded
    # machine may deliver the signal after a third or fourth node started; a process pool
    # may also run the one call it had queued); nothing else starts.
    started = sum(journal_counts(journal).values())
    assert 2 <= generated == started < 8
    assert f"skipped {8 - generated}: the run was interrupted" in out
    store = LocalStore(tmp_path / "store")
    assert len(store.list_keys("n")) == generated
    assert not store.list_dir(".persistable/staging")
    rerun = subprocess.run(
        [sys.executable, str(script), "0"], env=env, capture_output=True, text=True, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    assert len(store.list_keys("n")) == 8
    assert sum(journal_counts(journal).values()) == 8


def test_run_is_exported_at_top_level() -> None:
    """persistable.run is the function and RunReport / grid are public names."""
    assert persistable.run is run
    assert {"run", "RunReport", "grid"} <= set(persistable.__all__)


def test_pipeline_example_generates_then_loads(tmp_path: Path) -> None:
    """The select -> normalize -> project -> dataset example generates everything once in one run, then only loads."""
    script = TESTS_DIR.parent / "examples" / "pipeline_select_normalize_project.py"
    command = [sys.executable, str(script), str(tmp_path / "data")]
    first = subprocess.run(command, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    # 6 cells x (select, normalize, project) + the dataset step, in one run.
    assert "pipeline: generated 19, loaded 0, failed 0" in first.stdout
    assert "Manifest of 6 cells" in first.stdout
    second = subprocess.run(command, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    assert "pipeline: generated 0, loaded 1, failed 0" in second.stdout


@pytest.mark.s3
@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_run_on_s3_generates_once_and_resumes(
    executor: str, s3_bucket: tuple[str, dict[str, Any]], journal: Path
) -> None:
    """Workers write straight to S3, each node once; a rerun checks existence in parallel and loads."""
    url, options = s3_bucket
    store = persistable.make_store(url, storage_options=options)
    root = step(store, "root", journal=str(journal))
    targets = [step(store, f"leaf{i}", root, payload_name="leaf", value=i, journal=str(journal))
               for i in range(8)]  # fmt: skip
    report = run(targets, executor=executor, max_workers=2)
    assert report.ok, str(report)
    assert len(report.generated) == 9
    assert journal_counts(journal) == {"root.root": 1} | {f"leaf.leaf{i}": 1 for i in range(8)}
    assert len(store.list_keys("leaf")) == 8
    assert [r.status for r in run(targets, executor=executor)] == ["loaded"] * 8
    fresh = persistable.make_store(url, storage_options=options)
    assert [step(fresh, f"leaf{i}", step(fresh, "root"), payload_name="leaf", value=i).payload
            for i in range(8)] == list(range(8))  # fmt: skip
