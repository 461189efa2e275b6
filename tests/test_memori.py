"""persistable.memori: memori's documented behaviour, and a test for each of its defects we fixed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import _stage_funcs as funcs
import pytest

from persistable.memori import Pipeline, Stage, hashable, redefine_result_key
from persistable.steps import PipelineError, StepOutputError

REPO = Path(__file__).resolve().parent.parent


# -- memori's README, with its `stage_output` typo corrected ---------------------------------


def test_function(test_func_var0: int, test_func_var1: int, test_func_var2: int) -> tuple[int, int]:
    # (the README's example function; pytest does not collect it: it takes arguments)
    test_func_var3 = test_func_var0 + test_func_var1
    test_func_var4 = test_func_var1 + test_func_var2
    return test_func_var3, test_func_var4


test_function.__test__ = False  # type: ignore[attr-defined]


def test_function2(test_func_var3: int, test_func_var4: int) -> int:
    return test_func_var3 + test_func_var4


test_function2.__test__ = False  # type: ignore[attr-defined]


def test_readme_stage_examples() -> None:
    """The README's Stage examples give the results it documents."""
    my_test_stage = Stage(test_function, stage_outputs=["test_func_var3", "test_func_var4"])
    result = my_test_stage.run(1, 2, 3)
    assert result == {"test_func_var3": 3, "test_func_var4": 5}
    result = my_test_stage.run(2, 3, 4)
    assert result == {"test_func_var3": 5, "test_func_var4": 7}

    my_test_stage2 = Stage(test_function2, stage_outputs=["test_func2_var0"])
    result2 = my_test_stage2.run(**result)
    assert result2 == {"test_func2_var0": 12}
    result2 = my_test_stage2.run(my_test_stage.run(1, 2, 3))
    assert result2 == {"test_func2_var0": 8}

    my_test_stage = Stage(
        test_function,
        stage_outputs=["test_func_var3", "test_func_var4"],
        test_func_var0=1,
        test_func_var1=2,
        test_func_var2=3,
    )
    result = my_test_stage.run(2, 3, 4)
    assert result == {"test_func_var3": 3, "test_func_var4": 5}


def test_readme_hash_output_example(tmp_path: Path) -> None:
    """With hash_output the second run loads the memoized results instead of calling the function."""
    calls: list[int] = []

    def counted(test_func_var0: int, test_func_var1: int, test_func_var2: int) -> tuple[int, int]:
        calls.append(test_func_var0)
        return test_function(test_func_var0, test_func_var1, test_func_var2)

    directory = tmp_path / "test" / "directory"

    def make() -> Stage:  # a fresh stage object, as a new process would build
        return Stage(
            counted,
            stage_outputs=["test_func_var3", "test_func_var4"],
            hash_output=str(directory),
            stage_name="test_function",
        )

    stage = make()
    assert stage.run(1, 2, 3) == {"test_func_var3": 3, "test_func_var4": 5}
    assert stage.state is True
    again = make()
    assert again.run(1, 2, 3) == {"test_func_var3": 3, "test_func_var4": 5}
    assert again.state is False
    assert again.stage_from_hash is True
    assert calls == [1]
    assert (directory / "test_function").is_dir()  # an artifact folder, not .stage/.inputs files


def test_readme_pipeline_shape_and_right_most_precedence() -> None:
    """("start", s0), (s0, s1), (s0, s2), ((s1, s2), s3): s3 gets both; the right-most source wins."""

    def s0(x: int) -> tuple[int, int]:
        return x + 1, x + 2

    def s1(a: int) -> tuple[int, str]:
        return a * 10, "from s1"

    def s2(b: int) -> tuple[int, str]:
        return b * 100, "from s2"

    def s3(c: int, d: int, tag: str) -> str:
        return f"{c} {d} {tag}"

    stage0 = Stage(s0, stage_outputs=["a", "b"])
    stage1 = Stage(s1, stage_outputs=["c", "tag"])
    stage2 = Stage(s2, stage_outputs=["d", "tag"])
    stage3 = Stage(s3, stage_outputs=["summary"])
    p = Pipeline(
        [("start", stage0), (stage0, stage1), (stage0, stage2), ((stage1, stage2), stage3)]
    )
    result = p.run(1)
    assert result["summary"] == "20 300 from s2"
    assert result == p.results
    assert {"a", "b", "c", "d", "tag", "summary"} <= set(result)


# -- memori's other documented behaviour ----------------------------------------------------


def test_file_arguments_are_keyed_by_content(tmp_path: Path) -> None:
    """A str naming an existing file is keyed by its content and its spelling: new content re-runs."""
    data = tmp_path / "in.txt"
    data.write_text("one")
    calls: list[str] = []

    def read(path: str) -> str:
        calls.append(path)
        return Path(path).read_text()

    stage = Stage(read, hash_output=tmp_path / "hashes")
    assert stage.run(str(data)) == {"output": "one"}
    assert stage.run(str(data)) == {"output": "one"}
    data.write_text("two")
    assert stage.run(str(data)) == {"output": "two"}
    assert len(calls) == 2
    copy = tmp_path / "copy.txt"
    copy.write_text("two")
    # The path counts too: a function may write its outputs next to its input.
    assert stage.run(str(copy)) == {"output": "two"}
    assert len(calls) == 3


def test_changed_output_files_rerun_the_stage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An output file deleted or changed on disk re-runs the stage, and the reason is logged."""
    out = tmp_path / "out.txt"
    calls: list[int] = []

    def write(n: int) -> str:
        calls.append(n)
        out.write_text(str(n))
        return str(out)

    stage = Stage(write, hash_output=tmp_path / "hashes")
    stage.run(3)
    stage.run(3)
    assert calls == [3]
    out.write_text("tampered")
    with caplog.at_level(logging.INFO, logger="persistable.steps._stage"):
        stage.run(3)
    assert calls == [3, 3]
    assert "output files changed" in caplog.text
    out.unlink()
    stage.run(3)
    assert calls == [3, 3, 3]
    assert out.read_text() == "3"


def ran(stage: Stage) -> bool:
    return stage.state


def test_force_flags(tmp_path: Path) -> None:
    """force_run_stage re-runs and replaces; force_skip_stage loads; force_hash_write memoizes a skip."""
    calls: list[int] = []

    def double(n: int) -> int:
        calls.append(n)
        return 2 * n

    stage = Stage(double, hash_output=tmp_path / "hashes")
    assert stage.run(1) == {"output": 2}
    assert stage.run(1, force_run_stage=True) == {"output": 2}
    assert ran(stage)
    assert calls == [1, 1]
    assert stage.run(1, force_skip_stage=True, force_run_stage=True) == {"output": 2}
    assert calls == [1, 1, 1]  # force_run_stage has precedence
    # Skipping a stage with new arguments hands back the most recent run, as memori does.
    assert stage.run(5, force_skip_stage=True) == {"output": 2}
    assert not ran(stage)
    assert calls == [1, 1, 1]
    assert not stage.persistable({"n": 5}).exists()
    stage.run(5, force_skip_stage=True, force_hash_write=True)
    assert stage.persistable({"n": 5}).exists()
    assert stage.run(5) == {"output": 2}  # what the user asked to memoize
    assert calls == [1, 1, 1]
    plain = Stage(double)
    assert plain.run(4, force_skip_stage=True) == {}
    assert plain.run(4) == {"output": 8}


def test_aliases_static_args_and_accessors() -> None:
    """Aliases name outputs twice (either direction), static args are set and removed by name."""

    def pair(a: int, b: int = 0) -> tuple[int, int]:
        return a, b

    stage = Stage(pair, stage_outputs=["x", "y"], aliases={"x_alias": "x", "y": "y_alias"}, b=5)
    assert stage.inputs == ["a", "b"]
    assert stage.outputs == ["x", "y"]
    assert stage.args == {"b": 5}
    assert stage.run(1, 2) == {"x": 1, "y": 5}
    assert stage.input_args == {"a": 1, "b": 5}
    assert stage.results == {"x": 1, "y": 5, "x_alias": 1, "y_alias": 5}
    stage.del_stage_arg("b")
    assert stage.run(1, 2) == {"x": 1, "y": 2}
    stage.set_stage_arg("a", 9)
    assert stage.run(1, 2) == {"x": 9, "y": 2}
    with pytest.raises(ValueError, match="'c' is not an argument of stage pair"):
        stage.set_stage_arg("c", 1)
    assert Stage(pair, stage_outputs="x").outputs == ["x"]
    assert hashable(pair) is pair
    assert redefine_result_key({"a": 1, "b": 2}, "a", "c") == {"c": 1, "b": 2}


def test_hash_output_setter(tmp_path: Path) -> None:
    """Setting hash_output turns memoization on for later runs."""
    calls: list[int] = []

    def one(n: int) -> int:
        calls.append(n)
        return n

    stage = Stage(one)
    assert stage.hash_output is None
    stage.hash_output = str(tmp_path / "h")
    stage.run(1)
    stage.run(1)
    assert calls == [1]


# -- memori's defects, fixed ----------------------------------------------------------------


def test_tuple_arguments_do_not_rerun_forever(tmp_path: Path) -> None:
    """A tuple argument is memoized like a list (memori's JSON made it re-run every time)."""
    calls: list[Any] = []

    def size(shape: tuple[int, int]) -> int:
        calls.append(shape)
        return shape[0] * shape[1]

    stage = Stage(size, hash_output=tmp_path)
    stage.run((2, 3))
    stage.run((2, 3))
    stage.run([2, 3])
    assert len(calls) == 1
    assert stage.results == {"output": 6}


def test_a_single_list_return_is_not_truncated(tmp_path: Path) -> None:
    """One output keeps the whole returned list (memori kept its first element)."""

    def listing() -> list[int]:
        return [1, 2, 3]

    assert Stage(listing, stage_outputs=["items"]).run() == {"items": [1, 2, 3]}
    stage = Stage(listing, stage_outputs=["items"], hash_output=tmp_path)
    stage.run()
    assert Stage(listing, stage_outputs=["items"], hash_output=tmp_path).run() == {
        "items": [1, 2, 3]
    }


def test_an_output_count_mismatch_is_an_error() -> None:
    """Two declared outputs but one value returned is a clear error, not a silent truncation."""

    def single() -> int:
        return 1

    with pytest.raises(
        StepOutputError, match="stage_outputs=\\['a', 'b'\\] but its function returned int"
    ):
        Stage(single, stage_outputs=["a", "b"]).run()


def test_inputs_do_not_leak_between_runs() -> None:
    """A run uses only its own arguments (memori kept those of the previous run)."""

    def add(a: int, b: int) -> int:
        return a + b

    stage = Stage(add)
    assert stage.run(a=1, b=2) == {"output": 3}
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'b'"):
        stage.run(a=1)


def test_the_callers_list_is_not_mutated(tmp_path: Path) -> None:
    """A list of file paths passed to a memoized stage is left as it was (memori replaced its items)."""
    files = [tmp_path / "a.txt", tmp_path / "b.txt"]
    for path in files:
        path.write_text(path.name)
    paths = [str(path) for path in files]
    nested = {"inputs": list(paths)}

    def count(paths: list[str], nested: dict[str, list[str]]) -> int:
        return len(paths) + len(nested["inputs"])

    stage = Stage(count, hash_output=tmp_path / "hashes")
    stage.run(paths, nested)
    stage.run(paths, nested)
    assert paths == [str(path) for path in files]
    assert nested == {"inputs": [str(path) for path in files]}


def test_the_pipeline_is_sorted_topologically() -> None:
    """The definition's order does not matter; a stage runs after every stage it takes input from."""
    order: list[str] = []

    def s0(x: int) -> int:
        order.append("s0")
        return x

    def s1(y: int) -> int:
        order.append("s1")
        return y + 1

    def s2(z: int) -> int:
        order.append("s2")
        return z * 2

    stage0, stage1, stage2 = (
        Stage(s0, stage_outputs=["y"]),
        Stage(s1, stage_outputs=["z"]),
        Stage(s2, stage_outputs=["w"]),
    )
    p = Pipeline([(stage1, stage2), (stage0, stage1), ("start", stage0)])
    assert p.run(3)["w"] == 8
    assert order == ["s0", "s1", "s2"]
    assert [stage.stage_name for stage in p.stages] == ["s0", "s1", "s2"]


def test_a_cycle_is_a_clear_error() -> None:
    """A definition whose stages feed each other is refused before anything runs."""

    def f(x: int) -> int:
        return x

    a, b = Stage(f, stage_name="a"), Stage(f, stage_name="b")
    with pytest.raises(PipelineError, match="cycle among the stages \\['a', 'b'\\]"):
        Pipeline([("start", a), (a, b), (b, a)])
    with pytest.raises(PipelineError, match="a source is 'start', a Stage or a tuple"):
        Pipeline([("begin", a)])
    with pytest.raises(PipelineError, match="a target is a Stage"):
        Pipeline([("start", f)])  # type: ignore[list-item]


def test_a_failed_run_is_not_memoized(tmp_path: Path) -> None:
    """A stage that raises leaves no artifact (memori's hash files could be half written)."""
    attempts: list[int] = []

    def flaky(n: int) -> int:
        attempts.append(n)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        return n

    stage = Stage(flaky, hash_output=tmp_path)
    with pytest.raises(RuntimeError, match="first attempt fails"):
        stage.run(1)
    assert stage.run(1) == {"output": 1}
    assert attempts == [1, 1]
    stage.persistable({"n": 1}).verify()  # checksummed artifact


_LOCKING_SCRIPT = """
import sys
from persistable.memori import Stage
import _stage_funcs as funcs
stage = Stage(funcs.add_pair, stage_outputs=["total", "product"], hash_output=sys.argv[1])
print(stage.run(2, 3, journal=sys.argv[2], sleep=1.0))
"""


def test_concurrent_processes_run_a_stage_once(tmp_path: Path) -> None:
    """Two processes running one stage with equal arguments call the function once (memori had no lock)."""
    journal = tmp_path / "journal"
    journal.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    command = [sys.executable, "-c", _LOCKING_SCRIPT, str(tmp_path / "hashes"), str(journal)]
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    assert [line.strip() for line in outputs] == ["{'total': 5, 'product': 6}"] * 2
    assert len(funcs.read_journal(str(journal))) == 1


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_independent_stages_run_in_parallel_through_the_runner(
    tmp_path: Path, executor: str
) -> None:
    """Memoized stages of one level run through persistable.run's executors; results are memori's."""
    journal = str(tmp_path / "journal")
    os.mkdir(journal)
    hashes = tmp_path / "hashes"
    common: dict[str, Any] = {"hash_output": hashes, "journal": journal}
    start = Stage(funcs.add_pair, stage_outputs=["total", "product"], **common)
    branch_left = Stage(funcs.left, stage_outputs=["left_value"], **common)
    branch_right = Stage(funcs.right, stage_outputs=["right_value"], **common)
    end = Stage(funcs.join, stage_outputs=["joined"], **common)
    definition = [
        ("start", start),
        (start, branch_left),
        (start, branch_right),
        ((branch_left, branch_right), end),
    ]
    p = Pipeline(definition, executor=executor, max_workers=2)
    assert p.run(2, 3)["joined"] == 6 + 60
    entries = funcs.read_journal(journal)
    assert sorted(line.split()[0] for line in entries) == ["add_pair", "join", "left", "right"]
    if executor == "processes":
        pids = {line.split()[-1] for line in entries if line.split()[0] in ("left", "right")}
        assert str(os.getpid()) not in pids
    again = Pipeline(definition, executor=executor)
    assert again.run(2, 3)["joined"] == 66
    assert len(funcs.read_journal(journal)) == 4


def test_equal_contents_under_two_names_do_not_share_results(tmp_path: Path) -> None:
    """A stage naming its output after its input gives each input its own output (memori shared them)."""

    def convert(path: str) -> str:
        out = path + ".out"
        Path(out).write_text(Path(path).read_text().upper())
        return out

    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("same")
    second.write_text("same")
    stage = Stage(convert, hash_output=tmp_path / "hashes")
    assert stage.run(str(first)) == {"output": f"{first}.out"}
    assert stage.run(str(second)) == {"output": f"{second}.out"}
    assert Path(f"{second}.out").read_text() == "SAME"
