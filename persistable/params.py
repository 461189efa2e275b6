"""Params: the dataclass base users subclass, and the canonical typed encoding of its values.

The encoding turns a params dataclass into a JSON-able *tree* that is both what lands
in ``params.json`` and what the key is hashed from (see :mod:`persistable._hashing`).
Plain JSON values stay as they are: JSON already tells ``1``, ``1.0``, ``true`` and
``"1"`` apart. Everything else becomes a small tagged object ``{"__type__": ...}``:

=====================  ==========================================================
value                  encoding
=====================  ==========================================================
``None``/bool/int/str  itself
float                  itself; NaN, ``inf``, ``-inf`` tagged (``-0.0`` stays ``-0.0``)
list, tuple            a JSON list: **tuples and lists encode the same**, because
                       a config read from JSON/YAML gives lists where code gives
                       tuples, and both describe the same input
set, frozenset         ``{"__type__": "set", "items": [...]}``, items sorted by
                       their canonical bytes
dict, str keys         a JSON object (sorted when hashed)
dict, other keys       ``{"__type__": "dict", "items": [[k, v], ...]}`` sorted by key
                       (also used for a str-keyed dict holding a ``"__type__"`` key,
                       so that no dict can pass for a tagged value)
numpy array            dtype (``dtype.str``; the field list of a structured dtype),
                       shape and the xxh3-128 of the C-ordered bytes: a
                       non-contiguous view equals its contiguous copy, the same
                       values in another dtype or shape differ, a 0-d array is
                       not a 1-element array
numpy scalar           a scalar that is an instance of the Python type
                       (``np.float64``, ``np.complex128``, ``np.str_``) is that
                       Python value (``np.float64(0.5)`` is ``0.5``); every other
                       one keeps its dtype, ``{"__type__": "numpy", "dtype":
                       "|u1", "value": 255}``, because its arithmetic differs
                       (``np.uint8(255) + 1`` is ``0``, ``~np.True_`` is
                       ``False``); ``datetime64``/``timedelta64`` tagged with
                       their unit; ``longdouble`` is refused (its width depends
                       on the platform)
``PurePath``           ``{"__type__": "path", "value": posix string}``: a
                       ``PureWindowsPath`` and a ``PurePosixPath`` of the same parts
                       encode the same, a ``Path`` and a ``str`` differ
Enum                   class name and member name (``Flag``: class name and value)
datetime, date, time   ISO 8601 (a naive and an aware datetime differ)
timedelta              total seconds as a float
bytes                  size and xxh3-128
complex, Decimal       tagged real/imag, tagged exact string
nested dataclass       ``{"__type__": "dataclass", "class": name, "fields": {...}}``
=====================  ==========================================================

Anything else raises :class:`~persistable.exceptions.UnhashableParamError` naming the
field path (``params.model.kernel``) and the type. Register more types with
:func:`register_encoder`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import os
import pathlib
import sys
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from persistable._hashing import bulk_digest, canonical_json
from persistable._keys import bump_epoch
from persistable._v1._encodable import V1ParamsMethods, key_field_values, v1_encoding
from persistable.exceptions import InvalidParamsError, UnhashableParamError

if TYPE_CHECKING:
    import datetime as _dt
    import decimal

    from typing_extensions import Self

__all__ = [
    "ADDED_LATER",
    "UNTRACKED",
    "PersistableParams",
    "added_later",
    "encode_value",
    "register_encoder",
    "tracked_field_names",
    "untracked",
]

#: Value of ``field(metadata={"persistable": UNTRACKED})`` that excludes a field from the key.
UNTRACKED = "untracked"
#: Value of ``field(metadata={"persistable": ADDED_LATER})``: in the key only when not at its default.
ADDED_LATER = "added_later"

_TYPE = "__type__"
_T = TypeVar("_T")


#: Whether the numpy encoders are registered (lazily, see ``_register_numpy``).
_numpy_registered = False


def untracked(
    *, default: Any = dataclasses.MISSING, default_factory: Any = dataclasses.MISSING
) -> Any:
    """A dataclass field that is kept on the params but excluded from the key and ``params.json``.

    Use it for settings that do not change the payload, such as a worker count or a
    progress flag::

        @dataclass
        class Params(PersistableParams):
            n: int
            n_jobs: int = untracked(default=4)
    """
    metadata = {"persistable": UNTRACKED}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def added_later(
    *, default: Any = dataclasses.MISSING, default_factory: Any = dataclasses.MISSING
) -> Any:
    """A dataclass field added after artifacts existed: left out of the key while it holds its default.

    Existing keys stay valid, so existing artifacts keep loading; any other value enters
    the key (and ``params.json``) as a plain field would::

        @dataclass
        class Params(PersistableParams):
            alpha: float = 0.1
            scale: float = added_later(default=1.0)

    "Holds its default" compares canonical encodings, so ``1`` and ``1.0`` differ.
    Never change the default afterwards: the key cannot tell the old default from the
    new one, so ``metadata.json`` records the default each artifact was made with and a
    load under a changed default raises :class:`~persistable.exceptions.InvalidParamsError`
    (pass the new value explicitly instead, or set the class's ``version``).
    """
    if default is dataclasses.MISSING and default_factory is dataclasses.MISSING:
        raise InvalidParamsError(
            "added_later() needs a default (got none): the default is what the artifacts made "
            "before the field existed were made with; write added_later(default=...)."
        )
    global _added_later_declared
    _added_later_declared = True
    metadata = {"persistable": ADDED_LATER}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _is_untracked(field: dataclasses.Field[Any]) -> bool:
    return field.metadata.get("persistable") == UNTRACKED


class _ClassInfo:
    """What key computation needs of a dataclass, computed once per class."""

    __slots__ = ("added_later", "coerce", "names")

    def __init__(
        self, names: tuple[str, ...], added_later: dict[str, bytes], coerce: dict[str, type]
    ) -> None:
        #: Tracked field names, in field order.
        self.names = names
        #: Canonical bytes of the default of every ``added_later`` field.
        self.added_later = added_later
        #: Fields annotated with a path type keyed by content (File, Directory): a str or
        #: Path value is encoded as that type.
        self.coerce = coerce


#: Path-like param types that a field annotated with their name turns str/Path values into.
_content_types: dict[str, type] = {}


def register_content_type(cls: type) -> None:
    """Let fields annotated ``cls`` (by name or object) encode str/Path values as ``cls``."""
    _content_types[cls.__name__] = cls


def _content_type(annotation: Any) -> type | None:
    if isinstance(annotation, str):
        parts = [part.strip() for part in annotation.split("|")]
        names = [part.rpartition(".")[2] for part in parts if part != "None"]
        if len(names) == 1:
            return _content_types.get(names[0])
        return None
    if isinstance(annotation, type):
        return annotation if annotation in _content_types.values() else None
    import typing

    arguments = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if len(arguments) == 1:
        return _content_type(arguments[0])
    return None


def _class_info(cls: type) -> _ClassInfo:
    info = _class_infos.get(cls)
    if info is None:
        # Fields and their metadata belong to the class: computed once per class, since
        # every key computation needs them.
        if issubclass(cls, PersistableParams):
            _check_decorated(cls)
        excluded = set(getattr(cls, "untracked_fields", ()))
        fields = [
            field
            for field in dataclasses.fields(cls)
            if not _is_untracked(field) and field.name not in excluded
        ]
        later: dict[str, bytes] = {}
        for field in fields:
            if field.metadata.get("persistable") == ADDED_LATER:
                # By type, not identity: a class rebuilt by value (cloudpickle, in a
                # worker) holds a copy of the MISSING sentinel, not the sentinel itself.
                factory: Any = field.default_factory
                if not isinstance(factory, type(dataclasses.MISSING)):
                    default = factory()
                else:
                    default = field.default
                where = f"{cls.__qualname__}.{field.name} (its default)"
                later[field.name] = canonical_json(encode_value(default, where))
        if later:
            # Also when the class was rebuilt without calling added_later() (cloudpickle
            # by value in a worker): the records of omitted defaults must still be made.
            global _added_later_declared
            _added_later_declared = True
        coerce: dict[str, type] = {}
        for field in fields:
            content = _content_type(field.type)
            if content is not None:
                coerce[field.name] = content
        info = _class_infos[cls] = _ClassInfo(tuple(field.name for field in fields), later, coerce)
    return info


def _is_class_var(annotation: Any) -> bool:
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        return text.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))
    import typing

    return annotation is typing.ClassVar or typing.get_origin(annotation) is typing.ClassVar


def _check_decorated(cls: type) -> None:
    """Refuse a params class that declares fields in a class body that is not a dataclass."""
    for klass in cls.__mro__:
        if klass is PersistableParams or not issubclass(klass, PersistableParams):
            continue
        own = vars(klass)
        annotations = own.get("__annotations__")
        if annotations is None and "__annotate__" in own:  # Python 3.14: evaluated lazily
            annotations = getattr(klass, "__annotations__", {})
        declared = [name for name, value in (annotations or {}).items() if not _is_class_var(value)]
        if declared and "__dataclass_fields__" not in own:
            raise InvalidParamsError(
                f"{klass.__qualname__} declares the fields {', '.join(declared)} but is not "
                "itself a dataclass, so they would be left out of the key; decorate it with "
                "@dataclass."
            )


def tracked_field_names(obj: Any) -> tuple[str, ...]:
    """Names of the fields of the dataclass ``obj`` that take part in the key, in field order.

    An :func:`added_later` field is listed even while it holds its default.
    """
    return _class_info(type(obj)).names


# Weak keys: classes made on the fly (in functions, notebooks) are not kept alive.
_class_infos: weakref.WeakKeyDictionary[type, _ClassInfo] = weakref.WeakKeyDictionary()


def _encode_dataclass_fields(obj: Any, path: str) -> dict[str, Any]:
    info = _class_info(type(obj))
    # key_field_values applies 1.x's PersistableParam exclusion and custom type encoders.
    values = dict(key_field_values(obj, info.names))
    encoded = {name: encode_value(value, f"{path}.{name}") for name, value in values.items()}
    for name, content in info.coerce.items():
        value = values.get(name)
        if isinstance(value, (str, os.PathLike)) and not isinstance(value, content):
            encoded[name] = encode_value(content(value), f"{path}.{name}")
    for name, default in info.added_later.items():
        if name in encoded and canonical_json(encoded[name]) == default:
            del encoded[name]
            omitted = _omitted.collector
            if omitted is not None:
                omitted[f"{path}.{name}"] = default.decode()
    return encoded


class _Omitted(threading.local):
    collector: dict[str, str] | None = None


_omitted = _Omitted()

#: Set once any added_later() field is declared: until then no params can omit a field,
#: so omitted_defaults() needs no second encoding pass (arrays and files hashed again).
_added_later_declared = False


def omitted_defaults(params: Any) -> dict[str, str]:
    """The ``added_later`` fields of ``params`` left out of its key, by field path, with the
    canonical JSON of the default they hold (recorded in ``metadata.json``, checked on load)."""
    if (
        not _added_later_declared
        or not dataclasses.is_dataclass(params)
        or isinstance(params, type)
    ):
        return {}
    previous = _omitted.collector
    found: dict[str, str] = {}
    _omitted.collector = found
    try:
        _encode_dataclass_fields(params, "params")
    finally:
        _omitted.collector = previous
    return found


@functools.singledispatch
def _encode(value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            _TYPE: "dataclass",
            "class": type(value).__qualname__,
            "fields": _encode_dataclass_fields(value, path),
        }
    _register_stdlib_encoders()
    if _encode.dispatch(type(value)) is not _encode.registry[object]:
        return _encode(value, path)  # a datetime or Decimal met before its encoder was registered
    raise UnhashableParamError(
        f"{path} holds a {type(value).__module__}.{type(value).__qualname__} ({value!r:.80}), "
        "which has no stable canonical encoding; use a supported type (number, str, list, dict, "
        "set, numpy array, Path, Enum, datetime, dataclass) or register an encoder with "
        "persistable.params.register_encoder()."
    )


#: The encoders by the exact class they were registered for (a live view).
_registry = _encode.registry


def register_encoder(
    cls: type[_T],
) -> Callable[[Callable[[_T, str], Any]], Callable[[_T, str], Any]]:
    """Register an encoder ``f(value, path) -> JSON-able tree`` for values of type ``cls``.

    The returned tree should be a tagged object (``{"__type__": "my.Type", ...}``) so that
    it cannot collide with another type's encoding. Changing an encoder changes keys.
    """

    def decorator(func: Callable[[_T, str], Any]) -> Callable[[_T, str], Any]:
        _encode.register(cls)(func)
        return func

    return decorator


def encode_value(value: Any, path: str = "params") -> Any:
    """The canonical JSON-able tree of one value; ``path`` names it in error messages."""
    if not _numpy_registered and "numpy" in sys.modules:
        _register_numpy()
    # A type registered itself is what the dispatch would pick (the first class of its
    # MRO); looked up directly, without singledispatch's per-call cache of weak references.
    encoder = _registry.get(type(value))
    if encoder is not None:
        return encoder(value, path)
    return _encode(value, path)


@_encode.register(type(None))
@_encode.register(str)
def _encode_plain(value: Any, path: str) -> Any:
    if isinstance(value, enum.Enum):
        return _encode_enum(value, path)
    return str(value) if value is not None else None


@_encode.register(bool)
def _encode_bool(value: bool, path: str) -> Any:
    return bool(value)


@_encode.register(int)
def _encode_int(value: int, path: str) -> Any:
    if isinstance(value, enum.Enum):
        return _encode_enum(value, path)
    return int(value)


@_encode.register(float)
def _encode_float(value: float, path: str) -> Any:
    if isinstance(value, enum.Enum):
        return _encode_enum(value, path)
    value = float(value)
    if math.isnan(value):
        return {_TYPE: "float", "value": "nan"}
    if math.isinf(value):
        return {_TYPE: "float", "value": "inf" if value > 0 else "-inf"}
    return value


@_encode.register(complex)
def _encode_complex(value: complex, path: str) -> Any:
    return {
        _TYPE: "complex",
        "real": _encode_float(value.real, path),
        "imag": _encode_float(value.imag, path),
    }


def _encode_decimal(value: decimal.Decimal, path: str) -> Any:
    return {_TYPE: "decimal", "value": str(value)}


@_encode.register(list)
@_encode.register(tuple)
def _encode_sequence(value: list[Any] | tuple[Any, ...], path: str) -> Any:
    return [encode_value(item, f"{path}[{index}]") for index, item in enumerate(value)]


@_encode.register(set)
@_encode.register(frozenset)
def _encode_set(value: set[Any] | frozenset[Any], path: str) -> Any:
    items = [encode_value(item, f"{path}{{}}") for item in value]
    items.sort(key=canonical_json)
    return {_TYPE: "set", "items": items}


@_encode.register(Mapping)
def _encode_mapping(value: Mapping[Any, Any], path: str) -> Any:
    if all(isinstance(key, str) for key in value) and _TYPE not in value:
        return {key: encode_value(item, f"{path}[{key!r}]") for key, item in value.items()}
    items = [
        [encode_value(key, f"{path}<key {key!r}>"), encode_value(item, f"{path}[{key!r}]")]
        for key, item in value.items()
    ]
    items.sort(key=lambda pair: canonical_json(pair[0]))
    return {_TYPE: "dict", "items": items}


@_encode.register(pathlib.PurePath)
def _encode_path(value: pathlib.PurePath, path: str) -> Any:
    return {_TYPE: "path", "value": value.as_posix()}


@_encode.register(enum.Enum)
def _encode_enum(value: enum.Enum, path: str) -> Any:
    if isinstance(value, enum.Flag):
        # A combination of flags has no name on Python 3.10: use its integer value.
        return {_TYPE: "flag", "class": type(value).__qualname__, "value": int(value.value)}
    return {_TYPE: "enum", "class": type(value).__qualname__, "name": value.name}


def _encode_datetime(value: _dt.datetime, path: str) -> Any:
    return {_TYPE: "datetime", "value": value.isoformat()}


def _encode_date(value: _dt.date, path: str) -> Any:
    return {_TYPE: "date", "value": value.isoformat()}


def _encode_time(value: _dt.time, path: str) -> Any:
    return {_TYPE: "time", "value": value.isoformat()}


def _encode_timedelta(value: _dt.timedelta, path: str) -> Any:
    return {_TYPE: "timedelta", "seconds": _encode_float(value.total_seconds(), path)}


_stdlib_lock = threading.Lock()
_stdlib_registered = threading.Event()


def _register_stdlib_encoders() -> None:
    # Registered on the first value no other encoder takes: a datetime or Decimal value
    # can only exist once its module is imported, and importing both here rather than
    # at the top keeps `import persistable` faster (docs/benchmarks.md). None of their
    # types subclasses a type registered above, so nothing dispatches differently before.
    if _stdlib_registered.is_set():
        return
    with _stdlib_lock:
        if _stdlib_registered.is_set():
            return
        import datetime
        import decimal

        _encode.register(decimal.Decimal, _encode_decimal)
        _encode.register(datetime.datetime, _encode_datetime)
        _encode.register(datetime.date, _encode_date)
        _encode.register(datetime.time, _encode_time)
        _encode.register(datetime.timedelta, _encode_timedelta)
        _stdlib_registered.set()


@_encode.register(bytes)
@_encode.register(bytearray)
def _encode_bytes(value: bytes | bytearray, path: str) -> Any:
    return {_TYPE: "bytes", "size": len(value), "xxh3_128": bulk_digest(value)}


def _register_numpy() -> None:
    # Called by encode_value once numpy has been imported by anyone: a numpy value can
    # only exist after that, so `import persistable` itself need not import numpy.
    global _numpy_registered
    import numpy as np

    @_encode.register(np.ndarray)
    def _encode_array(value: np.ndarray[Any, Any], path: str) -> Any:
        if type(value) is not np.ndarray and not isinstance(value, np.memmap):
            return _encode_array_subclass(value, path)
        if value.dtype.hasobject:
            raise UnhashableParamError(
                f"{path} is a numpy array of dtype object, whose bytes are pointers, not values; "
                "convert it to a numeric or string dtype, or to a list."
            )
        # Not np.ascontiguousarray: it turns a 0-d array into shape (1,).
        contiguous = value if value.flags.c_contiguous else value.copy(order="C")
        dtype = contiguous.dtype
        return {
            _TYPE: "ndarray",
            # dtype.str of a structured dtype is only "|V<size>": spell out its fields.
            "dtype": dtype.str
            if dtype.fields is None
            else encode_value(np.lib.format.dtype_to_descr(dtype), f"{path}.dtype"),
            "shape": list(contiguous.shape),
            "xxh3_128": _array_digest(contiguous),
        }

    def _array_digest(contiguous: np.ndarray[Any, Any]) -> str:
        # A C-contiguous array's buffer is its bytes in C order, hashed as they lie; the
        # byte view below is the same bytes, for a dtype whose buffer numpy will not export.
        buffer: Any = contiguous  # (numpy's stubs do not declare the buffer protocol)
        try:
            return bulk_digest(buffer)
        except (BufferError, TypeError, ValueError):
            return bulk_digest(contiguous.reshape(-1).view(np.uint8).data)

    def _encode_array_subclass(value: np.ndarray[Any, Any], path: str) -> Any:
        # Values equal as bytes but not in behaviour: np.matrix multiplies as matrices, a
        # masked array hides its masked entries. The class (and the mask) are keyed too;
        # a memory map is a plain array.
        if isinstance(value, np.ma.MaskedArray):
            return {
                _TYPE: "masked_array",
                "data": _encode_array(np.asarray(value.data), f"{path}.data"),
                "mask": _encode_array(np.ma.getmaskarray(value), f"{path}.mask"),
                "fill_value": encode_value(value.fill_value, f"{path}.fill_value"),
            }
        cls = type(value)
        module = cls.__module__
        return {
            _TYPE: "ndarray_subclass",
            # numpy moves its classes between modules across versions: their short name.
            "class": cls.__qualname__
            if module.split(".")[0] == "numpy"
            else f"{module}.{cls.__qualname__}",
            "array": _encode_array(np.asarray(value), path),
        }

    @_encode.register(np.generic)
    def _encode_numpy_scalar(value: np.generic, path: str) -> Any:
        if isinstance(value, (np.datetime64, np.timedelta64)):
            # Checked first: timedelta64 is an np.integer whose item() may be a plain int.
            kind = "datetime64" if isinstance(value, np.datetime64) else "timedelta64"
            return {_TYPE: kind, "value": str(value), "dtype": value.dtype.str}
        if isinstance(value, (np.bool_, np.integer, np.floating, np.complexfloating, np.str_)):
            item = value.item()
            if not isinstance(item, np.generic):  # longdouble stays a numpy scalar
                if isinstance(value, type(item)):
                    # np.float64 is a float, np.complex128 a complex, np.str_ a str:
                    # Python computes with them as with the plain value.
                    return encode_value(item, path)
                # np.uint8(255) + 1 is 0 and ~np.True_ is False, where the Python number
                # gives 256 and -2: a payload made from one is not the other's.
                return {_TYPE: "numpy", "dtype": value.dtype.str, "value": encode_value(item, path)}
        raise UnhashableParamError(
            f"{path} holds a numpy scalar of dtype {value.dtype} that has no stable encoding; "
            "convert it to a Python number or string."
        )

    # Set last: a thread that sees True finds the encoders registered (registering
    # twice from two threads is harmless).
    _numpy_registered = True


class PersistableParams(V1ParamsMethods):
    """Base class of the params of a :class:`~persistable.Persistable`; subclass it as a dataclass.

    Every field takes part in the key unless it is declared with :func:`untracked`; a
    field declared with :func:`added_later` takes part only when it is not at its default.
    A subclass that declares fields must itself be decorated with ``@dataclass``.
    The 1.x methods (``get_str_repr``, ``dict_almost_equal``, ``_custom_type_encoder_map``)
    come from :class:`persistable.io.DictEncodable` (see docs/migrating-from-1.x.md).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class PointsParams(PersistableParams):
    ...     n: int
    ...     random_state: int = 100
    >>> PointsParams(n=3).to_dict()
    {'n': 3, 'random_state': 100}
    """

    #: Fields listed here are excluded from the key, like :func:`untracked` fields.
    untracked_fields: ClassVar[tuple[str, ...]] = ()

    if not TYPE_CHECKING:  # hidden from type checkers, which then still catch misspelt fields

        def __setattr__(self, name: str, value: Any) -> None:
            # A payload held in memory is checked against this epoch (persistable._keys).
            super().__setattr__(name, value)
            bump_epoch()

    @v1_encoding
    def to_dict(self) -> dict[str, Any]:
        """The canonical, JSON-able tree of the tracked fields (what is hashed and in ``params.json``)."""
        this: object = self
        if not dataclasses.is_dataclass(this):
            raise InvalidParamsError(
                f"{type(self).__qualname__} must be a dataclass; decorate it with @dataclass."
            )
        try:
            return _encode_dataclass_fields(self, "params")
        except RecursionError:
            raise UnhashableParamError(
                f"{type(self).__qualname__} holds a value that contains itself (a reference "
                "cycle) or is nested too deeply to encode; params must be a finite tree of values."
            ) from None

    def replace(self, **changes: Any) -> Self:
        """A copy of these params with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
