"""``@step``: plain functions as persistable steps."""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _step_funcs import square, total
from numpy.typing import NDArray

import persistable
from persistable import NpyFileIO, Persistable, PersistableParams, step
from persistable.exceptions import DependencyError, UnhashableParamError
from persistable.steps import (
    StepDefinitionError,
    StepOutputError,
    StepPersistable,
)
from persistable.store import LocalStore

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    """A journal file the test steps append one line to per computation (``journal=str(...)``)."""
    path = tmp_path / "journal.txt"
    path.touch()
    return path


def lines(journal: Path) -> list[str]:
    return [line.rsplit(" ", 1)[0] for line in journal.read_text().splitlines()]


def test_a_call_computes_once_then_loads(local_store: LocalStore, journal: Path) -> None:
    """The second call with equal arguments loads the artifact instead of calling the function."""
    sq = square.replace(data_dir=local_store)
    j = str(journal)
    assert sq(3, journal=j) == 9
    assert sq(3, journal=j) == 9
    assert sq(x=3, journal=j) == 9
    assert lines(journal) == ["square 3"]
    assert sq.exists(3)
    assert not sq.exists(4)


def test_defaults_are_applied_before_hashing(local_store: LocalStore, journal: Path) -> None:
    """Passing a default explicitly gives the same key as leaving it out."""
    tot = total.replace(data_dir=local_store)
    assert tot.key([1, 2]) == tot.key([1, 2], offset=0) == tot.key(values=(1, 2))  # type: ignore[arg-type]
    assert tot.key([1, 2]) != tot.key([1, 2], offset=1)
    assert tot([1, 2], 5, str(journal)) == 8
    assert tot([1, 2], offset=5, journal=str(journal)) == 8
    assert lines(journal) == ["total [1, 2]"]


def test_the_key_uses_the_canonical_encoding(local_store: LocalStore) -> None:
    """1, 1.0, True and '1' are four different calls."""

    @step(data_dir=local_store, payload_name="identity")
    def identity(value: object) -> object:
        return value

    keys = {identity.key(value) for value in (1, 1.0, True, "1")}
    assert len(keys) == 4
    assert identity(1.0) == 1.0
    assert isinstance(identity(1.0), float)


def test_params_json_holds_the_arguments(local_store: LocalStore) -> None:
    """The artifact's params.json shows the arguments by parameter name."""
    tot = total.replace(data_dir=local_store)
    lazy = tot.bind([1, 2], offset=3)
    lazy.load_generate()
    assert lazy.params_tree == {"values": [1, 2], "offset": 3}
    assert lazy.payload_name == "_step_funcs.total"


def test_bound_steps_become_tracked_dependencies(local_store: LocalStore, journal: Path) -> None:
    """A bound step as an argument enters the key by its key, and the function gets its payload."""
    sq, tot = square.replace(data_dir=local_store), total.replace(data_dir=local_store)
    j = str(journal)
    upstream = [sq.bind(i, journal=j) for i in range(3)]
    lazy = tot.bind(upstream, offset=1, journal=j)
    assert isinstance(lazy, StepPersistable)
    assert lines(journal) == []  # bind computes nothing
    assert lazy.dependency_keys() == {"values": [u.persist_hash for u in upstream]}
    assert tot(upstream, offset=1, journal=j) == 0 + 1 + 4 + 1  # type: ignore[arg-type]
    assert sorted(lines(journal)) == ["square 0", "square 1", "square 2", "total [0, 1, 4]"]
    # A different upstream argument gives a different downstream key.
    assert tot.bind([sq.bind(5)], offset=1).persist_hash != lazy.persist_hash


def test_any_persistable_is_a_dependency(local_store: LocalStore) -> None:
    """A class-based Persistable passed to a step is a dependency too."""

    @dataclass
    class NParams(PersistableParams):
        n: int

    class Numbers(Persistable[list[int], NParams]):
        def _generate_payload(self, **untracked_payload_params: Any) -> list[int]:
            return list(range(self.params.n))

    tot = total.replace(data_dir=local_store)
    numbers = Numbers(local_store, NParams(n=4))
    assert tot(numbers) == 6  # type: ignore[arg-type]
    assert tot.bind(numbers).dependency_keys() == {"values": numbers.persist_hash}


def test_mixed_lists_and_dicts_of_persistables_are_refused(local_store: LocalStore) -> None:
    """A list mixing persistables and values, or a dict of persistables, is a clear error."""
    sq, tot = square.replace(data_dir=local_store), total.replace(data_dir=local_store)
    with pytest.raises(DependencyError, match="argument 'values' of total\\(\\) mixes"):
        tot.bind([sq.bind(1), 2])
    with pytest.raises(DependencyError, match="is a dict holding persistables"):
        tot.bind({"a": sq.bind(1)})


def test_run_resolves_dedups_and_resumes(local_store: LocalStore, journal: Path) -> None:
    """persistable.run computes each distinct call once, in worker processes, and resumes."""
    sq, tot = square.replace(data_dir=local_store), total.replace(data_dir=local_store)
    j = str(journal)
    one, two = sq.bind(1, journal=j), sq.bind(2, journal=j)
    targets = [tot.bind([one, two], journal=j), tot.bind([two, one], offset=0, journal=j)]
    report = persistable.run(targets, executor="processes", max_workers=2)
    assert report.ok, report
    assert sorted(lines(journal)) == ["square 1", "square 2", "total [1, 4]", "total [4, 1]"]
    again = persistable.run(targets, executor="processes", max_workers=2)
    assert again.ok
    assert len(lines(journal)) == 4
    assert tot([sq.bind(1), sq.bind(2)]) == 5  # type: ignore[list-item]


def test_untracked_arguments_stay_out_of_the_key(local_store: LocalStore) -> None:
    """An untracked argument reaches the function but does not change the key."""
    seen: list[int] = []

    @step(data_dir=local_store, payload_name="work", untracked=("n_jobs",))
    def work(x: int, n_jobs: int = 1) -> int:
        seen.append(n_jobs)
        return x + 1

    assert work.key(1, n_jobs=1) == work.key(1, n_jobs=8)
    assert work(1, n_jobs=8) == 2
    assert work(1, n_jobs=2) == 2
    assert seen == [8]
    assert work.bind(1, n_jobs=8).params_tree == {"x": 1}
    with pytest.raises(StepDefinitionError, match="'n_job', which is not a parameter of"):
        step(data_dir=local_store, payload_name="w2", untracked=("n_job",))(lambda x: x)


def test_version_and_payload_name_change_the_key(local_store: LocalStore) -> None:
    """version= and payload_name= enter the key."""

    def base(x: int) -> int:
        return x

    one = step(data_dir=local_store, payload_name="base")(base)
    two = step(data_dir=local_store, payload_name="base", version=2)(base)
    other = step(data_dir=local_store, payload_name="other")(base)
    assert len({one.key(1), two.key(1), other.key(1)}) == 3
    assert two.bind(1).key_tree()["version"] == 2


def test_payload_io(local_store: LocalStore) -> None:
    """payload_io= chooses the FileIO of the result."""

    @step(data_dir=local_store, payload_name="ramp", payload_io=NpyFileIO())
    def ramp(n: int) -> NDArray[np.float64]:
        return np.arange(n, dtype=np.float64)

    np.testing.assert_array_equal(ramp(4), np.arange(4.0))
    lazy = ramp.bind(4)
    assert lazy.payload_file == "payload.npy"
    assert lazy.metadata["payload_io"] == "npy"
    np.testing.assert_array_equal(ramp(4), np.arange(4.0))


def test_array_arguments_are_keyed_by_content(local_store: LocalStore) -> None:
    """An array argument (e.g. another step's result) is hashed by dtype, shape and bytes."""

    @step(data_dir=local_store, payload_name="mean")
    def mean(values: NDArray[np.float64]) -> float:
        return float(values.mean())

    a = np.arange(6.0)
    assert mean.key(a) == mean.key(a.copy())
    assert mean.key(a) != mean.key(a + 1)
    assert mean.key(a) != mean.key(a.reshape(2, 3))
    assert mean(a) == 2.5


def test_several_outputs_are_one_artifact(local_store: LocalStore) -> None:
    """outputs=(...) returns a named tuple, persisted as one artifact; downstream steps get it whole."""

    @step(data_dir=local_store, payload_name="stats", outputs=("mean", "std"))
    def stats(values: list[float]) -> tuple[float, float]:
        array = np.asarray(values)
        return float(array.mean()), float(array.std())

    @step(data_dir=local_store, payload_name="spread")
    def spread(moments: tuple[float, float]) -> float:
        return float(moments.std / moments.mean)  # type: ignore[attr-defined]

    result = stats([1.0, 3.0])
    assert result.mean == 2.0  # type: ignore[attr-defined]
    assert result.std == 1.0  # type: ignore[attr-defined]
    assert tuple(stats([1.0, 3.0])) == (2.0, 1.0)
    assert spread(stats.bind([1.0, 3.0])) == 0.5  # type: ignore[arg-type]
    assert stats.bind([1.0, 3.0]).payload == (2.0, 1.0)
    assert len(local_store.list_keys("stats")) == 1


def test_an_output_mismatch_is_an_error_not_a_truncation(local_store: LocalStore) -> None:
    """Returning one value (or a list) for two declared outputs raises; nothing is persisted."""

    @step(data_dir=local_store, payload_name="pair", outputs=("a", "b"))
    def pair(x: int) -> Any:
        return [x, x] if x else x

    with pytest.raises(
        StepOutputError,
        match="declares outputs=\\('a', 'b'\\) but its function returned a value of type int",
    ):
        pair(0)
    with pytest.raises(StepOutputError, match="returned a value of type list"):
        pair(3)
    assert local_store.list_keys("pair") == []
    with pytest.raises(StepDefinitionError, match="outputs=\\('mean',\\)"):
        step(data_dir=local_store, payload_name="m", outputs="mean")(square.function)


def test_lambdas_and_closures_need_a_payload_name(local_store: LocalStore) -> None:
    """A lambda or a local function has no stable identity: refused unless payload_name is given."""
    with pytest.raises(StepDefinitionError, match="is a lambda, which has no stable identity"):
        step(data_dir=local_store)(lambda x: x)

    def local(x: int) -> int:
        return x

    with pytest.raises(StepDefinitionError, match="a function defined inside a function"):
        step(data_dir=local_store)(local)
    named = step(data_dir=local_store, payload_name="double")(lambda x: 2 * x)
    assert named(4) == 8


def test_bad_definitions(local_store: LocalStore) -> None:
    """Async and generator functions, classes and unknown code_changes are refused."""

    async def coroutine() -> int:
        return 1

    def generator() -> Any:
        yield 1

    for bad in (coroutine, generator, int):
        with pytest.raises(StepDefinitionError):
            step(data_dir=local_store, payload_name="bad")(bad)
    with pytest.raises(StepDefinitionError, match="code_changes must be one of"):
        step(data_dir=local_store, payload_name="bad", code_changes="always")(square.function)  # type: ignore[arg-type]


def test_an_argument_without_encoding_names_the_parameter(local_store: LocalStore) -> None:
    """An argument that cannot be hashed names the parameter and its type, before any work."""
    tot = total.replace(data_dir=local_store)
    with pytest.raises(
        UnhashableParamError, match=r"argument 'offset' of total\(\) holds a builtins\.object"
    ):
        tot.bind([1], offset=object())
    with pytest.raises(TypeError, match="total\\(\\): missing a required argument: 'values'"):
        tot.bind()


def test_explain(local_store: LocalStore) -> None:
    """explain() says where the artifact is, or which arguments differ from the nearest one."""
    tot = total.replace(data_dir=local_store)
    assert "no other _step_funcs.total artifact" in str(tot.explain([1, 2]))
    tot([1, 2], offset=1)
    assert "The artifact of step total() key" in str(tot.explain([1, 2], offset=1))
    assert "exists at" in str(tot.explain([1, 2], offset=1))
    text = str(tot.explain([1, 2], offset=7))
    assert "params.offset: 1 -> 7" in text
    assert "values" not in text


def test_delete(local_store: LocalStore, journal: Path) -> None:
    """delete() removes one call's artifact; the next call computes again."""
    sq = square.replace(data_dir=local_store)
    sq(2, journal=str(journal))
    assert sq.delete(2) is True
    assert sq.delete(2) is False
    sq(2, journal=str(journal))
    assert lines(journal) == ["square 2", "square 2"]


def test_a_step_pickles_by_name_and_keeps_its_signature() -> None:
    """A module-level step unpickles to the same object and wraps its function's metadata."""
    assert pickle.loads(pickle.dumps(square)) is square
    assert square.__doc__ == "x squared."
    assert square.__name__ == "square"
    replaced = square.replace(data_dir="elsewhere")
    import cloudpickle

    copy = pickle.loads(cloudpickle.dumps(replaced))
    assert copy.data_dir == "elsewhere"
    assert copy.payload_name == square.payload_name
    assert dataclasses.is_dataclass(square.bind(1).params)


_MAIN_SCRIPT = """
import os, sys
from pathlib import Path
import persistable
from persistable import step

STORE = sys.argv[1]  # a module constant: the fingerprint also reads what the decorator reads

@step(data_dir=STORE, untracked=("journal",))
def shout(word: str, journal: str = "") -> str:
    with Path(journal).open("a") as handle:
        handle.write("shout " + word + "\\n")
    return word.upper() + "{suffix}"

if __name__ == "__main__":
    if len(sys.argv) > 3:
        nodes = [shout.bind(w, journal=sys.argv[2]) for w in ("a", "b", "a")]
        report = persistable.run(nodes, executor="processes")
        assert report.ok, report
    print(shout("hi", journal=sys.argv[2]))
"""


def test_main_steps_load_from_another_process(tmp_path: Path) -> None:
    """A step defined in __main__ runs in worker processes and its artifacts load from another script."""
    store, journal = tmp_path / "store", tmp_path / "journal.txt"
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text(_MAIN_SCRIPT.format(suffix="!"))
    second.write_text("# another script, the same step\n" + _MAIN_SCRIPT.format(suffix="!"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(first), str(store), str(journal), "run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    assert out.stdout.strip() == "HI!"
    assert sorted(journal.read_text().splitlines()) == ["shout a", "shout b", "shout hi"]
    out = subprocess.run(
        [sys.executable, str(second), str(store), str(journal)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    assert out.stdout.strip() == "HI!"
    assert len(journal.read_text().splitlines()) == 3  # loaded, not computed again
    assert [p.name for p in store.iterdir() if not p.name.startswith(".")] == ["shout"]


def test_a_step_runs_from_an_inline_script(tmp_path: Path) -> None:
    """A notebook-like session (code given with -c) defines a step in __main__ and calls it."""
    code = textwrap.dedent(
        f"""
        from persistable import step
        @step(data_dir={str(tmp_path / "store")!r})
        def add(a: int, b: int = 2) -> int:
            return a + b
        print(add(1), add(1, b=2), add.exists(1))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.stdout.split() == ["3", "3", "True"]


def test_fast_binding_agrees_with_signature_bind() -> None:
    """The fast path binds exactly as Signature.bind + apply_defaults, and falls back otherwise."""
    import inspect

    from persistable.steps._binding import bind_call, plain_parameters

    def plain(a: int, b: int = 2, c: str = "c") -> None: ...

    def varied(a: int, *rest: int, key: int = 0, **more: int) -> None: ...

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((1,), {}),
        ((1, 3), {}),
        ((1,), {"c": "x"}),
        ((), {"a": 1, "b": 5}),
        ((1, 2, "z"), {}),
    ]
    for function in (plain, varied):
        signature = inspect.signature(function)
        for args, kwargs in calls:
            try:
                expected = signature.bind(*args, **kwargs)
            except TypeError:
                continue
            expected.apply_defaults()
            bound = bind_call(
                signature,
                args,
                kwargs,
                step_name="f",
                untracked_names=frozenset(),
                plain=plain_parameters(signature),
            )
            assert bound.params.arguments == dict(expected.arguments)
            assert list(bound.params.arguments) == list(expected.arguments)
    signature = inspect.signature(plain)
    for args, kwargs in [((), {}), ((1,), {"a": 1}), ((1, 2, "c", 4), {}), ((1,), {"d": 1})]:
        with pytest.raises(TypeError, match=r"^f\(\): "):
            bind_call(
                signature,
                args,
                kwargs,
                step_name="f",
                untracked_names=frozenset(),
                plain=plain_parameters(signature),
            )
