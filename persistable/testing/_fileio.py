"""A reusable test suite for :class:`~persistable.io.FileIO` implementations.

Subclass :class:`FileIOTests` in a pytest module, say how to build the FileIO and
which payloads it must carry (a Hypothesis strategy), and every check below runs
against it: round trip through a plain stream, a stream that cannot seek (how object
stores feed a FileIO) and a local file, the ``check`` contract, and the class
attributes that end up in ``metadata.json``::

    class TestMyIO(FileIOTests[MyPayload]):
        def make_io(self) -> MyFileIO:
            return MyFileIO()

        def payloads(self) -> st.SearchStrategy[MyPayload]:
            return st.builds(MyPayload, ...)

Needs the ``dev`` extra (pytest and Hypothesis).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from persistable.io import FileIO

__all__ = [
    "FileIOTests",
    "NonSeekableReader",
    "arrays",
    "assert_same_payload",
    "json_values",
    "roundtrip",
    "roundtrip_path",
]

PayloadT = TypeVar("PayloadT")


class NonSeekableReader(io.RawIOBase):
    """A read-only stream that cannot seek or tell, like an HTTP or S3 body."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = memoryview(data)
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._data) - self._position)
        view[:count] = self._data[self._position : self._position + count]
        self._position += count
        return count


class _NonSeekableWriter(io.RawIOBase):
    """A write-only stream that cannot seek or tell, like the checksumming writer of a store."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.buffer += view
        return view.nbytes


def roundtrip(file_io: FileIO[PayloadT], payload: PayloadT) -> PayloadT:
    """Save ``payload`` into a stream that cannot seek, and load it back from another one.

    This is the hardest case a store gives a FileIO (object stores stream both ways).
    """
    sink = _NonSeekableWriter()
    file_io.save(payload, sink)  # type: ignore[arg-type]
    with io.BufferedReader(NonSeekableReader(bytes(sink.buffer))) as source:
        return file_io.load(source)


def roundtrip_path(file_io: FileIO[PayloadT], payload: PayloadT, folder: Path) -> PayloadT:
    """Save ``payload`` into a file of ``folder`` and load it with :meth:`FileIO.load_path`."""
    path = folder / f"payload{file_io.suffix}"
    with path.open("wb") as stream:
        file_io.save(payload, stream)
    return file_io.load_path(path)


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """JSON values that survive a JSON round trip unchanged (lists, str-keyed dicts, finite floats)."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text()
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def arrays(*, native_byte_order: bool = False) -> st.SearchStrategy[np.ndarray[Any, Any]]:
    """Numeric, boolean, string and datetime arrays of 0 to 3 dimensions, in many memory layouts.

    ``native_byte_order`` leaves out big-endian dtypes on little-endian machines (and the
    reverse): numpy pickles a non-contiguous or datetime array of a swapped dtype as native.
    """
    order: Any = "=" if native_byte_order else "?"
    dtypes = (
        hnp.boolean_dtypes()
        | hnp.integer_dtypes(endianness=order)
        | hnp.unsigned_integer_dtypes(endianness=order)
        | hnp.floating_dtypes(endianness=order)
        | hnp.complex_number_dtypes(endianness=order)
        | hnp.unicode_string_dtypes(endianness=order, max_len=4)
        | hnp.datetime64_dtypes(max_period="D", endianness=order)
    )
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    layouts = st.sampled_from(["C", "F", "T", "reversed", "strided"])
    return st.tuples(hnp.arrays(dtypes, shapes), layouts).map(lambda pair: _relayout(*pair))


def _relayout(array: np.ndarray[Any, Any], layout: str) -> np.ndarray[Any, Any]:
    """The same values in another memory layout: Fortran order, transposed, or a strided view."""
    if array.ndim == 0:
        return array
    if layout == "F":
        return np.asfortranarray(array)
    if layout == "T":
        return np.transpose(array)
    if layout == "reversed":
        return np.flip(array, axis=0)
    if layout == "strided":
        return np.repeat(array, 2, axis=0)[::2]
    return array


class FileIOTests(Generic[PayloadT]):
    """The checks every FileIO passes; subclass it and implement :meth:`make_io` and :meth:`payloads`.

    Override :meth:`assert_same` when ``==`` is not the right comparison for the payload
    type (numpy arrays compare element-wise; it is already handled here).
    """

    #: How many examples Hypothesis tries per property.
    max_examples: int = 30

    def make_io(self) -> FileIO[PayloadT]:
        """The FileIO under test."""
        raise NotImplementedError("FileIOTests subclasses implement make_io().")

    def payloads(self) -> st.SearchStrategy[PayloadT]:
        """Payloads the FileIO must round-trip exactly."""
        raise NotImplementedError("FileIOTests subclasses implement payloads().")

    def assert_same(self, expected: PayloadT, actual: PayloadT) -> None:
        """Fail unless ``actual`` is ``expected`` come back (same type, value, dtype and shape)."""
        assert_same_payload(expected, actual)

    def test_roundtrip_through_streams(self) -> None:
        """Every payload of the strategy comes back unchanged through streams that cannot seek."""

        @settings(
            max_examples=self.max_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(payload=self.payloads())
        def check(payload: PayloadT) -> None:
            self.assert_same(payload, roundtrip(self.make_io(), payload))

        check()

    def test_roundtrip_through_a_file(self) -> None:
        """Every payload of the strategy comes back unchanged through a local file and load_path."""

        @settings(
            max_examples=max(5, self.max_examples // 3),
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(payload=self.payloads())
        def check(payload: PayloadT) -> None:
            with tempfile.TemporaryDirectory() as folder:
                self.assert_same(payload, roundtrip_path(self.make_io(), payload, Path(folder)))

        check()

    def test_check_accepts_what_it_saves(self) -> None:
        """check() accepts every payload that save() can write."""

        @settings(max_examples=10, deadline=None)
        @given(payload=self.payloads())
        def check(payload: PayloadT) -> None:
            self.make_io().check(payload)

        check()

    def test_metadata_attributes(self) -> None:
        """The FileIO has a non-empty name and a suffix that starts with a dot and names one file."""
        file_io = self.make_io()
        assert isinstance(file_io.name, str)
        assert file_io.name
        assert file_io.suffix.startswith(".")
        assert "/" not in file_io.suffix
        assert "\\" not in file_io.suffix
        assert isinstance(file_io.executes_code_on_load, bool)
        assert repr(file_io).startswith(type(file_io).__name__)


def assert_same_payload(expected: Any, actual: Any) -> None:
    """Deep equality that also compares numpy dtypes and shapes, and tells NaN equal to NaN."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"expected an ndarray, got {type(actual)}"
        assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
        assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
        np.testing.assert_array_equal(actual, expected, strict=True)
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict)
        assert actual.keys() == expected.keys()
        for key, value in expected.items():
            assert_same_payload(value, actual[key])
        return
    if isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected)
        assert len(actual) == len(expected)
        for left, right in zip(expected, actual, strict=False):
            assert_same_payload(left, right)
        return
    if isinstance(expected, float) and expected != expected:
        assert isinstance(actual, float)
        assert actual != actual
        return
    assert type(actual) is type(expected), f"type {type(actual)} != {type(expected)}"
    assert actual == expected, f"{actual!r} != {expected!r}"
