"""``@step``: a typed function as a persistable step (load or compute, like ``joblib.Memory``)."""

from __future__ import annotations

import collections
import functools
import importlib
import inspect
import keyword
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, ParamSpec, TypeVar, cast

from persistable import _keys
from persistable._explain import Explanation
from persistable._fingerprint import CodeFingerprint, fingerprint
from persistable._persistable import Persistable
from persistable.io import FileIO
from persistable.params import encode_value
from persistable.steps._binding import BoundCall, StepParams, bind_call, plain_parameters
from persistable.steps._call_keys import CallKeys, memo_entry
from persistable.steps._errors import StepDefinitionError, StepOutputError
from persistable.steps._identity import CODE_CHANGES, CodeChanges, default_payload_name
from persistable.store import Store, StoreLike, make_store

__all__ = ["Step", "StepPersistable", "step"]

P = ParamSpec("P")
R = TypeVar("R")


class StepPersistable(Persistable[R, StepParams]):
    """One call of a :class:`Step`, not computed yet: a :class:`~persistable.Persistable`.

    Its params are the call's arguments; the persistables among them are its tracked
    dependencies (under their parameter names); the function receives their payloads.
    Pass it to :func:`persistable.run`, to another step, or use it like any persistable.
    """

    #: Each step decides (see :func:`step`); this class default is never used for a key.
    code_changes: ClassVar[CodeChanges] = "rerun"

    def __init__(self, step: Step[..., R], call: BoundCall) -> None:
        super().__init__(
            step.store,
            call.params,
            call.dependencies or None,
            payload_name=step.payload_name,
            payload_io=step.payload_io,
            verbose=step.verbose,
        )
        self.step = step
        self.code_changes = step.code_changes  # type: ignore[misc]  # per step, not per class
        # (mutation epoch, key) set by the step for a call whose key it remembers.
        self._known_key: tuple[int, str] | None = None

    @classmethod
    def _like(
        cls, prototype: StepPersistable[R], containers: tuple[str, ...], params: StepParams
    ) -> StepPersistable[R]:
        """What ``__init__`` makes for ``params`` (no dependencies), copied from ``prototype``.

        Everything ``__init__`` sets besides the params is the step's (store, names,
        FileIO, logger), so a copy of a prototype's state with these params is the same
        object for a fraction of the cost; ``containers`` names the prototype's list and
        dict attributes, which each copy gets its own of. tests/test_steps_fast.py pins
        that the copy equals what ``__init__`` builds.
        """
        clone = cls.__new__(cls)
        state = prototype.__dict__.copy()
        for name in containers:
            state[name] = state[name].copy()
        state["params"] = params
        clone.__dict__.update(state)
        return clone

    @property
    def persist_hash(self) -> str:
        """The key (remembered by the step for plain arguments, else hashed)."""
        known = self._known_key
        if known is not None and known[0] == _keys.current_epoch():
            return known[1]  # nothing was assigned anywhere since the step looked it up
        return super().persist_hash

    def code_fingerprint(self) -> CodeFingerprint:
        """The fingerprint of the step's function and the user code it reaches."""
        return self.step.fingerprint()

    def key_tree(self) -> dict[str, Any]:
        tree = super().key_tree()
        step = self.step
        if step.version is not None:
            tree["version"] = encode_value(step.version, f"version of step {step.payload_name}")
        return tree

    def _generate_payload(self, **untracked_payload_params: Any) -> R:
        step = self.step
        arguments = dict(self.params.arguments)
        for name, dependency in self._by_role(lambda dependency: dependency).items():
            arguments[name] = (
                [_value_of(item) for item in dependency]
                if isinstance(dependency, list)
                else _value_of(dependency)
            )
        ordered = collections.OrderedDict(
            (name, arguments[name]) for name in step.signature.parameters if name in arguments
        )
        bound = inspect.BoundArguments(step.signature, ordered)
        result = step.function(*bound.args, **bound.kwargs)
        return cast(R, step.check_outputs(result))

    @property
    def value(self) -> R:
        """The payload as the function returned it (a named tuple for several ``outputs``)."""
        return cast(R, self.step.wrap_outputs(self.payload))


def _value_of(dependency: Persistable[Any, Any]) -> Any:
    if isinstance(dependency, StepPersistable):
        return dependency.value
    return dependency.payload


def _find_step(module: str, qualname: str) -> Step[..., Any]:
    """The step object a module defines under ``qualname`` (how steps of importable modules unpickle)."""
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, Step):
        raise StepDefinitionError(f"{module}.{qualname} is no longer a step.")
    return target


class Step(Generic[P, R]):
    """A function made persistable by :func:`step`; calling it loads or computes its result.

    Calling returns the value (loaded when an artifact of the same arguments and code
    exists, else computed and persisted under the per-key lock). ``bind(...)`` returns
    a :class:`StepPersistable` without computing anything; ``key``, ``exists``,
    ``explain`` and ``delete`` take the same arguments as the function.
    """

    def __init__(
        self,
        function: Callable[P, R],
        *,
        data_dir: StoreLike,
        payload_name: str | None = None,
        payload_io: FileIO[Any] | None = None,
        version: str | int | None = None,
        code_changes: CodeChanges = "rerun",
        untracked: Iterable[str] = (),
        outputs: Sequence[str] | None = None,
        verbose: bool = False,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        _check_function(function)
        self.function = function
        self.payload_name = (
            payload_name if payload_name is not None else default_payload_name(function)
        )
        self.signature = inspect.signature(function)
        self._plain = plain_parameters(self.signature)
        name = getattr(function, "__qualname__", self.payload_name)
        #: The function's qualified name, for messages.
        self.name: str = name
        self.untracked = frozenset(untracked)
        unknown = sorted(self.untracked - set(self.signature.parameters))
        if unknown:
            raise StepDefinitionError(
                f"untracked= names {unknown[0]!r}, which is not a parameter of {name}(); "
                f"its parameters are {list(self.signature.parameters)}."
            )
        if code_changes not in CODE_CHANGES:
            raise StepDefinitionError(
                f"code_changes must be one of {', '.join(map(repr, CODE_CHANGES))} "
                f"(got {code_changes!r}) for step {name}."
            )
        self.code_changes: CodeChanges = code_changes
        self.version = version
        self.outputs = _check_outputs(outputs, name)
        self._output_type: Any = (
            None
            if self.outputs is None
            else collections.namedtuple(f"{name.rsplit('.', 1)[-1]}_outputs", self.outputs)
        )
        self.data_dir = data_dir
        self.storage_options = storage_options
        self.payload_io = payload_io
        self.verbose = verbose
        self._store: Store | None = None
        self._fingerprint: CodeFingerprint | None = None
        # (the options it copies, the prototype, its list and dict attributes)
        self._prototype: tuple[tuple[Any, ...], StepPersistable[R], tuple[str, ...]] | None = None
        self._call_keys = CallKeys()
        functools.update_wrapper(self, function)

    # -- pieces used by StepPersistable ------------------------------------------------

    @property
    def store(self) -> Store:
        """The store of this step's artifacts (built on first use, then shared by every call)."""
        if self._store is None:
            self._store = make_store(self.data_dir, storage_options=self.storage_options)
        return self._store

    def fingerprint(self) -> CodeFingerprint:
        """The fingerprint of the function and the user code it reaches.

        A step that travels by value (defined in ``__main__`` or a notebook) carries the
        fingerprint computed where it was defined, so a worker process that cannot read
        the notebook's source still computes the same key.
        """
        if self._fingerprint is not None:  # carried from the process that defined the step
            return self._fingerprint
        return fingerprint(self.function)  # cached, and checked for redefined names

    def check_outputs(self, result: Any) -> Any:
        """``result`` as it is persisted: a plain tuple of the declared ``outputs``, checked."""
        if self.outputs is None:
            return result
        count = len(self.outputs)
        if not isinstance(result, tuple) or len(result) != count:
            got = (
                f"a tuple of {len(result)}"
                if isinstance(result, tuple)
                else f"a value of type {type(result).__name__}"
            )
            raise StepOutputError(
                f"step {self.payload_name} declares outputs={self.outputs!r} but its function "
                f"returned {got}; return a tuple of {count} values, one per output."
            )
        return tuple(result)

    def wrap_outputs(self, payload: Any) -> Any:
        """The persisted ``payload`` as the caller sees it (a named tuple for ``outputs``)."""
        if self._output_type is None:
            return payload
        return self._output_type(*payload)

    # -- the user's API ------------------------------------------------------------------

    def bind(self, *args: Any, **kwargs: Any) -> StepPersistable[R]:
        """A :class:`StepPersistable` for these arguments: nothing is computed or loaded.

        Arguments may be bound steps or any persistables: they become tracked
        dependencies, keyed by their keys, and the function receives their payloads.
        """
        persistable = self._bind(args, kwargs)
        persistable.params.to_dict()  # an argument without an encoding fails here, not in a worker
        return persistable

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> StepPersistable[R]:
        call = bind_call(
            self.signature,
            args,
            kwargs,
            step_name=self.name,
            untracked_names=self.untracked,
            plain=self._plain,
        )
        if call.dependencies:
            return StepPersistable(self, call)
        # The options a prototype copies; it is rebuilt when one of them is assigned.
        options = (self.store, self.payload_name, self.payload_io, self.code_changes, self.verbose)
        held = self._prototype
        if held is None or held[0] != options:
            prototype = StepPersistable(self, BoundCall(StepParams()))
            containers = tuple(
                name
                for name, value in prototype.__dict__.items()
                if isinstance(value, (list, dict, set))
            )
            held = self._prototype = (options, prototype, containers)
        return StepPersistable._like(held[1], held[2], call.params)

    def _keyed(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> StepPersistable[R]:
        """``_bind``, with the key of plain arguments remembered from an earlier call."""
        persistable = self._bind(args, kwargs)
        if persistable.tracked_persistable_dependencies:
            return persistable
        entry = memo_entry(persistable.params)
        if entry is None:
            return persistable
        version = self.version
        identity = (
            self.payload_name,
            type(version),
            version,
            self.code_changes,
            self.fingerprint().digest if self.code_changes == "rerun" else None,
        )
        key = self._call_keys.get(identity, entry)
        if key is None:
            key = persistable.persist_hash
            self._call_keys.put(identity, entry, key)
        persistable.__dict__["_known_key"] = (
            _keys.current_epoch(),
            key,
        )  # not an identity attribute
        return persistable

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Load the result of these arguments, or compute and persist it."""
        persistable = self._keyed(args, kwargs)
        persistable.load_generate()
        if persistable._has_payload:
            # Just loaded or computed for this call's key; nothing can have reassigned this
            # private object since, so the payload property's key re-check is skipped.
            return cast(R, self.wrap_outputs(persistable._payload))
        return persistable.value

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key of these arguments (nothing is computed)."""
        return self._keyed(args, kwargs).persist_hash

    def exists(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Whether an artifact exists for these arguments."""
        return self._keyed(args, kwargs).exists()

    def explain(self, *args: P.args, **kwargs: P.kwargs) -> Explanation:
        """Why a call with these arguments would load or compute (printable; HTML in notebooks)."""
        explanation = self._bind(args, kwargs).explain()
        explanation.class_name = f"step {self.name}()"  # not the class every step shares
        return explanation

    def delete(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Delete the artifact of these arguments; False when there was none."""
        persistable = self._bind(args, kwargs)
        store = persistable.store
        key = persistable.persist_hash
        with store.lock(self.payload_name, key):
            if not store.has_artifact(self.payload_name, key):
                return False
            store.remove_dir(store.artifact_dir(self.payload_name, key))
        return True

    def replace(self, **changes: Any) -> Step[P, R]:
        """A copy of this step with some decorator options changed (e.g. ``data_dir=``)."""
        options = self._options()
        unknown = sorted(set(changes) - set(options))
        if unknown:
            raise StepDefinitionError(
                f"replace() got {unknown[0]!r}, which is not a step option; the options are "
                f"{sorted(options)}."
            )
        return Step(self.function, **(options | changes))

    def __repr__(self) -> str:
        return f"<step {self.payload_name} in {self.store.url!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # A step of an importable module travels by name (the worker imports it); a step of
        # __main__ or a notebook travels by value (cloudpickle pickles its function whole).
        module = getattr(self.function, "__module__", None)
        qualname = getattr(self.function, "__qualname__", "")
        if module and module != "__main__" and "<" not in qualname:
            try:
                found = _find_step(module, qualname)
            except (ImportError, AttributeError, StepDefinitionError):
                found = None
            if found is self:
                return (_find_step, (module, qualname))
        code = None if self.code_changes == "ignore" else self.fingerprint()
        return (_restore_step, (self.function, self._options(), code))

    def _options(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir,
            "payload_name": self.payload_name,
            "payload_io": self.payload_io,
            "version": self.version,
            "code_changes": self.code_changes,
            "untracked": tuple(sorted(self.untracked)),
            "outputs": self.outputs,
            "verbose": self.verbose,
            "storage_options": self.storage_options,
        }


def _restore_step(
    function: Callable[..., Any], options: dict[str, Any], code: CodeFingerprint | None = None
) -> Step[..., Any]:
    restored: Step[..., Any] = Step(function, **options)
    restored._fingerprint = code
    return restored


def _check_function(function: Any) -> None:
    if isinstance(function, Step):
        raise StepDefinitionError(f"{function!r} is already a step; apply @step once.")
    if inspect.isclass(function) or not callable(function):
        raise StepDefinitionError(
            f"@step decorates functions (got {function!r:.80}); for classes subclass Persistable."
        )
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        raise StepDefinitionError(
            f"{function!r:.80} is an async function, whose result (a coroutine) cannot be "
            "persisted; wrap it in a plain function that runs it."
        )
    if inspect.isgeneratorfunction(function):
        raise StepDefinitionError(
            f"{function!r:.80} is a generator function, whose result cannot be persisted; "
            "return a list instead."
        )


def _check_outputs(outputs: Sequence[str] | None, name: str) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if isinstance(outputs, str):
        raise StepDefinitionError(
            f"outputs of step {name} must be a sequence of names (got the string {outputs!r}); "
            f"write outputs=({outputs!r},)."
        )
    names: tuple[Any, ...] = tuple(outputs)
    bad = [
        item
        for item in names
        if not isinstance(item, str)
        or not item.isidentifier()
        or keyword.iskeyword(item)
        or item.startswith("_")
    ]
    if not names or bad or len(set(names)) != len(names):
        raise StepDefinitionError(
            f"outputs of step {name} must be distinct identifiers not starting with '_' "
            f"(got {names!r})."
        )
    return names


def step(
    *,
    data_dir: StoreLike,
    payload_name: str | None = None,
    payload_io: FileIO[Any] | None = None,
    version: str | int | None = None,
    code_changes: CodeChanges = "rerun",
    untracked: Iterable[str] = (),
    outputs: Sequence[str] | None = None,
    verbose: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> Callable[[Callable[P, R]], Step[P, R]]:
    """Turn a function into a persistable :class:`Step`.

    Parameters
    ----------
    data_dir
        Where the artifacts live: a folder, an fsspec URL or a Store.
    payload_name
        Folder of the artifacts in the store; defaults to ``module.qualname`` of the
        function (``qualname`` in ``__main__``). Required for lambdas and closures.
    payload_io
        The FileIO of the return value (default pickle).
    version
        Bump to invalidate every artifact of this step.
    code_changes
        ``"rerun"`` (default): the code fingerprint is part of the key, so an edited
        function computes again; ``"warn"`` or ``"ignore"``: it is not.
    untracked
        Parameter names passed to the function but left out of the key (``("n_jobs",)``).
    outputs
        Names of several return values: the function returns a tuple of as many values,
        callers receive a named tuple; they are one artifact.
    verbose
        Show INFO messages of this step on the console.
    storage_options
        Passed to fsspec when ``data_dir`` is a URL.
    """

    def decorate(function: Callable[P, R]) -> Step[P, R]:
        return Step(
            function,
            data_dir=data_dir,
            payload_name=payload_name,
            payload_io=payload_io,
            version=version,
            code_changes=code_changes,
            untracked=untracked,
            outputs=outputs,
            verbose=verbose,
            storage_options=storage_options,
        )

    return decorate
