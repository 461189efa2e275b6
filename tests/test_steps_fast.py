"""The cached-call shortcuts of ``@step`` give exactly what the slow path gives."""

from __future__ import annotations

from typing import Any

import pytest

from persistable import JsonFileIO, step
from persistable.steps import StepParams, StepPersistable
from persistable.steps._binding import BoundCall, bind_call
from persistable.steps._call_keys import MAX_TEXT, memo_entry
from persistable.store import LocalStore


def echo(value: Any, tag: str = "t") -> list[Any]:
    """The argument back, with its type name (tells 1, 1.0 and True apart)."""
    return [type(value).__name__, repr(value), tag]


def _comparable(persistable: StepPersistable[Any]) -> dict[str, Any]:
    state = dict(persistable.__dict__)
    state["payload_io"] = type(state["payload_io"])  # a fresh PickleFileIO per constructor
    return state


@pytest.mark.parametrize("payload_io", [None, JsonFileIO()])
def test_a_copied_call_equals_a_constructed_one(local_store: LocalStore, payload_io: Any) -> None:
    """``_like`` makes the object ``__init__`` makes, attribute by attribute.

    If the core's constructor ever sets something that depends on the params, the
    copy would carry the prototype's value and this comparison fails.
    """
    echo_step = step(data_dir=local_store, payload_name="echo", payload_io=payload_io)(echo)
    echo_step(5)  # builds the prototype
    assert echo_step._prototype is not None
    prototype = echo_step._prototype[1]
    for args in [(5,), (6, "u"), ("text",), ([1, 2],), ({"a": [1]},)]:
        call = bind_call(
            echo_step.signature,
            args,
            {},
            step_name="echo",
            untracked_names=frozenset(),
            plain=echo_step._plain,
        )
        copied = echo_step._bind(args, {})
        built = StepPersistable(echo_step, BoundCall(call.params))
        assert type(copied) is StepPersistable
        assert _comparable(copied) == _comparable(built) | {"params": copied.params}
        assert copied.params == built.params
        assert copied.persist_hash == built.persist_hash
        assert (
            copied.tracked_persistable_dependencies
            is not prototype.__dict__["tracked_persistable_dependencies"]
        )
    assert echo_step._prototype[1] is prototype  # built once, not per call


def test_remembered_keys_equal_hashed_keys_and_tell_atoms_apart(local_store: LocalStore) -> None:
    """1, 1.0, True, 0.0, -0.0, None, "1" and a long text: each its own key, each the hashed one."""
    echo_step = step(data_dir=local_store, payload_name="echo")(echo)
    values: list[Any] = [1, 1.0, True, 0, 0.0, -0.0, False, None, "1", "x" * (MAX_TEXT + 1)]
    values += [float("nan"), float("inf"), 2**80, "é"]
    keys = []
    for value in values:
        hashed = echo_step.bind(value).persist_hash  # bind() never uses the memo
        assert echo_step.key(value) == hashed  # first: computed and remembered
        assert echo_step.key(value) == hashed  # second: remembered
        keys.append(hashed)
        result = echo_step(value)
        assert result == echo(value), value  # the right payload for the key
        assert echo_step(value) == echo(value), value
    assert len(set(keys)) == len(values)


def test_only_plain_atoms_are_remembered() -> None:
    """Containers, subclasses and long texts are hashed on every call."""

    def entry(value: Any) -> object:
        return memo_entry(StepParams(arguments={"v": value}, tracked=("v",)))

    assert entry(3) == (("v", int, 3),)
    assert entry(-0.0) != entry(0.0)
    assert entry(True) != entry(1)
    for value in ([1], (1,), {"a": 1}, "x" * (MAX_TEXT + 1), b"x", 1j):
        assert entry(value) is None, value

    class Text(str):
        pass

    assert entry(Text("a")) is None
    # Untracked arguments are not part of the entry.
    assert memo_entry(StepParams(arguments={"v": 1, "n": [1]}, tracked=("v",))) == (("v", int, 1),)


def test_changing_a_step_option_forgets_remembered_keys(local_store: LocalStore) -> None:
    """version, payload_name and code_changes assigned on a step give the keys hashing gives."""
    echo_step = step(data_dir=local_store, payload_name="echo")(echo)
    first = echo_step.key(7)
    echo_step.version = 2
    assert echo_step.key(7) == echo_step.bind(7).persist_hash != first
    echo_step.version = "2"  # another type, another encoding
    assert echo_step.key(7) == echo_step.bind(7).persist_hash
    echo_step.payload_name = "echo2"
    renamed = echo_step._bind((7,), {})
    assert renamed.payload_name == "echo2"
    assert echo_step.key(7) == echo_step.bind(7).persist_hash
    assert echo_step(7) == echo(7)
    assert local_store.has_artifact("echo2", echo_step.key(7))
    echo_step.code_changes = "ignore"
    assert echo_step.key(7) == echo_step.bind(7).persist_hash
    assert echo_step._bind((7,), {}).code_changes == "ignore"
    echo_step.payload_io = JsonFileIO()
    assert isinstance(echo_step._bind((7,), {}).payload_io, JsonFileIO)
    echo_step.payload_io = None
    assert type(echo_step._bind((7,), {}).payload_io).__name__ == "PickleFileIO"


def test_a_remembered_key_is_dropped_once_anything_is_assigned(local_store: LocalStore) -> None:
    """The key handed to a call is used only while no params or identity attribute changed."""
    echo_step = step(data_dir=local_store, payload_name="echo")(echo)
    echo_step.key(1)
    call = echo_step._keyed((1,), {})
    assert call._known_key is not None
    call.params = StepParams(arguments={"value": 2, "tag": "t"}, tracked=("value", "tag"))
    assert call.persist_hash == echo_step.bind(2).persist_hash


def test_the_memo_identity_covers_the_whole_key_tree(local_store: LocalStore) -> None:
    """The key tree of a plain call holds the params and the options the memo identity lists.

    Should the core add an entry to key trees, this fails: add what it depends on to the
    identity in ``Step._keyed`` too, or a remembered key could outlive it.
    """
    echo_step = step(data_dir=local_store, payload_name="echo", version=3)(echo)
    tree = echo_step.bind(1).key_tree()
    assert set(tree) == {"key_scheme", "payload_name", "params", "dependencies", "version", "code"}
    assert tree["dependencies"] == {}
    assert tree["code"] == echo_step.fingerprint().digest
    assert set(echo_step.replace(code_changes="warn").bind(1).key_tree()) == set(tree) - {"code"}


def test_step_params_of_equals_the_constructor() -> None:
    """``StepParams.of`` (no epoch bumps) gives the object the dataclass constructor gives."""
    made = StepParams(arguments={"v": 1}, tracked=("v",), step_name="echo")
    fast = StepParams.of({"v": 1}, ("v",), "echo")
    assert fast == made
    assert fast.__dict__ == made.__dict__
    assert fast.to_dict() == made.to_dict() == {"v": 1}
