"""Code fingerprints: a normalised hash of the code that makes a payload.

A fingerprint covers a root function (a persistable's ``_generate_payload``, a step's
function) and, transitively, the functions, methods and classes of the user's own code
it calls or references (through globals, closures, module attributes and ``self.``/
``cls.`` attributes of its class), and the module-level constants they read. Code of
the standard library, of installed packages and of persistable itself is left out (its
versions are in ``metadata.json``).

Each function is hashed from its *syntax tree*, not its text or bytecode: comments and
formatting are gone by parsing, docstrings and type annotations are removed, and the
tree is written out field by field leaving out empty and absent fields, so the result
is the same on Python 3.10 to 3.13. Constants are hashed by their canonical encoding
(``persistable.params``); code reached through a value (a dict of functions, a partial,
an instance of a user class) is found by ``_fingerprint_values``. The per-entry digests are kept (``functions``) so a warning
can say *what* changed; ``digest`` hashes them all.

Results are cached per function object (and per class for a persistable's root); a
cached result is checked on every use: each name the code read must still denote the
same object (a notebook cell may redefine a helper or rebind a constant). A constant
changed in place (appending to a module-level list) is not hashed again in the same
process: rebind the name instead.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from persistable._fingerprint_values import describe
from persistable._fingerprint_values import qualified as _qualified
from persistable._hashing import canonical_json, sha256_hex
from persistable._parsing import PARSE_LOCK

if TYPE_CHECKING:
    import ast

__all__ = [
    "CodeFingerprint",
    "changed_entries",
    "fingerprint",
    "persistable_fingerprint",
]

#: Version of the normalisation; part of every digest so that a change of the scheme
#: reads as "code changed", never as "same code".
FINGERPRINT_SCHEME = 1


@dataclass(frozen=True)
class CodeFingerprint:
    """The fingerprint of a root function and of the user code it reaches."""

    #: SHA-256 over the digests of every entry.
    digest: str
    #: ``module.qualname`` of each function, class or constant -> its own digest.
    functions: Mapping[str, str] = field(default_factory=dict)
    #: Entries whose source could not be read (REPL, compiled): they cannot be compared.
    unavailable: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """What ``metadata.json`` stores under ``code``."""
        return {
            "fingerprint_scheme": FINGERPRINT_SCHEME,
            "fingerprint": self.digest,
            "functions": dict(sorted(self.functions.items())),
        }


def changed_entries(recorded: Mapping[str, Any], current: CodeFingerprint) -> list[str]:
    """Names of the entries of ``current`` (or of ``recorded``) that changed, root first.

    An entry counts as unchanged when its digest appears on the other side under any
    name, so code that moved between ``__main__`` (a script) and its module name, or
    was reached by another path, does not count as changed. Entries whose source could
    not be read on either side are not compared.
    """
    before = {value for value in recorded.values() if isinstance(value, str)}
    after = set(current.functions.values())
    changed = [
        name
        for name, value in current.functions.items()
        if value != _UNAVAILABLE and value not in before
    ]
    # A removed entry, unless it reads as one listed already under another module name.
    listed = {name.rpartition(".")[2] for name in changed}
    changed += [
        name
        for name, value in recorded.items()
        if value != _UNAVAILABLE
        and value not in after
        and name not in current.functions
        and name.rpartition(".")[2] not in listed
    ]
    root = next(iter(current.functions), None)
    changed.sort(key=lambda name: (name != root, name))
    return changed


_UNAVAILABLE = "unavailable"


# -- what counts as the user's own code -----------------------------------------------


def _library_roots() -> tuple[str, ...]:
    import site
    import sysconfig

    roots: set[str] = set()
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            roots.add(path)
    with contextlib.suppress(AttributeError):  # virtualenv's old site module
        roots.update(site.getsitepackages())
    user_site = getattr(site, "getusersitepackages", lambda: None)()
    if isinstance(user_site, str):
        roots.add(user_site)
    roots.add(os.path.dirname(os.path.abspath(__file__)))  # persistable itself
    roots.add(sys.base_prefix)
    return tuple(os.path.normcase(os.path.abspath(root)) + os.sep for root in roots)


_roots: tuple[str, ...] | None = None


def _is_user_module(module_name: str | None) -> bool:
    global _roots
    if not module_name:
        return False
    module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str):
        return False
    if _roots is None:
        _roots = _library_roots()
    path = os.path.normcase(os.path.abspath(filename))
    return not path.startswith(_roots)


def _is_user_file(filename: str) -> bool:
    """Whether code compiled from ``filename`` is the user's (not generated, not a library's)."""
    global _roots
    if filename.startswith("<"):
        return False  # exec()-made, e.g. the methods dataclass writes
    if _roots is None:
        _roots = _library_roots()
    return not os.path.normcase(os.path.abspath(filename)).startswith(_roots)


def _is_user_code(obj: Any) -> bool:
    return _is_user_module(getattr(obj, "__module__", None))


# -- normalised syntax trees -------------------------------------------------------------


#: Fields that carry no meaning for what the code does.
_SKIPPED_FIELDS = frozenset({"type_comment", "kind", "type_ignores"})


def _strip(node: ast.AST) -> ast.AST:
    """Remove docstrings and type annotations from a parsed definition (in place)."""
    import ast

    for item in ast.walk(node):
        body = getattr(item, "body", None)
        if (
            isinstance(item, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            del body[0]
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            item.returns = None
        if isinstance(item, ast.arg):
            item.annotation = None
        if isinstance(item, ast.JoinedStr):
            item.values = _joined_parts(item.values)
        for name in ("body", "orelse", "finalbody"):
            statements = getattr(item, name, None)
            if isinstance(statements, list):
                statements[:] = [_without_annotation(statement) for statement in statements]
    return node


def _joined_parts(values: list[ast.expr]) -> list[ast.expr]:
    """An f-string's parts with text runs merged and empty texts dropped.

    CPython 3.12 puts empty ``Constant('')`` parts into format specs (``f"{x:{w}}"``),
    which no other version does; they mean nothing, and without them the tree is the
    same on 3.10 to 3.13.
    """
    import ast

    parts: list[ast.expr] = []
    for value in values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            if not value.value:
                continue
            last = parts[-1] if parts else None
            if isinstance(last, ast.Constant) and isinstance(last.value, str):
                parts[-1] = ast.Constant(value=last.value + value.value)
                continue
        parts.append(value)
    return parts


def _without_annotation(statement: ast.AST) -> ast.AST:
    import ast

    if not isinstance(statement, ast.AnnAssign):
        return statement
    # `x: int = 1` becomes `x = 1`; a bare `x: int` (a dataclass field) becomes `x`.
    if statement.value is None:
        return ast.Expr(value=statement.target)
    return ast.Assign(targets=[statement.target], value=statement.value)


def _dump(node: Any) -> Any:
    """A JSON-able form of a syntax tree, the same on every supported Python version."""
    import ast

    # Explicit stack instead of recursion: deeply nested expressions stay fine.
    root: list[Any] = []
    stack: list[tuple[Any, list[Any]]] = [(node, root)]
    while stack:
        item, out = stack.pop()
        if isinstance(item, ast.AST):
            entry: list[Any] = [type(item).__name__]
            out.append(entry)
            pending: list[tuple[Any, list[Any]]] = []
            for name in item._fields:
                if name in _SKIPPED_FIELDS:
                    continue
                value = getattr(item, name, None)
                if value is None or value == []:
                    continue  # absent or empty: newer versions add such fields (type_params)
                slot: list[Any] = [name]
                entry.append(slot)
                pending.append((value, slot))
            stack.extend(reversed(pending))
        elif isinstance(item, list):
            items: list[Any] = []
            out.append(items)
            stack.extend((element, items) for element in reversed(item))
        else:
            out.append([type(item).__name__, repr(item)])
    return root[0]


def _definition(obj: Any) -> ast.AST | None:
    """The normalised syntax tree of a function or class, or None without readable source."""
    import ast
    import inspect
    import textwrap

    with PARSE_LOCK:  # CPython 3.11's parser is not safe in two threads at once
        try:
            source = textwrap.dedent(inspect.getsource(obj))
        except (OSError, TypeError, SyntaxError, SystemError):
            return None
        try:
            module = ast.parse(source)
        except SyntaxError:
            module = None
    code = getattr(obj, "__code__", None)
    if code is not None and code.co_name == "<lambda>":
        if module is None:
            return None
        lambdas = [node for node in ast.walk(module) if isinstance(node, ast.Lambda)]
        # Several lambdas on the lines of this one: all of them count (never too little).
        return ast.Module(body=[ast.Expr(value=node) for node in lambdas], type_ignores=[])
    if module is None or not module.body:
        return None
    node = module.body[0]
    return _strip(node)


def _digest(tree: Any) -> str:
    return sha256_hex(canonical_json([FINGERPRINT_SCHEME, tree]))


# -- references ----------------------------------------------------------------------------


def _references(node: ast.AST) -> Iterator[tuple[str, ...]]:
    """Dotted name chains read by the code: ``smooth``, ``np.mean``, ``self.helper``."""
    import ast

    for item in ast.walk(node):
        if isinstance(item, ast.Name):
            yield (item.id,)
        elif isinstance(item, ast.Attribute):
            chain: list[str] = [item.attr]
            value: ast.AST = item.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                chain.append(value.id)
                yield tuple(reversed(chain))
            elif (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id == "super"
            ):
                chain.append(_SUPER)  # super().name: looked up after the defining class
                yield tuple(reversed(chain))


_MISSING = object()
#: The head of a ``super().name`` chain (not an identifier, so no variable can shadow it).
_SUPER = "super()"


def _unwrap(value: Any) -> Any:
    if isinstance(value, (staticmethod, classmethod)):
        return value.__func__
    if isinstance(value, property):
        return value.fget
    if isinstance(value, types.MethodType):
        return value.__func__
    return value


def _resolve(
    chain: tuple[str, ...],
    namespace: Mapping[str, Any],
    owner: type | None,
    later: tuple[type, ...] = (),
) -> tuple[str, Any, bool] | None:
    """What a name chain denotes, when it can be known statically.

    Returns its display name, the object, and whether it was reached through
    ``self.``/``cls.`` (then it keeps reading attributes of the same class). ``later``
    are the classes ``super()`` searches (the owner's MRO after the defining class).
    """
    head, rest = chain[0], chain[1:]
    if head == _SUPER:
        for klass in later:
            value = vars(klass).get(rest[0], _MISSING)
            if value is not _MISSING:
                return f"{klass.__qualname__}.{rest[0]}", _unwrap(value), True
        return None
    if head in ("self", "cls") and owner is not None and rest:
        # An attribute of the instance's class: looked up without running descriptors.
        import inspect

        value = inspect.getattr_static(owner, rest[0], _MISSING)
        if value is _MISSING:
            return None
        return f"{owner.__qualname__}.{rest[0]}", _unwrap(value), True
    value = namespace.get(head, _MISSING)
    if value is _MISSING:
        return None
    name = head
    container: types.ModuleType | None = None
    for attribute in rest:
        if not isinstance(value, types.ModuleType):
            break  # attributes of objects are not followed (they are data or bound at run time)
        container = value
        value = getattr(value, attribute, _MISSING)
        if value is _MISSING:
            return None
        name = f"{name}.{attribute}"
    if isinstance(value, types.ModuleType):
        return None
    if (
        container is not None
        and not isinstance(value, (type, types.FunctionType))
        and not _is_user_module(container.__name__)
    ):
        # Data of the standard library or an installed package (sys.argv, os.environ,
        # np.pi): not the user's constants; the packages' versions are in metadata.json.
        return None
    if isinstance(value, types.MethodType):
        return name, value, False  # a bound method: its function and what it is bound to
    return name, _unwrap(value), False


@dataclass
class _Unit:
    """What one function or class contributes: its own digest and what it references."""

    digest: str | None
    references: list[tuple[str, Any, bool]]
    owner: type | None = None
    #: The lookups its names took (mapping, key, object found): all must still find the
    #: same object for the unit to hold (a notebook cell may rebind a global).
    checks: list[tuple[Mapping[str, Any], str, Any]] = field(default_factory=list)

    def is_current(self) -> bool:
        """Whether every name read still denotes the object it did when the unit was made."""
        for mapping, key, found in self.checks:  # noqa: SIM110 - no generator: every load runs it
            if mapping.get(key, _MISSING) is not found:
                return False
        return True


#: The names ``type`` and ``object`` define: built-in types, so they never change.
_TYPE_ATTRIBUTES = frozenset(vars(type)) | frozenset(vars(object))


def _static_attribute(owner: type, key: str) -> Any:
    """``inspect.getattr_static(owner, key)``, by the class dicts when the metaclass is ``type``."""
    if type(owner) is not type or key in _TYPE_ATTRIBUTES:
        return _ClassAttributes(owner)[key]
    for klass in owner.__mro__:
        value = klass.__dict__.get(key, _MISSING)
        if value is not _MISSING:
            return value
    raise AttributeError(f"{owner.__qualname__} has no attribute {key!r}")


class _ClassAttributes(Mapping[str, Any]):
    """A class's attributes as looked up by ``self.name`` (through its bases, no descriptors)."""

    def __init__(self, owner: type) -> None:
        self.owner = owner
        # Live views of the class dicts along the MRO, made again if the MRO changes.
        self._mro = owner.__mro__
        self._dicts = [vars(klass) for klass in self._mro]

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """``inspect.getattr_static(owner, key)``, by the class dicts along the MRO when the
        metaclass does not define ``key`` (every cached load checks these lookups)."""
        metaclass: type = type(self.owner)
        if metaclass is type:  # the usual metaclass: its names are fixed, looked up in a set
            shadowed = key in _TYPE_ATTRIBUTES
        else:
            shadowed = any(key in vars(klass) for klass in metaclass.__mro__)
        if not shadowed:
            if self.owner.__mro__ is not self._mro:  # __bases__ was assigned
                self._mro = self.owner.__mro__
                self._dicts = [vars(klass) for klass in self._mro]
            for namespace in self._dicts:
                value = namespace.get(key, _MISSING)
                if value is not _MISSING:
                    return value
            return default
        import inspect

        return inspect.getattr_static(self.owner, key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(dir(self.owner))

    def __len__(self) -> int:
        return len(dir(self.owner))


def _lookups(
    chain: tuple[str, ...],
    module_globals: Mapping[str, Any],
    closure: Mapping[str, Any],
    owner: type | None,
    later: tuple[type, ...] = (),
) -> list[tuple[Mapping[str, Any], str, Any]]:
    """The lookups that resolving ``chain`` takes, with the object each one finds now."""
    head, rest = chain[0], chain[1:]
    if head == _SUPER:
        found: list[tuple[Mapping[str, Any], str, Any]] = []
        for klass in later:
            value = vars(klass).get(rest[0], _MISSING)
            found.append((vars(klass), rest[0], value))
            if value is not _MISSING:
                break
        return found
    if head in ("self", "cls") and owner is not None and rest:
        attributes = _ClassAttributes(owner)
        return [(attributes, rest[0], attributes.get(rest[0], _MISSING))]
    if head in closure:
        return []  # a closure's values are those of the cells when the unit was made
    value = module_globals.get(head, _MISSING)
    lookups = [(module_globals, head, value)]
    for attribute in rest:
        if not isinstance(value, types.ModuleType):
            break
        namespace = vars(value)
        value = namespace.get(attribute, _MISSING)
        lookups.append((namespace, attribute, value))
    return lookups


_units: weakref.WeakKeyDictionary[Any, _Unit] = weakref.WeakKeyDictionary()
_units_lock = threading.Lock()


def _namespaces(obj: Any) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """The module globals ``obj``'s code reads (live) and its closure's values."""
    if isinstance(obj, type):
        module = sys.modules.get(obj.__module__)
        return (vars(module) if module is not None else {}), {}
    closure_values: dict[str, Any] = {}
    code = getattr(obj, "__code__", None)
    closure = getattr(obj, "__closure__", None) or ()
    if code is not None:
        for name, cell in zip(code.co_freevars, closure, strict=False):
            with contextlib.suppress(ValueError):  # an empty cell
                closure_values[name] = cell.cell_contents
    return getattr(obj, "__globals__", {}), closure_values


def _classes_after(obj: Any, owner: type | None) -> tuple[type, ...]:
    """The classes ``super()`` searches in ``obj``: the owner's MRO after the one defining it."""
    if owner is None:
        return ()
    mro = owner.__mro__
    for index, klass in enumerate(mro):
        if any(_unwrap(value) is obj for value in vars(klass).values()):
            return mro[index + 1 :]
    return mro[1:]


def _unit(obj: Any, owner: type | None) -> _Unit:
    cached = _units.get(obj)
    if cached is not None and cached.owner is owner and cached.is_current():
        return cached
    tree = _definition(obj)
    references: list[tuple[str, Any, bool]] = []
    checks: dict[tuple[int, str], tuple[Mapping[str, Any], str, Any]] = {}
    if tree is not None:
        module_globals, closure = _namespaces(obj)
        namespace: Mapping[str, Any] = collections.ChainMap(closure, dict(module_globals))
        seen: set[str] = set()
        chains = list(_references(tree))
        later = _classes_after(obj, owner) if any(c[0] == _SUPER for c in chains) else ()
        for chain in chains:
            for lookup in _lookups(chain, module_globals, closure, owner, later):
                checks.setdefault((id(lookup[0]), lookup[1]), lookup)
            resolved = _resolve(chain, namespace, owner, later)
            if resolved is None or resolved[0] in seen:
                continue
            seen.add(resolved[0])
            references.append(resolved)
    unit = _Unit(
        _digest(_dump(tree)) if tree is not None else None,
        references,
        owner,
        list(checks.values()),
    )
    with _units_lock, contextlib.suppress(TypeError):  # not weak-referenceable: not cached
        _units[obj] = unit
    return unit


@dataclass
class _Walk:
    """A fingerprint and what it was made from, to tell whether it still holds."""

    fingerprint: CodeFingerprint
    units: list[_Unit]
    #: The lookups of all its units in one list (a unit's are fixed once it is made).
    checks: list[tuple[Mapping[str, Any], str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.checks = [check for unit in self.units for check in unit.checks]

    def is_current(self) -> bool:
        for mapping, key, found in self.checks:  # noqa: SIM110 - no generator: every load runs it
            if mapping.get(key, _MISSING) is not found:
                return False
        return True


def _walk(root: Any, owner: type | None, more: Sequence[tuple[Any, type]] = ()) -> _Walk:
    """Fingerprint ``root`` and the user code it reaches; ``more`` are further roots
    (function, class whose attributes its ``self.`` reads), e.g. the params' methods."""
    units: list[_Unit] = []
    functions: dict[str, str] = {}
    unavailable: list[str] = []
    visited: set[int] = set()
    # (object, name, class whose self./cls. attributes it reads)
    pending: list[tuple[Any, str, type | None]] = [
        (func, _qualified(func), klass) for func, klass in more
    ]
    pending.append((root, _qualified(root), owner))  # popped first: units[0] is the root's
    while pending:
        obj, name, obj_owner = pending.pop()
        if id(obj) in visited:
            continue
        visited.add(id(obj))
        unit = _unit(obj, obj_owner)
        units.append(unit)
        if unit.digest is None:
            unavailable.append(name)
            functions[name] = _UNAVAILABLE
            continue
        functions[name] = unit.digest
        for reference_name, value, via_self in unit.references:
            if id(value) in visited:
                continue
            if isinstance(value, type):
                if _is_user_code(value):
                    pending.append((value, _qualified(value), value))
            elif isinstance(value, types.FunctionType):
                if _is_user_code(value):
                    # A method reached through self.<name> keeps reading its class's attributes.
                    next_owner = obj_owner if via_self else _owner_class(value)
                    pending.append((value, _qualified(value), next_owner))
            elif isinstance(value, types.ModuleType) or (
                callable(value)
                and not isinstance(value, (functools.partial, types.MethodType))
                and not _is_user_code(type(value))
            ):
                continue  # builtins, C functions, instances of library classes
            elif not (reference_name.startswith("__") and reference_name.endswith("__")):
                # A module constant (or a closure's value), read by user code; module
                # dunders (__file__, __name__) say where the code is, not what it does.
                # The user code inside it (a dispatch table of functions, a partial, an
                # instance of a user class) is walked too.
                described, code = describe(reference_name, value, _is_user_code)
                if described is not None:
                    module = getattr(obj, "__module__", "?")
                    functions.setdefault(
                        f"{module}.{reference_name}",
                        _digest(["constant", reference_name, described]),
                    )
                for item in code:
                    if id(item) not in visited:
                        item_owner = item if isinstance(item, type) else _owner_class(item)
                        pending.append((item, _qualified(item), item_owner))
    root_name = _qualified(root)
    ordered = {root_name: functions.pop(root_name)} | dict(sorted(functions.items()))
    result = CodeFingerprint(
        # Over the entries' digests, not their module names (each digest holds its own
        # short name): a script's code keys the same run as __main__ or imported.
        digest=_digest(["fingerprint", sorted(ordered.values())]),
        functions=ordered,
        unavailable=tuple(unavailable),
    )
    return _Walk(result, units)


def _owner_class(func: Callable[..., Any]) -> type | None:
    """The class a method is defined in, from its qualified name (None for nested functions)."""
    qualname = func.__qualname__
    if "<locals>" in qualname:
        return None
    module = sys.modules.get(func.__module__)
    value: Any = module
    for part in qualname.split(".")[:-1]:
        value = getattr(value, part, None)
    return value if isinstance(value, type) else None


_fingerprints: weakref.WeakKeyDictionary[Any, _Walk] = weakref.WeakKeyDictionary()


def _warn_unreadable(result: CodeFingerprint, root: str) -> None:
    """Say once (per root: results are cached) that some code's changes cannot be seen."""
    if not result.unavailable:
        return
    from persistable._warn import warn_at_caller
    from persistable.exceptions import UnreadableCodeWarning

    names = ", ".join(result.unavailable[:5]) + (" ..." if len(result.unavailable) > 5 else "")
    warn_at_caller(
        f"The source of {names} cannot be read (it was defined in an interactive session, "
        f"by exec(), or is compiled), so changes to it are invisible to the code fingerprint "
        f"of {root}: they neither warn nor regenerate; define that code in a .py file, or "
        "set version= and change it by hand whenever the code changes.",
        UnreadableCodeWarning,
    )


def fingerprint(func: Callable[..., Any]) -> CodeFingerprint:
    """The fingerprint of ``func`` and of the user code it reaches.

    Cached per function object, and checked on every call: a name the code reads that
    now denotes another object (a function or constant redefined in a notebook) makes a
    new fingerprint. A list or dict constant changed in place is not looked at again
    (code that keeps state in a global would otherwise never hit its cache).

    Warns :class:`~persistable.exceptions.UnreadableCodeWarning` when a new fingerprint finds
    code without readable source.
    """
    cached = _fingerprints.get(func)
    if cached is None or not cached.is_current():
        target = _unwrap(func)
        owner = _owner_class(target) if isinstance(target, types.FunctionType) else None
        cached = _walk(target, owner)
        with contextlib.suppress(TypeError):  # not weak-referenceable: not cached
            _fingerprints[func] = cached
        _warn_unreadable(cached.fingerprint, _qualified(target))
    return cached.fingerprint


#: Per persistable class: the params class it was made with, and the walk.
_class_fingerprints: weakref.WeakKeyDictionary[type, tuple[type | None, _Walk]] = (
    weakref.WeakKeyDictionary()
)


def _params_methods(params_type: type | None) -> list[tuple[Any, type]]:
    """The methods written in the user's params classes (``dataclass``'s generated ones,
    which have no source, are left out): code that ``self.params.scaled()`` runs."""
    if params_type is None:
        return []
    methods: list[tuple[Any, type]] = []
    for klass in params_type.__mro__:
        if not _is_user_code(klass):
            continue
        for value in vars(klass).values():
            func = _unwrap(value)
            if isinstance(func, types.FunctionType) and _is_user_file(func.__code__.co_filename):
                methods.append((func, params_type))
    return methods


def persistable_fingerprint(cls: type, params_type: type | None = None) -> CodeFingerprint:
    """The fingerprint of ``cls._generate_payload`` with ``self.`` attributes looked up on
    ``cls``, and of the methods of ``params_type`` (the params class) and what they reach.

    Warns :class:`~persistable.exceptions.UnreadableCodeWarning` when a new fingerprint finds
    code without readable source (unless the class sets ``code_changes = "ignore"``).
    """
    # As inspect.getattr_static, by the class dicts (this runs on every commit and load).
    method = _unwrap(_static_attribute(cls, "_generate_payload"))
    entry = _class_fingerprints.get(cls)
    cached = entry[1] if entry is not None and entry[0] is params_type else None
    if cached is None or cached.units[0] is not _units.get(method) or not cached.is_current():
        cached = _walk(method, cls, _params_methods(params_type))
        _class_fingerprints[cls] = (params_type, cached)
        if getattr(cls, "code_changes", None) != "ignore":
            _warn_unreadable(cached.fingerprint, cls.__qualname__)
    return cached.fingerprint
