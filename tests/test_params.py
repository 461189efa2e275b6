"""Canonical encoding of params: typed, deterministic, and loud about what it cannot encode."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import pathlib
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest

from persistable import Persistable, PersistableParams, untracked
from persistable._hashing import canonical_json, key_from_tree
from persistable.exceptions import InvalidParamsError, UnhashableParamError
from persistable.params import encode_value, register_encoder


def _key(value: Any) -> str:
    return key_from_tree(encode_value(value))


def _distinct(*values: Any) -> None:
    keys = [_key(value) for value in values]
    assert len(set(keys)) == len(keys), dict(zip(map(repr, values), keys, strict=False))


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1


class Perm(enum.Flag):
    R = 1
    W = 2
    X = 4


# -- scalars ------------------------------------------------------------------------


def test_one_float_bool_and_string_one_all_differ() -> None:
    """1, 1.0, True and "1" give four different keys (and 0, 0.0, False, "0", None too)."""
    _distinct(1, 1.0, True, "1", np.float32(1.0) + 0.5)
    _distinct(0, 0.0, False, "0", None, "")


def test_negative_zero_differs_from_zero_deterministically() -> None:
    """-0.0 and 0.0 encode differently, and each always the same way."""
    assert _key(-0.0) != _key(0.0)
    assert _key(-0.0) == _key(float("-0.0")) == _key(np.float64(-0.0))


def test_nan_and_infinities_are_deterministic_and_distinct() -> None:
    """NaN (whatever its payload bits), inf and -inf each have one encoding, all distinct."""
    other_nan = float(np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(), np.float64)[0])
    assert _key(float("nan")) == _key(np.nan) == _key(other_nan) == _key(np.float64("nan"))
    _distinct(float("nan"), float("inf"), float("-inf"), "nan", "inf")
    assert _key(float("inf")) == _key(np.inf) == _key(1e400)


def test_floats_survive_json_exactly() -> None:
    """A float's encoding is its shortest exact repr, so 0.1+0.2 and 0.3 differ."""
    _distinct(0.1 + 0.2, 0.3)
    assert canonical_json(encode_value(0.1)) == b"0.1"


def test_canonical_json_is_the_bytes_of_json_dumps_and_its_errors() -> None:
    """canonical_json (the C encoder built once) writes what json.dumps writes, and refuses alike."""
    trees: list[Any] = [
        {"b": [1, 2.5, {"z": None, "a": "\u00e9\ud800"}], "a": True, "c": -0.0, "d": 1e300},
        {"big": 12345678901234567890, "esc": '"\\\n\t\x00', "t": (1, "x"), "e": {}, "l": []},
        "text",
        7,
        None,
        [0.1, 1e-320, 3],
    ]
    for tree in trees:
        expected = json.dumps(
            tree, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8", "surrogatepass")
        assert canonical_json(tree) == expected
    cycle: list[Any] = []
    cycle.append(cycle)
    for bad, error in (
        ({"a": float("nan")}, ValueError),
        ({"a": object()}, TypeError),
        ({1: "x", "a": 2}, TypeError),
        (cycle, ValueError),
    ):
        with pytest.raises(error):
            canonical_json(bad)


def test_numpy_scalars_that_are_python_numbers_equal_the_python_number() -> None:
    """np.float64(0.5) is 0.5, np.complex128 is complex and np.str_("a") is "a": they subclass the Python type."""
    assert _key(np.float64(0.5)) == _key(0.5)
    assert _key(np.str_("a")) == _key("a")
    assert _key(np.complex128(1 + 2j)) == _key(1 + 2j)


def test_numpy_scalars_with_their_own_arithmetic_keep_their_dtype() -> None:
    """np.uint8(255) + 1 is 0 where 255 + 1 is 256: such a scalar never shares a key with the Python number."""
    _distinct(
        3, np.int64(3), np.int32(3), np.uint8(3), np.int8(3), 3.0, np.float32(3.0), np.float16(3.0)
    )
    _distinct(True, np.bool_(True), 1, np.int64(1))
    _distinct(np.complex64(1 + 2j), 1 + 2j)
    assert _key(np.uint8(3)) == _key(np.uint8(3)) != _key(np.uint8(4))
    assert _key(np.float32(0.5)) == _key(np.float32(0.5))


def test_a_uint8_param_never_loads_the_payload_of_the_int(tmp_path: pathlib.Path) -> None:
    """The payload computed from threshold=np.uint8(255) (255 + 1 wraps to 0) is not returned for threshold=255."""

    @dataclasses.dataclass
    class ThresholdParams(PersistableParams):
        threshold: int

    class Shifted(Persistable[int, ThresholdParams]):
        def _generate_payload(self, **untracked_payload_params: Any) -> int:
            with np.errstate(over="ignore"):
                return int(self.params.threshold + 1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy scalar overflow
        wrapped = Shifted(tmp_path, ThresholdParams(np.uint8(255)))
        wrapped.load_generate()
    plain = Shifted(tmp_path, ThresholdParams(255))
    plain.load_generate()
    assert (wrapped.payload, plain.payload) == (0, 256)


def test_numpy_datetime_and_timedelta_scalars_keep_their_unit() -> None:
    """np.datetime64 and np.timedelta64 are tagged with their unit and never collide with an int."""
    _distinct(
        np.datetime64("2020-01-01"),
        np.datetime64("2020-01-01T00:00"),
        np.timedelta64(3, "ns"),
        np.timedelta64(3, "s"),
        3,
    )


def test_longdouble_is_refused_with_a_clear_error() -> None:
    """np.longdouble (platform-dependent width) raises UnhashableParamError, not a RecursionError."""
    with pytest.raises(UnhashableParamError, match=r"params\.x .*longdouble|params\.x .*float128"):
        encode_value(np.longdouble(1.5), "params.x")


def test_lone_surrogates_hash_and_stay_distinct() -> None:
    """Strings with lone surrogates (os.fsdecode of undecodable names) get keys, distinct from their escapes."""
    _distinct("name-\udcff", "name-\\udcff", "name-\udcfe", "name-")


def test_unicode_strings_are_distinct_by_code_point() -> None:
    """Precomposed and decomposed accents are different strings and give different keys (no normalisation)."""
    _distinct("caf\u00e9", "cafe\u0301", "CAF\u00c9")


def test_complex_decimal_and_bytes_are_tagged() -> None:
    """complex, Decimal and bytes have their own tags and do not collide with str or float."""
    _distinct(1 + 0j, 1.0, decimal.Decimal("1.0"), decimal.Decimal("1.00"), "1.0", b"1.0")
    assert _key(b"ab") == _key(bytearray(b"ab"))


# -- containers -----------------------------------------------------------------------


def test_tuples_and_lists_encode_the_same() -> None:
    """A tuple and a list with the same items give the same key (documented decision)."""
    assert _key((1, "a", (2.0,))) == _key([1, "a", [2.0]])
    _distinct([1, 2], [2, 1], [[1, 2]], {"__type__": "list"})


def test_sets_are_order_independent_and_differ_from_lists() -> None:
    """Sets and frozensets encode sorted; a set differs from the list of its items."""
    items = [f"item{i}" for i in range(50)]
    assert _key(set(items)) == _key(set(reversed(items))) == _key(frozenset(items))
    _distinct(set(items), sorted(items))
    assert _key({1, "1", 1.5}) == _key({1.5, "1", 1})


def test_dict_key_order_is_irrelevant() -> None:
    """Dicts with the same items inserted in another order, or an OrderedDict, give the same key."""
    forward = {f"k{i}": i for i in range(20)}
    backward = dict(reversed(list(forward.items())))
    assert list(forward) != list(backward)
    assert _key(forward) == _key(backward) == _key(OrderedDict(backward))


def test_dicts_with_non_string_keys_are_supported_and_typed() -> None:
    """Dict keys of other types are encoded with their type: {1: x} and {"1": x} differ."""
    _distinct({1: "x"}, {"1": "x"}, {1.5: "x"}, {(1, 2): "x"}, {Color.RED: "x"})
    assert _key({2: "b", 1: "a"}) == _key({1: "a", 2: "b"})
    assert _key({"a": 1, 2: "b"}) == _key({2: "b", "a": 1})


def test_dict_with_a_type_key_cannot_pass_for_a_tagged_value() -> None:
    """A user dict holding "__type__" encodes differently from every tagged value it imitates."""
    for tagged in (
        {1, 2},
        float("nan"),
        pathlib.PurePosixPath("a"),
        Color.RED,
        np.arange(2),
        dt.date(2020, 1, 1),
    ):
        imitation = json.loads(canonical_json(encode_value(tagged)))
        assert imitation["__type__"]
        assert _key(imitation) != _key(tagged)


# -- arrays -------------------------------------------------------------------------


def test_arrays_with_same_values_and_another_dtype_differ() -> None:
    """np.arange(3) as int64, int32, float64 and big-endian int64 give four keys."""
    _distinct(
        np.arange(3, dtype=np.int64),
        np.arange(3, dtype=np.int32),
        np.arange(3, dtype=np.float64),
        np.arange(3, dtype=">i8"),
        [0, 1, 2],
    )


def test_arrays_with_same_bytes_and_another_shape_differ() -> None:
    """The same bytes as shape (6,), (2, 3), (3, 2) and a 0-d vs 1-element array give different keys."""
    data = np.arange(6)
    _distinct(data, data.reshape(2, 3), data.reshape(3, 2), np.zeros((0, 6)), np.zeros((6, 0)))
    _distinct(np.array(5.0), np.array([5.0]), np.array([[5.0]]))


def test_non_contiguous_arrays_equal_their_contiguous_copy() -> None:
    """A strided view, a transposed array and a Fortran-ordered array equal their C-ordered copies."""
    base = np.arange(48.0).reshape(6, 8)
    for view in (base[::2, 1::3], base.T, np.asfortranarray(base), base[:, ::-1]):
        assert not view.flags.c_contiguous or view is base
        assert _key(view) == _key(np.ascontiguousarray(view))
    assert _key(base.T) != _key(base)


def test_array_values_change_the_key() -> None:
    """Changing one element of a large array changes its key."""
    data = np.zeros(100_000)
    changed = data.copy()
    changed[77_777] = 1e-300
    _distinct(data, changed)


def test_structured_arrays_differ_by_field_names_and_types() -> None:
    """Structured arrays with the same bytes but other field names or types give different keys."""
    _distinct(
        np.zeros(2, dtype=[("a", "<f8"), ("b", "<f8")]),
        np.zeros(2, dtype=[("x", "<f8"), ("y", "<f8")]),
        np.zeros(2, dtype=[("a", "<i8"), ("b", "<i8")]),
        np.zeros(4, dtype="<f8"),
    )


def test_string_and_datetime_arrays_are_supported() -> None:
    """Unicode and datetime64 arrays encode, with their dtype."""
    _distinct(np.array(["a", "bc"]), np.array(["a", "bc"], dtype="<U5"), ["a", "bc"])
    _distinct(np.array(["2020-01-01"], dtype="M8[D]"), np.array(["2020-01-01"], dtype="M8[s]"))


# -- other types ----------------------------------------------------------------------


def test_paths_are_posix_strings_and_differ_from_str() -> None:
    """Paths encode as POSIX strings: Windows and POSIX paths of the same parts agree; a str differs."""
    assert _key(pathlib.PurePosixPath("data/raw/x.csv")) == _key(
        pathlib.PureWindowsPath(r"data\raw\x.csv")
    )
    assert _key(pathlib.Path("data/raw/x.csv")) == _key(pathlib.PurePosixPath("data/raw/x.csv"))
    _distinct(pathlib.PurePosixPath("data/raw"), "data/raw", pathlib.PurePosixPath("/data/raw"))
    assert encode_value(pathlib.PureWindowsPath(r"C:\data\x"))["value"] == "C:/data/x"


def test_enums_encode_by_class_and_member_name() -> None:
    """Enum members differ from their values and from each other; IntEnum differs from its int."""
    _distinct(Color.RED, Color.BLUE, "red", Level.LOW, 1)
    assert encode_value(Color.RED) == {"__type__": "enum", "class": "Color", "name": "RED"}


def test_flag_combinations_encode_deterministically() -> None:
    """Combinations of Flag members have distinct encodings that do not depend on the Python version."""
    _distinct(Perm.R, Perm.W, Perm.R | Perm.W, Perm.R | Perm.X, Perm.R | Perm.W | Perm.X)
    assert _key(Perm.W | Perm.R) == _key(Perm.R | Perm.W)
    assert encode_value(Perm.R | Perm.W) == {"__type__": "flag", "class": "Perm", "value": 3}


def test_datetimes_naive_and_aware_differ() -> None:
    """A naive datetime, the same wall time in UTC, a date and a time are four different keys."""
    naive = dt.datetime(2024, 5, 1, 12, 30)
    _distinct(
        naive,
        naive.replace(tzinfo=dt.timezone.utc),
        naive.replace(tzinfo=dt.timezone(dt.timedelta(hours=2))),
        naive.date(),
        naive.time(),
        naive.isoformat(),
    )
    assert _key(dt.datetime(2024, 5, 1)) != _key(dt.date(2024, 5, 1))
    _distinct(dt.timedelta(seconds=1), dt.timedelta(seconds=2), 1.0)


@dataclass
class Kernel:
    name: str
    width: float = 1.0


@dataclass
class Model:
    kernel: Any
    layers: list[Any] = field(default_factory=list)


@dataclass
class NestedParams(PersistableParams):
    model: Model
    seed: int = 0


@dataclass
class InnerParams(PersistableParams):
    alpha: float
    tag: str = untracked(default="x")


@dataclass
class OuterParams(PersistableParams):
    inner: InnerParams
    n: int = 1


def test_nested_dataclasses_encode_their_fields() -> None:
    """Nested dataclasses encode with their class name and fields; a changed inner field changes the key."""
    tree = NestedParams(Model(Kernel("rbf"), [Kernel("lin", 2.0)])).to_dict()
    assert tree["model"]["__type__"] == "dataclass"
    assert tree["model"]["fields"]["kernel"]["fields"] == {"name": "rbf", "width": 1.0}
    _distinct(
        NestedParams(Model(Kernel("rbf"))).to_dict(),
        NestedParams(Model(Kernel("rbf", 2.0))).to_dict(),
        NestedParams(Model(Kernel("lin"))).to_dict(),
        NestedParams(Model({"name": "rbf", "width": 1.0})).to_dict(),
    )


def test_nested_persistable_params_honour_their_untracked_fields() -> None:
    """A PersistableParams nested in another keeps its untracked fields out of the tree."""
    assert (
        OuterParams(InnerParams(0.5, tag="a")).to_dict()
        == OuterParams(InnerParams(0.5, tag="b")).to_dict()
    )
    assert OuterParams(InnerParams(0.5)).to_dict()["inner"]["fields"] == {"alpha": 0.5}
    _distinct(OuterParams(InnerParams(0.5)).to_dict(), OuterParams(InnerParams(0.25)).to_dict())


# -- unsupported values ------------------------------------------------------------


def _module_level_function() -> None:
    pass


@pytest.mark.parametrize(
    ("kernel", "type_name"),
    [
        (object(), "builtins.object"),
        (lambda x: x, "function"),
        (_module_level_function, "function"),
        (np.array([object()]), "dtype object"),
        (Kernel, "type"),
        (iter([1]), "list_iterator"),
    ],
    ids=["object", "lambda", "function", "object-array", "class", "iterator"],
)
def test_unsupported_values_name_the_field_path_and_type(kernel: Any, type_name: str) -> None:
    """An unsupported value raises UnhashableParamError naming params.model.kernel and its type."""
    with pytest.raises(UnhashableParamError) as excinfo:
        NestedParams(Model(kernel)).to_dict()
    message = str(excinfo.value)
    assert message.startswith("params.model.kernel ")
    assert type_name in message
    assert isinstance(excinfo.value, TypeError)


def test_unsupported_value_deep_in_a_list_names_its_index() -> None:
    """An unsupported value inside a list inside a nested dataclass is named by its full path."""
    params = NestedParams(Model(Kernel("rbf"), layers=[Kernel("a"), {"act": [1, object()]}]))
    with pytest.raises(
        UnhashableParamError, match=r"^params\.model\.layers\[1\]\['act'\]\[1\] .*object"
    ):
        params.to_dict()


def test_unsupported_value_in_a_set_or_dict_key_is_reported() -> None:
    """Unsupported values as set items or dict keys raise UnhashableParamError too."""
    with pytest.raises(UnhashableParamError, match=r"params\.s"):
        encode_value({_module_level_function}, "params.s")
    with pytest.raises(UnhashableParamError, match=r"params\.d<key"):
        encode_value({_module_level_function: 1}, "params.d")


def test_registered_encoder_is_used() -> None:
    """register_encoder() teaches the encoding a new type."""

    class Point:
        def __init__(self, x: int) -> None:
            self.x = x

    with pytest.raises(UnhashableParamError):
        encode_value(Point(1))

    @register_encoder(Point)
    def _encode_point(value: Point, path: str) -> Any:
        return {"__type__": "test.Point", "x": value.x}

    assert encode_value(Point(3)) == {"__type__": "test.Point", "x": 3}
    _distinct(Point(1), Point(2))


# -- untracked fields ---------------------------------------------------------------


@dataclass
class TrackedAndUntracked(PersistableParams):
    n: int
    n_jobs: int = untracked(default=4)
    progress: list[str] = untracked(default_factory=list)  # noqa: RUF009 - returns a Field
    scratch: str = field(default="tmp", metadata={"persistable": "untracked"})
    callback: Any = untracked(default=None)  # noqa: RUF009 - returns a Field


@dataclass
class WithClassVarUntracked(PersistableParams):
    untracked_fields: ClassVar[tuple[str, ...]] = ("debug", "logger")
    n: int
    debug: bool = False
    logger: Any = None


def test_untracked_fields_are_left_out_of_the_tree() -> None:
    """untracked(), field metadata and untracked_fields keep fields out of to_dict()."""
    assert TrackedAndUntracked(3).to_dict() == {"n": 3}
    assert WithClassVarUntracked(3).to_dict() == {"n": 3}


def test_untracked_fields_may_hold_unhashable_values() -> None:
    """An untracked field may hold anything (a lambda, an object): it is never encoded."""
    params = TrackedAndUntracked(3, n_jobs=8, progress=["x"], scratch="s", callback=lambda: None)
    assert params.to_dict() == {"n": 3}
    assert WithClassVarUntracked(3, debug=True, logger=object()).to_dict() == {"n": 3}


def test_untracked_fields_keep_their_values_and_defaults() -> None:
    """Untracked fields are ordinary dataclass fields with their defaults (default_factory is per instance)."""
    first, second = TrackedAndUntracked(1), TrackedAndUntracked(2)
    assert first.n_jobs == 4
    assert first.scratch == "tmp"
    first.progress.append("a")
    assert second.progress == []
    assert {f.name for f in dataclasses.fields(TrackedAndUntracked)} >= {"n_jobs", "progress"}


def test_tracked_field_changes_the_tree() -> None:
    """Changing a tracked field changes the tree; changing an untracked one does not."""
    assert TrackedAndUntracked(1).to_dict() != TrackedAndUntracked(2).to_dict()
    assert TrackedAndUntracked(1, n_jobs=1).to_dict() == TrackedAndUntracked(1, n_jobs=99).to_dict()


# -- the params base ------------------------------------------------------------------


def test_params_tree_is_json_and_canonical() -> None:
    """to_dict() of params with every supported type dumps to JSON and back unchanged."""

    @dataclass
    class Everything(PersistableParams):
        a: Any

    value = {
        "int": 1,
        "float": -0.0,
        "nan": float("nan"),
        "set": {3, 1},
        "path": pathlib.Path("x/y"),
        "color": Color.BLUE,
        "when": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
        "array": np.eye(2),
        "nested": Kernel("k"),
        "bytes": b"\x00",
        1: (1, 2),
    }
    tree = Everything(value).to_dict()
    assert json.loads(json.dumps(tree, allow_nan=False)) == tree


def test_non_dataclass_params_raise_invalid_params_error() -> None:
    """A PersistableParams subclass that is not a dataclass raises InvalidParamsError naming the fix."""

    class NotADataclass(PersistableParams):
        n = 3

    with pytest.raises(InvalidParamsError, match="@dataclass"):
        NotADataclass().to_dict()


def test_replace_returns_a_changed_copy() -> None:
    """replace() gives a copy with some fields changed and leaves the original alone."""
    params = TrackedAndUntracked(1)
    changed = params.replace(n=2)
    assert (params.n, changed.n, type(changed)) == (1, 2, TrackedAndUntracked)


def test_self_referencing_container_raises_unhashable_param_error() -> None:
    """A list that contains itself raises UnhashableParamError instead of RecursionError."""
    from dataclasses import dataclass as _dataclass

    from persistable import PersistableParams as _Base
    from persistable.exceptions import UnhashableParamError as _Unhashable

    @_dataclass
    class _Cyclic(_Base):
        items: list[object]

    items: list[object] = [1]
    items.append(items)
    with pytest.raises(_Unhashable, match="contains itself"):
        _Cyclic(items=items).to_dict()
