"""Keys: what they cover, what they ignore, and golden digests that freeze the scheme."""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import pathlib
import runpy
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persistable import MemoryStore, Persistable, PersistableParams, untracked
from persistable._hashing import KEY_SCHEME
from persistable.exceptions import DependencyError


@dataclass
class PointsParams(PersistableParams):
    n: int
    random_state: int = 100


@dataclass
class EstimatorParams(PersistableParams):
    z_threshold: float = 3.0
    n_jobs: int = untracked(default=1)


class Shape(enum.Enum):
    ROUND = "round"


@dataclass
class Window:
    size: int
    kind: str = "hann"


@dataclass
class RichParams(PersistableParams):
    name: str
    weights: Any
    tags: frozenset[str]
    window: Window
    mapping: dict[Any, Any]
    path: pathlib.PurePath
    shape: Shape
    when: dt.datetime
    items: tuple[Any, ...] = ()
    ratio: float = float("nan")


class PointsP(Persistable[Any, PointsParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return np.random.default_rng(self.params.random_state).normal(size=self.params.n)


class VersionedPointsP(PointsP):
    version = 2


class EstimatorP(Persistable[Any, EstimatorParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return self.params.z_threshold


class RichP(Persistable[Any, RichParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return 0


def _store() -> MemoryStore:
    return MemoryStore("test-keys-never-written")


def _points(n: int = 10, **kwargs: Any) -> PointsP:
    return PointsP(_store(), PointsParams(n=n), None, **kwargs)


def _rich() -> RichP:
    params = RichParams(
        name="rich",
        weights=np.arange(6, dtype=np.float32).reshape(2, 3),
        tags=frozenset({"b", "a", "c"}),
        window=Window(5),
        mapping={3: "three", "x": [1, 2.5, None]},
        path=pathlib.PurePosixPath("data/raw/file.csv"),
        shape=Shape.ROUND,
        when=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        items=(1, "1", 1.0, True),
    )
    return RichP(_store(), params, None)


def _golden_cases() -> dict[str, Persistable[Any, Any]]:
    points = _points(10)
    versioned = VersionedPointsP(_store(), PointsParams(n=10), None)
    estimator = EstimatorP(_store(), EstimatorParams(z_threshold=2.5), [points])
    downstream = EstimatorP(
        _store(), EstimatorParams(), [estimator, versioned], payload_name="downstream"
    )
    return {
        "points": points,
        "points_other_seed": PointsP(_store(), PointsParams(n=10, random_state=7), None),
        "points_renamed": _points(10, payload_name="points.v2"),
        "versioned": versioned,
        "estimator_on_points": estimator,
        "chain_of_three": downstream,
        "rich_params": _rich(),
        "empty_dependency_list": EstimatorP(_store(), EstimatorParams(), []),
    }


#: Frozen keys. They must NEVER change without bumping KEY_SCHEME in persistable/_hashing.py:
#: a changed key silently orphans every artifact users already have.
GOLDEN_KEYS = {
    "points": "k1-a6354b922ac44e78b028e53e5911aaa45d077fb831b085ea4b0670e32d310541",
    "points_other_seed": "k1-41966b991fd66e77845fbdddd5254f20eba25eca4707e2d7deb6b954fb49697f",
    "points_renamed": "k1-5e4d6832e1081563de69ab6024ea3ed48c67bbc2ce93fbb9ae44be40e4261e0e",
    "versioned": "k1-b698a2fdf824b4267cbecefcb2a1d8cacadf4970991e03f00cdb0579292853d2",
    "estimator_on_points": "k1-8fd80a21e176fdbfe52f4e59a15544665a3f1b9032e39e8cac11c41a6c7b90af",
    "chain_of_three": "k1-8428fbd448e73dafa15cf80fdbb0fcc0a3c5a3caffae9ecfab24462efc4044f0",
    "rich_params": "k1-6c163bf277db25473dca487e62ac52540593d466df54aa7d580c259385666fdb",
    "empty_dependency_list": "k1-2122e3eee3426e98b9a99e75402d8b9a24d746b0677e18c6c12fa8b1139ee5e6",
}


def test_golden_keys_never_change() -> None:
    """Keys of representative persistables equal the frozen digests (changing them needs a KEY_SCHEME bump)."""
    assert KEY_SCHEME == 1, "KEY_SCHEME changed: recompute GOLDEN_KEYS for the new scheme"
    assert {name: p.persist_hash for name, p in _golden_cases().items()} == GOLDEN_KEYS


def test_keys_name_their_scheme_and_are_sha256() -> None:
    """A key is "k<scheme>-" followed by 64 hex digits."""
    key = _points().persist_hash
    assert key.startswith(f"k{KEY_SCHEME}-")
    assert len(key) == len(f"k{KEY_SCHEME}-") + 64
    int(key.split("-", 1)[1], 16)


# -- what the key covers --------------------------------------------------------------


def test_key_covers_params() -> None:
    """Different tracked params give different keys; equal params give equal keys."""
    assert _points(10).persist_hash == _points(10).persist_hash
    assert _points(10).persist_hash != _points(11).persist_hash


def test_key_ignores_untracked_params() -> None:
    """Changing an untracked field leaves the key unchanged."""
    one = EstimatorP(_store(), EstimatorParams(n_jobs=1), None)
    eight = EstimatorP(_store(), EstimatorParams(n_jobs=8), None)
    assert one.persist_hash == eight.persist_hash


def test_key_covers_payload_name() -> None:
    """The same params under another payload_name give another key."""
    assert _points().persist_hash != _points(payload_name="other").persist_hash


def test_key_covers_the_class_version() -> None:
    """A class `version` attribute changes the key; the same version gives the same key."""
    plain = _points()
    versioned = VersionedPointsP(_store(), PointsParams(n=10), None, payload_name="points_p")
    assert plain.payload_name == versioned.payload_name
    assert plain.persist_hash != versioned.persist_hash

    class Version3(PointsP):
        version = 3

    class AlsoVersion2(PointsP):
        version = 2

    v3 = Version3(_store(), PointsParams(n=10), None, payload_name="points_p")
    v2 = AlsoVersion2(_store(), PointsParams(n=10), None, payload_name="points_p")
    assert len({plain.persist_hash, versioned.persist_hash, v3.persist_hash}) == 3
    assert v2.persist_hash == versioned.persist_hash


def test_key_does_not_depend_on_store_io_or_class_identity() -> None:
    """The key ignores the store, the FileIO, the suffix and verbosity (same name, version and params)."""
    from persistable import JsonFileIO

    base = _points()
    other = PointsP(
        MemoryStore("test-keys-other"),
        PointsParams(n=10),
        None,
        payload_io=JsonFileIO(),
        payload_file_suffix=".data",
    )
    assert base.persist_hash == other.persist_hash


def test_key_covers_dependency_keys() -> None:
    """A change in an upstream param changes the downstream key."""
    down_10 = EstimatorP(_store(), EstimatorParams(), [_points(10)])
    down_11 = EstimatorP(_store(), EstimatorParams(), [_points(11)])
    no_dependency = EstimatorP(_store(), EstimatorParams(), None)
    assert len({down_10.persist_hash, down_11.persist_hash, no_dependency.persist_hash}) == 3


def test_key_covers_dependency_names() -> None:
    """The same upstream under another payload_name gives another downstream key."""
    first = EstimatorP(_store(), EstimatorParams(), [_points(payload_name="a")])
    second = EstimatorP(_store(), EstimatorParams(), [_points(payload_name="b")])
    assert first.persist_hash != second.persist_hash


def test_dependency_order_is_keyed_only_when_it_is_not_payload_name_order() -> None:
    """[a, b] keeps the order-free key; (b, a) is another input (code reads by position).

    See tests/test_dependency_order.py: the two orders once shared a key, and the second
    silently loaded the first one's payload.
    """
    a, b = _points(1, payload_name="a"), _points(2, payload_name="b")
    forward = EstimatorP(_store(), EstimatorParams(), [a, b])
    backward = EstimatorP(_store(), EstimatorParams(), (b, a))
    assert forward.persist_hash != backward.persist_hash
    assert "dependency_order" not in forward.key_tree()
    assert forward.params_tree == backward.params_tree


def test_duplicate_dependency_names_raise() -> None:
    """Two tracked dependencies with the same payload_name raise DependencyError naming it."""
    with pytest.raises(DependencyError, match="'points_p'"):
        EstimatorP(_store(), EstimatorParams(), [_points(1), _points(2)])


def test_non_persistable_dependency_raises() -> None:
    """A dependency that is not a Persistable raises DependencyError."""
    with pytest.raises(DependencyError, match="must hold Persistable"):
        EstimatorP(_store(), EstimatorParams(), [PointsParams(3)])  # type: ignore[list-item]


def test_key_is_built_from_upstream_keys_not_upstream_params() -> None:
    """The key tree holds upstream keys by payload name (lineage), not their params."""
    upstream = _points(5)
    tree = EstimatorP(_store(), EstimatorParams(), [upstream]).key_tree()
    assert tree["dependencies"] == {"points_p": upstream.persist_hash}
    assert tree["key_scheme"] == KEY_SCHEME


# -- properties -------------------------------------------------------------------------


@dataclass
class AnyParams(PersistableParams):
    a: Any
    b: Any = None


@dataclass
class FieldsAB(PersistableParams):
    a: int
    b: str


@dataclass
class FieldsBA(PersistableParams):
    b: str
    a: int


class AnyP(Persistable[Any, Any]):
    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return None


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
    | st.binary(max_size=10)
)
hashables = st.recursive(
    scalars.filter(lambda v: not isinstance(v, float) or v == v),  # NaN != NaN in sets
    lambda children: st.frozensets(children, max_size=3) | st.tuples(children, children),
    max_leaves=6,
)
values = st.recursive(
    scalars | st.builds(pathlib.PurePosixPath, st.text(alphabet="ab/", max_size=5)),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
        | st.dictionaries(st.integers(), children, max_size=3)
        | st.sets(hashables, max_size=4)
    ),
    max_leaves=12,
)


def _key_of(value: Any, other: Any = None) -> str:
    return AnyP(_store(), AnyParams(value, other), None, payload_name="any").persist_hash


def _shuffled_copy(value: Any, rng: np.random.Generator) -> Any:
    """An equal copy with every dict re-inserted and every set rebuilt in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        order = rng.permutation(len(items))
        return {items[i][0]: _shuffled_copy(items[i][1], rng) for i in order}
    if isinstance(value, (set, frozenset)):
        members = list(value)
        order = rng.permutation(len(members))
        return type(value)(members[i] for i in order)
    if isinstance(value, list):
        return [_shuffled_copy(item, rng) for item in value]
    return value


@settings(max_examples=150, deadline=None)
@given(value=values, seed=st.integers(0, 2**32 - 1))
def test_equal_params_give_equal_keys(value: Any, seed: int) -> None:
    """Params built equal (dicts and sets in any insertion order) always give the same key."""
    copy = _shuffled_copy(value, np.random.default_rng(seed))
    assert _key_of(value) == _key_of(copy)


def _typed(value: Any) -> Any:
    """An independent oracle: the value with its types spelled out (tuples as lists, by decision)."""
    if value is None or isinstance(value, (bool, str, bytes)):
        return (type(value).__name__, value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", "nan" if value != value else value.hex())
    if isinstance(value, pathlib.PurePath):
        return ("path", value.as_posix())
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_typed(item) for item in value))
    if isinstance(value, (set, frozenset)):
        return ("set", frozenset(_typed(item) for item in value))
    if isinstance(value, dict):
        return ("dict", frozenset((_typed(k), _typed(v)) for k, v in value.items()))
    raise AssertionError(f"no oracle for {value!r}")


#: Values that look alike in str(), repr() or JSON but are different inputs.
_LOOKALIKES: list[Any] = [0, 0.0, -0.0, False, "0", None, "None", "null", 1, 1.0, True, "1"]
_LOOKALIKES += ["true", "", b"", b"0", float("nan"), float("inf"), "nan", "inf", "__type__", "set"]
_LOOKALIKES += [pathlib.PurePosixPath("0")]
lookalikes = st.sampled_from(_LOOKALIKES)
near_values = st.recursive(
    lookalikes,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children)
        | st.dictionaries(
            st.sampled_from(["0", "1", "__type__", "items", "value"]), children, max_size=3
        )
        | st.dictionaries(st.sampled_from([0, 1, 0.5, None, "0"]), children, max_size=3)
        | st.frozensets(
            st.sampled_from([0, 1, "0", "1", 0.5, None, b"0", (0,), (1, "1")]), max_size=3
        )
    ),
    max_leaves=5,
)


@settings(max_examples=400, deadline=None)
@given(left=near_values | values, right=near_values | values)
def test_keys_are_equal_exactly_when_typed_values_are(left: Any, right: Any) -> None:
    """Two values give the same key if and only if they are equal with their types (no collision of lookalikes)."""
    assert (_key_of(left) == _key_of(right)) == (_typed(left) == _typed(right))


@settings(max_examples=100, deadline=None)
@given(left=near_values, right=near_values, other=near_values)
def test_fields_do_not_bleed_into_each_other(left: Any, right: Any, other: Any) -> None:
    """Moving content between two fields changes the key unless both fields stay equal."""
    same = _typed(left) == _typed(right)
    assert (_key_of(left, right) == _key_of(right, left)) == same
    assert (_key_of(left, other) == _key_of(right, other)) == same


@settings(max_examples=50, deadline=None)
@given(a=st.integers(), b=st.text())
def test_field_definition_order_is_irrelevant(a: int, b: str) -> None:
    """Two params classes with the same fields declared in another order give the same key."""
    ab = AnyP(_store(), FieldsAB(a=a, b=b), None, payload_name="fields")
    ba = AnyP(_store(), FieldsBA(a=a, b=b), None, payload_name="fields")
    assert ab.persist_hash == ba.persist_hash


@settings(max_examples=50, deadline=None)
@given(names=st.sets(st.text(min_size=1, max_size=8), min_size=2, max_size=10))
def test_set_iteration_order_is_irrelevant(names: set[str]) -> None:
    """A set built from its items in sorted or reversed order gives the same key."""
    ordered = sorted(names)
    assert _key_of(set(ordered)) == _key_of(set(reversed(ordered)))
    assert _key_of(frozenset(ordered)) == _key_of(set(reversed(ordered)))


# -- across processes -------------------------------------------------------------------

_SUBPROCESS_SCRIPT = textwrap.dedent(
    """
    import json
    from dataclasses import dataclass, field
    from typing import Any

    from persistable import MemoryStore, Persistable, PersistableParams

    @dataclass
    class SetParams(PersistableParams):
        names: set[str]
        frozen: frozenset[str]
        mapping: dict[str, Any]
        mixed: dict[Any, Any] = field(default_factory=dict)

    class SetP(Persistable[Any, SetParams]):
        def _generate_payload(self, **untracked_payload_params: Any) -> Any:
            return None

    names = {f"name-{i}" for i in range(40)}
    params = SetParams(
        names=names,
        frozen=frozenset({"x", "yy", "zzz", "alpha", "beta"}),
        mapping={f"key{i}": {f"inner{j}" for j in range(i)} for i in range(10)},
        mixed={("a", 1): {"s", "t"}, 3: "three", "3": frozenset({"u", "v"})},
    )
    print(json.dumps({"key": SetP(MemoryStore("x"), params, None).persist_hash, "order": list(names)}))
    """
)


def test_keys_are_identical_across_pythonhashseeds() -> None:
    """Processes with different PYTHONHASHSEED (different set iteration orders) compute the same key."""
    results = []
    for seed in ("0", "1", "42", "12345", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        completed = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        results.append(json.loads(completed.stdout))
    assert len({r["key"] for r in results}) == 1, results
    # The test is only meaningful if the seeds really changed the iteration order.
    assert len({tuple(r["order"]) for r in results}) > 1


def test_subprocess_key_equals_this_process_key(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key computed in another process equals the one computed here for the same params."""
    script = tmp_path / "key_script.py"
    script.write_text(_SUBPROCESS_SCRIPT)
    completed = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "7"},
    )
    runpy.run_path(str(script), run_name="key_script")
    here = json.loads(capsys.readouterr().out)["key"]
    assert json.loads(completed.stdout)["key"] == here


# -- untracked ClassVar on a class with a version ---------------------------------------


@dataclass
class ClassVarParams(PersistableParams):
    untracked_fields: ClassVar[tuple[str, ...]] = ("verbose_level",)
    n: int
    verbose_level: int = 0


def test_untracked_fields_classvar_is_out_of_the_key() -> None:
    """Fields named in untracked_fields do not change the key."""
    low = AnyP(_store(), ClassVarParams(1, verbose_level=0), None)
    high = AnyP(_store(), ClassVarParams(1, verbose_level=3), None)
    assert low.persist_hash == high.persist_hash
    assert low.params_tree == {"n": 1}


def test_params_field_default_factory_values_are_tracked() -> None:
    """Fields with default_factory are tracked like any other field."""

    @dataclass
    class ListParams(PersistableParams):
        items: list[int] = field(default_factory=list)

    empty = AnyP(_store(), ListParams(), None, payload_name="lists")
    full = AnyP(_store(), ListParams([1]), None, payload_name="lists")
    assert empty.persist_hash != full.persist_hash
