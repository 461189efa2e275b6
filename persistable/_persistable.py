"""``Persistable[PayloadT, ParamsT]``: parameter-based generate, persist and load of one payload."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    NamedTuple,
    TypeVar,
    Union,
    cast,
)

from persistable import _keys
from persistable._added_later import changed_upstream, upstream_digest
from persistable._artifact import (
    GENERATION_LOG_FIELD,
    GENERATION_LOG_FILE,
    INLINE_LOG_LIMIT,
    PARAMS_FILE,
    HashingWriter,
    build_metadata,
    bytes_record,
    dump_json,
    dump_metadata,
    file_record,
)
from persistable._content import display_paths
from persistable._hashing import KEY_SCHEME
from persistable._keys import key_cache as key_cache
from persistable._logging import GenerationLogCapture, enable_console, payload_logger
from persistable._mutability import key_changes_only_by_assignment
from persistable._v1._persistable import V1PersistableMethods
from persistable._warn import warn_at_caller
from persistable.exceptions import (
    ArtifactNotFoundError,
    CodeChangedWarning,
    CorruptArtifactError,
    DependencyError,
    ExplainedNotImplementedError,
    ForeignArtifactWarning,
    InvalidParamsError,
    InvalidPayloadNameError,
    InvalidPayloadWarning,
    KeyMismatchError,
    LockTimeoutError,
    NoPayloadError,
    PayloadSerializationError,
    PersistableDefinitionError,
    QuarantineWarning,
)
from persistable.io import FileIO, PickleFileIO
from persistable.params import (
    PersistableParams,
    encode_value,
    omitted_defaults,
    tracked_field_names,
)
from persistable.store import Store, StoreLike, Transaction, make_store

if TYPE_CHECKING:
    from typing_extensions import Self

    from persistable._explain import Explanation
    from persistable._fingerprint import CodeFingerprint
    from persistable._spool import SpoolingWriter
    from persistable.artifact import Artifact
    from persistable.io._folder import FolderFileIO

# What only generating, loading or inspecting needs (the code fingerprint, the artifact
# handle, folder payloads, spooling, upstream checks, map) is imported where it is used:
# ``import persistable`` stays fast.

__all__ = ["Dependencies", "Persistable", "PersistableParamsT"]


# Those of them that every load or commit uses are kept once imported: an import
# statement in a function costs about a microsecond on each call.
@functools.cache
def _artifact_class() -> type[Artifact]:
    from persistable.artifact._handle import Artifact

    return Artifact


@functools.cache
def _fingerprint_function() -> Callable[[type, type | None], CodeFingerprint]:
    from persistable._fingerprint import persistable_fingerprint

    return persistable_fingerprint


@functools.cache
def _folder_io() -> tuple[type[FolderFileIO[Any]], Callable[..., dict[str, dict[str, Any]]]]:
    from persistable.io._folder import FolderFileIO, write_folder

    return FolderFileIO, write_folder


class _CommitHelpers(NamedTuple):
    use_stored_upstream_payloads: Callable[[Persistable[Any, Any], logging.Logger, list[str]], None]
    stored_is_identical: Callable[[Artifact, dict[str, Any]], bool]
    record_lineage: Callable[[Store, str, str, bytes], None]


@functools.cache
def _commit_helpers() -> _CommitHelpers:
    """What generating and committing use, imported by the first generation."""
    from persistable import _lineage_feed
    from persistable._pristine import use_stored_upstream_payloads
    from persistable.artifact._same import stored_is_identical

    return _CommitHelpers(use_stored_upstream_payloads, stored_is_identical, _lineage_feed.record)


@functools.cache
def _spooling_writer() -> type[SpoolingWriter]:
    from persistable._spool import SpoolingWriter

    return SpoolingWriter


logger = logging.getLogger(__name__)

PayloadT = TypeVar("PayloadT")
PersistableParamsT = TypeVar("PersistableParamsT", bound=PersistableParams)

#: What ``tracked_persistable_dependencies`` accepts: persistables (each under its
#: payload name), or roles mapped to one persistable or a sequence of them.
Dependencies = Union[  # noqa: UP007 - the forward references need Union at runtime
    Iterable["Persistable[Any, Any]"],
    Mapping[str, Union["Persistable[Any, Any]", Sequence["Persistable[Any, Any]"]]],
]

CodeChanges = Literal["warn", "rerun", "ignore"]
_CODE_CHANGES = ("warn", "rerun", "ignore")
#: What an artifact records of its identity: lineage (params.json), dependency keys
#: by role, and ``[payload_name, key]`` of each tracked dependency (metadata.json).
_Identity = tuple[dict[str, Any], dict[str, Any], list[list[str]]]

#: Attributes a key depends on: assigning one makes a payload held in memory stale.
_IDENTITY_ATTRIBUTES = frozenset(
    {"params", "payload_name", "tracked_persistable_dependencies", "_dependency_roles", "version"}
)

_CAMEL_1 = re.compile(r"(.)([A-Z][a-z]+)")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
# fullmatch, not match with "$": "$" also matches before a trailing newline.
_VALID_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_MAX_NAME = 200


@functools.lru_cache(maxsize=1024)  # called by every constructor, with few distinct names
def _camel_to_snake(name: str) -> str:
    return _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name)).lower()


def _check_payload_name(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidPayloadNameError(
            f"payload_name must be a str (got {name!r} that is a {type(name).__name__})."
        )
    if (
        not name
        or len(name) > _MAX_NAME
        or not _VALID_NAME.fullmatch(name)
        or ".." in name
        or name.endswith(".")  # Windows drops a trailing dot: "model." would be "model"
    ):
        raise InvalidPayloadNameError(
            f"payload_name {name!r} is not allowed: use 1-{_MAX_NAME} letters, digits, '_', '-' "
            "or '.', not starting with '.' or '-', not ending with '.', and without '..' or "
            "path separators, so it names exactly one folder inside the store."
        )
    return name


def _names(names: list[str], shown: int = 5) -> str:
    """``a, b and c`` (at most ``shown`` names, then how many more)."""
    if len(names) > shown:
        return ", ".join(names[:shown]) + f" and {len(names) - shown} more"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + f" and {names[-1]}"


def _check_params(params: object, owner: str) -> None:
    if not isinstance(params, PersistableParams) or not dataclasses.is_dataclass(params):
        raise InvalidParamsError(
            f"params of {owner} must be an instance of a @dataclass subclass of "
            f"PersistableParams (got {params!r:.80} that is a {type(params).__name__}); "
            "declare it as `@dataclass class MyParams(PersistableParams): ...`."
        )


class Persistable(V1PersistableMethods, Generic[PayloadT, PersistableParamsT]):
    """A payload made from params (and tracked upstream persistables), persisted under a key.

    Subclass it, implement :meth:`_generate_payload`, and call :meth:`load_generate`:
    the first call generates the payload and commits it to the store as an artifact
    ``<data_dir>/<payload_name>/<key>/``; every later call with the same params and
    the same upstream keys, anywhere, loads it.

    Parameters
    ----------
    data_dir
        Where artifacts live: a folder (``Path`` or str), an fsspec URL
        (``"s3://bucket/prefix"``, ``"memory://name"``) or a :class:`~persistable.store.Store`.
    params
        A :class:`~persistable.PersistableParams` dataclass instance.
    tracked_persistable_dependencies
        Upstream persistables whose keys take part in this one's key (None for none):
        an iterable, each entering the key under its ``payload_name`` (two with one name
        are refused), or a mapping from a role name to one persistable or to a sequence
        of them (a fan-in, e.g. a dataset-level step over every sample; the sequence's
        order is part of the key).
    payload_name
        Folder name of this payload in the store; defaults to the snake_case class name.
    payload_io
        The :class:`~persistable.io.FileIO` that writes the payload (default pickle).
    payload_file_suffix
        Suffix of the payload file; defaults to the FileIO's own (``.pkl``, ``.npy``...).
    verbose
        Show INFO messages of this persistable on the console.
    logger
        Log through this logger instead of ``persistable.payload.<payload_name>``.
    storage_options
        Passed to fsspec when ``data_dir`` is a URL (endpoint, profile, anon...).
    fallback_stores
        Stores searched, in order and read-only, when ``data_dir`` lacks an artifact
        (e.g. a colleague's S3 cache); pass Store objects to give storage options or
        ``trusted=False``. New artifacts always go to ``data_dir``.
    copy_from_fallback
        Copy an artifact found in a fallback store into ``data_dir``.
    """

    #: Bump to invalidate every artifact of a class after a change of its code: the
    #: explicit override of the code fingerprint, e.g. after a change in an installed
    #: package or a data file that the fingerprint cannot see.
    version: ClassVar[str | int | None] = None
    #: What a change of the code fingerprint (``_generate_payload`` and the user code it
    #: reaches) does: ``"warn"`` (the key stays; loading an artifact made by other code
    #: emits :class:`CodeChangedWarning` naming what changed), ``"rerun"`` (the
    #: fingerprint is part of the key, so changed code makes new artifacts) or ``"ignore"``.
    code_changes: ClassVar[CodeChanges] = "warn"
    #: FileIO used when none is passed; subclasses may set e.g. ``NpyFileIO()``.
    default_payload_io: ClassVar[FileIO[Any] | None] = None
    #: Seconds load_generate() waits for another worker generating the same key
    #: (None: as long as that worker holds the lock); then :class:`LockTimeoutError`.
    lock_timeout: float | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code_changes not in _CODE_CHANGES:
            raise PersistableDefinitionError(
                f"{cls.__qualname__}.code_changes must be one of {', '.join(map(repr, _CODE_CHANGES))} "
                f"(got {cls.code_changes!r}); use 'warn' to be told about changed code, "
                "'rerun' to make code part of the key, or 'ignore'."
            )

    def __init__(
        self,
        data_dir: StoreLike,
        params: PersistableParamsT,
        tracked_persistable_dependencies: Dependencies | None = None,
        *,
        payload_name: str | None = None,
        payload_io: FileIO[PayloadT] | None = None,
        payload_file_suffix: str | None = None,
        verbose: bool = False,
        logger: logging.Logger | None = None,
        storage_options: dict[str, Any] | None = None,
        fallback_stores: Iterable[StoreLike] | None = None,
        copy_from_fallback: bool = False,
    ) -> None:
        _check_params(params, type(self).__name__)
        self.params: PersistableParamsT = params
        self.payload_name = _check_payload_name(
            _camel_to_snake(type(self).__name__) if payload_name is None else payload_name
        )
        flat, roles = self._check_dependencies(tracked_persistable_dependencies)
        #: Every tracked dependency, flat (what the runner walks).
        self.tracked_persistable_dependencies: list[Persistable[Any, Any]] = flat
        # The role of each entry of the flat list: (name in the key tree, part of a sequence).
        self._dependency_roles: list[tuple[str, bool]] = roles
        self.store: Store = make_store(data_dir, storage_options=storage_options)
        #: Read-only stores searched, in order, when the primary store lacks an artifact.
        self.fallback_stores: list[Store] = [
            make_store(fallback, read_only=True) for fallback in fallback_stores or ()
        ]
        self.copy_from_fallback = copy_from_fallback
        self.data_dir = data_dir
        io = payload_io if payload_io is not None else self.default_payload_io
        self.payload_io: FileIO[PayloadT] = io if io is not None else PickleFileIO()
        self.payload_file_suffix = (
            payload_file_suffix if payload_file_suffix is not None else self.payload_io.suffix
        )
        if "/" in self.payload_file_suffix or "\\" in self.payload_file_suffix:
            raise InvalidPayloadNameError(
                f"payload_file_suffix {self.payload_file_suffix!r} must not contain path separators."
            )
        self.logger = logger if logger is not None else payload_logger(self.payload_name)
        self.verbose = verbose
        if verbose:
            enable_console(self.logger)
        self._payload: PayloadT | None = None
        self._has_payload = False
        # (mutation epoch, dependency ids, key) of the payload held in memory.
        self._payload_state: tuple[int, tuple[int, ...], str] | None = None
        # (mutation epoch, whether the key can change only by an assignment): _mutability.py.
        self._assignment_keyed: tuple[int, bool] | None = None

    if not TYPE_CHECKING:  # hidden from type checkers, which then still catch misspelt attributes

        def __setattr__(self, name: str, value: Any) -> None:
            super().__setattr__(name, value)
            if name in _IDENTITY_ATTRIBUTES:
                _keys.bump_epoch()

    def _check_dependencies(
        self, dependencies: Dependencies | None
    ) -> tuple[list[Persistable[Any, Any]], list[tuple[str, bool]]]:
        flat: list[Persistable[Any, Any]] = []
        roles: list[tuple[str, bool]] = []
        groups: list[str] = []  # one name per key-tree entry, to refuse duplicates
        if dependencies is None:
            pass
        elif isinstance(dependencies, Mapping):
            for role, value in dependencies.items():
                if not isinstance(role, str) or not role:
                    raise DependencyError(
                        f"The roles of the tracked dependencies of {type(self).__name__} must be "
                        f"non-empty strings (got {role!r}); name each role, e.g. {{'samples': [...]}}."
                    )
                if isinstance(value, Persistable):
                    flat.append(value)
                    roles.append((role, False))
                else:
                    members: list[Any] = list(value)
                    flat.extend(members)
                    roles.extend((role, True) for _ in members)
                groups.append(role)
        else:
            flat = list(dependencies)
            roles = [(getattr(dependency, "payload_name", ""), False) for dependency in flat]
            groups = [role for role, _ in roles]
        for dependency in flat:
            if not isinstance(dependency, Persistable):
                raise DependencyError(
                    f"tracked_persistable_dependencies of {type(self).__name__} must hold Persistable "
                    f"instances (got {dependency!r:.80} that is a {type(dependency).__name__})."
                )
        seen: set[str] = set()
        for role in groups:
            if role in seen:
                raise DependencyError(
                    f"{type(self).__name__} has two tracked dependencies named {role!r}; give "
                    "them distinct payload_name values, or pass a mapping such as "
                    f"{{{role!r}: [first, second]}} so both take part in the key."
                )
            seen.add(role)
        clashes = sorted(seen & set(tracked_field_names(self.params)))
        if clashes:
            # params_tree nests each dependency's params under its name, next to this
            # persistable's own fields: a clash would hide one of them in params.json.
            raise DependencyError(
                f"{type(self).__name__} has a params field and a tracked dependency both named "
                f"{clashes[0]!r}; rename the field or pass payload_name= to the dependency."
            )
        return flat, roles

    def _by_role(self, value: Callable[[Persistable[Any, Any]], Any]) -> dict[str, Any]:
        """``value(dependency)`` of every tracked dependency, grouped by role name."""
        grouped: dict[str, Any] = {}
        for dependency, role, many in self._roles():
            if many:
                grouped.setdefault(role, []).append(value(dependency))
            else:
                grouped[role] = value(dependency)
        return grouped

    @classmethod
    def map(
        cls,
        params: Iterable[Any],
        data_dir: StoreLike,
        tracked_persistable_dependencies: Any = None,
        **kwargs: Any,
    ) -> list[Self]:
        """One persistable per params item, all sharing one store; pass them to ``persistable.run``.

        ``tracked_persistable_dependencies`` may be one list shared by all, one list per
        params item, or a function ``params -> dependencies``; other keyword arguments go
        to the constructor. :func:`persistable.run.grid` builds params over a grid.
        """
        from persistable._map import map_persistables

        return map_persistables(
            cls,
            params,
            data_dir=data_dir,
            tracked_persistable_dependencies=tracked_persistable_dependencies,
            **kwargs,
        )

    # -- identity -----------------------------------------------------------------

    @property
    def params_tree(self) -> dict[str, Any]:
        """The params of this persistable and, under their payload names (or roles), of its tracked dependencies."""
        return _keys.params_tree(self)

    def lineage(self) -> dict[str, Any]:
        """What ``params.json`` holds: own params and each dependency's payload name and key.

        Its size does not grow with the depth of the chain; :attr:`params_tree` follows
        the dependencies for the full upstream tree.
        """
        with display_paths():
            own = self.params.to_dict()
        return own | self._by_role(
            lambda dependency: {
                "payload_name": dependency.payload_name,
                "key": dependency.persist_hash,
            }
        )

    def _roles(self) -> Iterator[tuple[Persistable[Any, Any], str, bool]]:
        """Each tracked dependency with its role name and whether the role is a sequence."""
        roles = self._dependency_roles
        for index, dependency in enumerate(self.tracked_persistable_dependencies):
            # Entries appended to the flat list after construction count under their name.
            role, many = roles[index] if index < len(roles) else (dependency.payload_name, False)
            yield dependency, role, many

    def _dependency_order(self) -> list[str]:
        """The dependencies' names (payload names or roles) in the order they were given."""
        return list(dict.fromkeys(role for _, role, _ in self._roles()))

    def dependency_keys(self) -> dict[str, Any]:
        """Keys of the tracked dependencies by payload name or role (a list for a sequence role)."""
        return self._by_role(lambda dependency: dependency.persist_hash)

    def key_tree(self) -> dict[str, Any]:
        """Everything the key is hashed from (see docs/architecture.md, "Keys")."""
        tree: dict[str, Any] = {
            "key_scheme": KEY_SCHEME,
            "payload_name": self.payload_name,
            "params": self.params.to_dict(),
            "dependencies": self.dependency_keys(),
        }
        order = self._dependency_order()
        if order != sorted(order):
            # User code may read dependencies by position: [a, b] and [b, a] are other
            # inputs. Payload-name order adds nothing, so keys made before stay.
            tree["dependency_order"] = order
        if self.version is not None:
            tree["version"] = encode_value(self.version, f"{type(self).__name__}.version")
        if self.code_changes == "rerun":
            tree["code"] = self.code_fingerprint().digest
        return tree

    def code_fingerprint(self) -> CodeFingerprint:
        """The fingerprint of ``_generate_payload``, the methods of the params class, and
        the user code they reach (cached per class, checked on each use)."""
        return _fingerprint_function()(type(self), type(self.params))

    @property
    def persist_hash(self) -> str:
        """The key: ``k1-`` + SHA-256 of the canonical key tree."""
        return _keys.persist_hash(self)

    @property
    def key(self) -> str:
        """Alias of :attr:`persist_hash`."""
        return self.persist_hash

    @property
    def artifact_dir(self) -> str:
        """The artifact's folder relative to the store root (``<payload_name>/<key>``)."""
        return self.store.artifact_dir(self.payload_name, self.persist_hash)

    @property
    def artifact_path(self) -> Path | str:
        """Where the artifact lives: a local ``Path``, or a URL on remote stores."""
        return self._location(self.persist_hash)

    def _location(self, key: str) -> Path | str:
        # From a key computed once per operation: hashing the params again costs ~25 us.
        relative = self.store.artifact_dir(self.payload_name, key)
        local = self.store.local_path(relative)
        return local if local is not None else f"{self.store.url.rstrip('/')}/{relative}"

    @property
    def payload_file(self) -> str:
        """Name of the payload file inside the artifact folder."""
        return f"payload{self.payload_file_suffix}"

    def exists(self) -> bool:
        """Whether a committed artifact exists for the current params."""
        return self.store.has_artifact(self.payload_name, self.persist_hash)

    def explain(self) -> Explanation:
        """Why :meth:`load_generate` would load or generate.

        When the artifact of the current key exists, says so and where; otherwise compares
        the current identity with every artifact of the same payload name in the store and
        reports the nearest one and what differs: params fields (old -> new), upstream keys
        (followed down to the upstream field or file that changed), code, version, key
        scheme. Printable; shown as HTML in notebooks.
        """
        from persistable._explain import explain

        return explain(self)

    @property
    def metadata(self) -> dict[str, Any]:
        """The artifact's ``metadata.json`` (:class:`ArtifactNotFoundError` if not persisted)."""
        return self.store.read_metadata(self.payload_name, self.persist_hash)

    # -- lifecycle ----------------------------------------------------------------

    def generate(self, persist: bool = True, **untracked_payload_params: Any) -> None:
        """Generate the payload, validate it and (by default) persist it.

        An explicit ``generate()`` always writes: a stored artifact of the same key is
        replaced atomically, under the key's lock, with a WARNING (use
        :meth:`load_generate` to keep an existing one). Untracked params are passed to
        :meth:`_generate_payload` and :meth:`_post_generate` and take no part in the key.
        """
        if persist:
            # Before any user code runs (load_generate() checks before taking its lock).
            self.store.check_writable()
        self._generate(untracked_payload_params, persist=persist, replace=True)

    def _generate(
        self, untracked_payload_params: dict[str, Any], *, persist: bool, replace: bool
    ) -> None:
        # Everything the artifact records about its identity is computed once, before
        # user code runs, each key hashed once (chains of any depth stay linear).
        with _keys.key_cache() if not _keys.key_cache_active() else contextlib.nullcontext():
            key = self.persist_hash
            identity = self._identity() if persist else None
            upstream: dict[int, tuple[object, str]] = {
                id(dependency): (dependency, dependency.persist_hash)
                for dependency in self.tracked_persistable_dependencies
            }
            upstream_keys = [
                upstream[id(dependency)][1] for dependency in self.tracked_persistable_dependencies
            ]
        capture = GenerationLogCapture(self.logger)
        # User code may build and change persistables: it sees no memoized keys.
        with _keys.suspended_key_cache():
            with capture:
                capture.info("Generating %s (key %s)", self.payload_name, key)
                _commit_helpers().use_stored_upstream_payloads(self, self.logger, upstream_keys)
                started = time.perf_counter()
                payload = self._generate_payload(**untracked_payload_params)
                duration = time.perf_counter() - started
                self._validate_payload(payload)
                capture.info("Generated %s in %.3f s", self.payload_name, duration)
            self._check_inputs_unchanged(key, upstream)
            self._set_payload(payload, key)
            # Kept so that a later persist() records the duration and log of this generation.
            self._generation: tuple[str, float, bytes] | None = (key, duration, capture.text())
            if identity is not None:
                self._persist(key, duration, capture.text(), identity=identity, replace=replace)
            self._post_generate(**untracked_payload_params)

    def _check_inputs_unchanged(self, key: str, upstream: dict[int, tuple[object, str]]) -> None:
        """Refuse a payload whose params or input files changed while it was generated."""
        after = _keys.key_given_upstream(self, upstream)
        if after != key:
            raise KeyMismatchError(
                f"The inputs of {self.payload_name} changed while its payload was generated "
                f"(key {key} before, {after} after: a params value or an input File/"
                "Directory was changed meanwhile); nothing was stored. Do not change params "
                "or input files inside _generate_payload, and run it again once they are final."
            )

    def persist(self) -> None:
        """Commit the current payload as an artifact (it must have been generated or loaded).

        Like :meth:`generate`, it replaces a stored artifact of the same key (atomically,
        under the key's lock, with a WARNING).
        """
        if not self._has_payload:
            raise NoPayloadError(
                f"{self.payload_name} has no payload to persist; call generate() first."
            )
        self.store.check_writable()
        key = self.persist_hash
        state = self._payload_state
        if state is not None and state[2] != key:
            raise NoPayloadError(
                f"The payload of {self.payload_name} was made for key {state[2]}, but its params "
                f"or dependencies changed since (key {key}); call generate() to make the payload "
                "of the new key before persisting."
            )
        generation = getattr(self, "_generation", None)
        if generation is not None and generation[0] == key:
            self._persist(key, generation[1], generation[2], replace=True)
        else:  # a loaded payload, or params changed since: no generation to record
            self._persist(key, None, b"", replace=True)

    def delete(self) -> bool:
        """Remove the artifact of the current params from the store; False if there was none.

        Waits for the key's lock (another process may be generating it; see
        :attr:`lock_timeout`), so an artifact is never half-deleted. The payload held in
        memory stays.

        Raises
        ------
        ReadOnlyStoreError
            The store cannot be written (nothing is changed).
        """
        deleted = self.artifact.delete(timeout=self.lock_timeout)
        if deleted:
            self.logger.info("Deleted %s key %s", self.payload_name, self.persist_hash)
        return deleted

    def _identity(self) -> _Identity:
        """What the artifact records of its identity (call it under a key cache)."""
        upstream = [
            [dependency.payload_name, dependency.persist_hash]
            for dependency in self.tracked_persistable_dependencies
        ]
        return self.lineage(), self.dependency_keys(), upstream

    def _persist(
        self,
        key: str,
        duration: float | None,
        log: bytes,
        extra_metadata: dict[str, Any] | None = None,
        identity: _Identity | None = None,
        *,
        replace: bool = False,
    ) -> bool:
        """Commit the payload held; ``replace``: under the key's lock, replacing what is there.

        Without ``replace`` the first committer wins (the callers hold the key's lock, or
        adopt a 1.x file).
        """
        if identity is None:
            with _keys.key_cache() if not _keys.key_cache_active() else contextlib.nullcontext():
                identity = self._identity()
        payload = cast(PayloadT, self._payload)
        self.payload_io.check(payload)
        if not replace:
            outcome = self._commit(
                key, duration, log, payload, extra_metadata, identity, replace=False
            )
            return outcome != "lost"
        with self.store.lock(self.payload_name, key, timeout=self.lock_timeout):
            existed = self.store.has_artifact(self.payload_name, key)
            outcome = self._commit(
                key, duration, log, payload, extra_metadata, identity, replace=True
            )
        if existed and outcome == "committed":
            self.logger.warning(
                "Replaced the stored artifact %s key %s in %s (generate() and persist() always "
                "write; load_generate() keeps an existing artifact)",
                self.payload_name,
                key,
                self.store.url,
            )
        return outcome != "lost"

    def _commit(
        self,
        key: str,
        duration: float | None,
        log: bytes,
        payload: PayloadT,
        extra_metadata: dict[str, Any] | None,
        identity: _Identity,
        *,
        replace: bool,
    ) -> str:
        """Write and commit the artifact: ``"committed"``, ``"kept"`` or ``"lost"``.

        ``"kept"``: replacing, the stored artifact already held these very bytes (and
        verifies), so it stays as it is; ``"lost"``: another writer committed first.
        """
        helpers = _commit_helpers()
        lineage, dependency_keys, upstream = identity
        artifact_dir = self.store.artifact_dir(self.payload_name, key)
        files: dict[str, dict[str, Any]] = {}
        params = dump_json(lineage)
        with self.store.begin(artifact_dir, replace=replace) as transaction:
            self._write_payload(payload, transaction, files)
            written = [(PARAMS_FILE, params)]
            if len(log) > INLINE_LOG_LIMIT:
                written.append((GENERATION_LOG_FILE, log))  # else it goes into metadata.json
            for name, data in written:
                transaction.write_bytes(name, data)
                files[name] = bytes_record(data)
            metadata = build_metadata(
                key=key,
                payload_name=self.payload_name,
                version=self.version,
                persistable_class=type(self),
                payload_io=self.payload_io.name,
                payload_file=self.payload_file,
                dependencies=dependency_keys,
                files=files,
                duration_s=duration,
            )
            if log and len(log) <= INLINE_LOG_LIMIT:
                metadata[GENERATION_LOG_FIELD] = log.decode("utf-8", "replace")
            metadata["code"].update(self._code_record())
            omitted = omitted_defaults(self.params)
            if omitted:
                metadata["added_later_defaults"] = omitted
            upstream_defaults = upstream_digest(self)
            if upstream_defaults is not None:
                metadata["upstream_added_later"] = upstream_defaults
            if extra_metadata:
                metadata.update(extra_metadata)
            # Lineage by payload name and key, so the store alone rebuilds the upstream graph.
            metadata["upstream"] = upstream
            if replace and helpers.stored_is_identical(self.artifact_at(key), metadata):
                # Rewriting the same bytes changes nothing (samples' Save() on a rerun):
                # the transaction is discarded and the stored artifact kept, created time and all.
                self.logger.info(
                    "%s key %s is stored with the same bytes already; kept it",
                    self.payload_name,
                    key,
                )
                helpers.record_lineage(self.store, self.payload_name, key, params)
                return "kept"
            committed = transaction.commit(dump_metadata(metadata))
        # Committed by this writer or another: either way an artifact of this lineage.
        helpers.record_lineage(self.store, self.payload_name, key, params)
        if committed:
            if self.logger.isEnabledFor(logging.INFO):  # the location costs a path join
                self.logger.info("Persisted %s to %s", self.payload_name, self._location(key))
            return "committed"
        self.logger.info(
            "%s key %s was committed by another writer first; kept theirs",
            self.payload_name,
            key,
        )
        return "lost"

    def _write_payload(
        self, payload: PayloadT, transaction: Transaction, files: dict[str, dict[str, Any]]
    ) -> None:
        """Write the payload file (or folder) into ``transaction`` and record its files."""
        folder_io, write_folder = _folder_io()
        try:
            if isinstance(self.payload_io, folder_io):
                # A folder payload (zarr): each of its files is checksummed and listed.
                files.update(write_folder(self.payload_io, payload, transaction, self.payload_file))
                return
            # A 1.x path-based FileIO writes straight into a local staging folder.
            target = (
                transaction.local_path(self.payload_file) if self.payload_io.path_based else None
            )
            if target is not None:
                self.payload_io._save(payload=payload, filepath=target)
                if not target.is_file():
                    raise PayloadSerializationError(
                        f"{type(self.payload_io).__name__}._save() wrote no file at the path it "
                        f"was given ({target.name!r}); it must write the payload to that path."
                    )
                files[self.payload_file] = file_record(target)
                return
            target = (
                transaction.local_path(self.payload_file) if self.payload_io.seeks_on_save else None
            )
            if target is not None:
                # Seeking writers (TIFF, HDF5) write the staging file in place; reading it
                # back to hash it is far cheaper than writing a scratch copy first.
                with target.open("w+b") as stream:
                    record = self.payload_io.save_file(payload, stream)
                if record is None or record.get("size") != target.stat().st_size:
                    record = file_record(target)  # read back: the FileIO did not hash it all
                files[self.payload_file] = record
                return
            sink = _spooling_writer()(transaction, self.payload_file)
            with HashingWriter(cast(IO[bytes], sink)) as writer:
                self.payload_io.save(payload, cast(IO[bytes], writer))
            files[self.payload_file] = writer.record
        except (PayloadSerializationError, OSError):
            raise  # an OSError is the store's (disk full, network), not the payload's
        except Exception as error:
            raise PayloadSerializationError(
                f"{type(self.payload_io).__name__} could not write the "
                f"{type(payload).__module__}.{type(payload).__qualname__} payload of "
                f"{self.payload_name} ({type(error).__name__}: {error}); pass a payload_io "
                "made for this type, e.g. PickleFileIO()."
            ) from error

    def load(
        self,
        warn_if_validation_fails: bool = False,
        *,
        verify: bool = False,
        **untracked_payload_params: Any,
    ) -> None:
        """Load the committed artifact of the current params.

        Parameters
        ----------
        warn_if_validation_fails
            Warn (:class:`InvalidPayloadWarning`) instead of raising when validation fails.
        verify
            Check the full checksum of the payload file (its size is always checked).

        Raises
        ------
        ArtifactNotFoundError
            No artifact exists for these params (a ``FileNotFoundError``).
        CorruptArtifactError
            The artifact does not match its ``metadata.json`` or cannot be read.
        """
        self._load(untracked_payload_params, warn_if_validation_fails, verify=verify, adopt=True)

    def _load(
        self,
        untracked_payload_params: dict[str, Any],
        warn_if_validation_fails: bool = False,
        *,
        verify: bool = False,
        adopt: bool,
    ) -> None:
        """:meth:`load`; with ``adopt``, a missing artifact is adopted from a 1.x file if any."""
        key = self.persist_hash
        try:
            payload, source = self._read_payload_with_fallbacks(key, verify=verify)
        except ArtifactNotFoundError:
            adopted = self._adopt_v1(key) if adopt else None  # a 1.x file of the same params
            if adopted is None:
                raise
            payload, source = adopted[0], self.store
        try:
            self._validate_payload(payload)
        except Exception as error:
            if not warn_if_validation_fails:
                raise
            message = (
                f"The loaded payload of {self.payload_name} (key {key}) failed validation "
                f"({type(error).__name__}: {error}); it may need to be regenerated."
            )
            warn_at_caller(message, InvalidPayloadWarning)
            self.logger.debug(message)
        self._set_payload(payload, key)
        if source is self.store:
            if self.logger.isEnabledFor(logging.INFO):  # the location costs a path join
                self.logger.info("Loaded %s from %s", self.payload_name, self._location(key))
        else:
            self.logger.info("Loaded %s from the fallback store %s", self.payload_name, source.url)
        self._post_load(**untracked_payload_params)

    def _read_payload_with_fallbacks(self, key: str, *, verify: bool) -> tuple[PayloadT, Store]:
        """The payload from the primary store, else from the first fallback store that has it."""
        try:
            return self._read_payload(key, verify=verify), self.store
        except ArtifactNotFoundError as error:
            if not self.fallback_stores:
                raise
            missing = error
        for fallback in self.fallback_stores:
            if not fallback.has_artifact(self.payload_name, key):
                continue
            try:
                payload = self._read_payload(key, verify=verify, store=fallback)
            except CorruptArtifactError as error:
                # Not ours to quarantine: note it and look further.
                self.logger.warning("Ignoring a damaged artifact in %s: %s", fallback.url, error)
                continue
            if self.copy_from_fallback and not self.store.read_only:
                try:
                    self.artifact_at(key, fallback).copy_to(self.store)
                except (OSError, CorruptArtifactError) as error:
                    self.logger.warning(
                        "Could not copy %s key %s from %s into %s: %s",
                        self.payload_name,
                        key,
                        fallback.url,
                        self.store.url,
                        error,
                    )
            return payload, fallback
        raise missing

    def artifact_at(self, key: str | None = None, store: Store | None = None) -> Artifact:
        """The :class:`~persistable.artifact.Artifact` handle of this persistable's key."""
        return _artifact_class()(
            self.store if store is None else store,
            self.payload_name,
            self.persist_hash if key is None else key,
        )

    @property
    def artifact(self) -> Artifact:
        """The :class:`~persistable.artifact.Artifact` handle of the current params (no I/O)."""
        return self.artifact_at()

    def _read_payload(self, key: str, *, verify: bool, store: Store | None = None) -> PayloadT:
        artifact = self.artifact_at(key, store)
        self._check_origin(artifact.metadata, key, artifact.store)
        payload: PayloadT = artifact.load(self.payload_io, verify=verify)
        return payload

    def _code_record(self) -> dict[str, Any]:
        """The code fingerprint for ``metadata.json`` (empty if it cannot be computed)."""
        try:
            return self.code_fingerprint().record()
        except Exception as error:  # provenance must never fail a generation
            self.logger.warning(
                "Could not fingerprint the code of %s (%s: %s); metadata.json records none",
                type(self).__qualname__,
                type(error).__name__,
                error,
            )
            return {}

    def _check_code(self, metadata: dict[str, Any], key: str) -> None:
        """Warn when the artifact was generated by code that differs from the current code."""
        code = metadata.get("code")
        recorded = code.get("functions") if isinstance(code, dict) else None
        if not isinstance(code, dict) or not isinstance(recorded, dict):
            return  # made before fingerprints were recorded
        try:
            current = self.code_fingerprint()
        except Exception:  # nothing to compare with, as in _code_record
            return
        if code.get("fingerprint") == current.digest:
            return
        from persistable._fingerprint import changed_entries

        changed = changed_entries(recorded, current)
        if not changed:
            return
        made = f"artifact made {metadata.get('created_utc', '?')} by {metadata.get('user', '?')}@{metadata.get('host', '?')}"
        message = (
            f"{type(self).__name__} key {key} was generated by other code: "
            f"{_names(changed)} changed since ({made}). The payload was loaded as it is; to "
            f"make it again with the current code set {type(self).__name__}.version (or "
            "code_changes = 'rerun', which puts the code into the key), or set code_changes = "
            "'ignore' to silence this."
        )
        warn_at_caller(message, CodeChangedWarning)
        self.logger.debug(message)

    def _check_origin(self, metadata: dict[str, Any], key: str, store: Store) -> None:
        """Warn when another class, or other code, wrote this artifact; refuse it when an
        ``added_later`` default changed since (the key cannot tell the two apart)."""
        refused = self._added_later_refusal(metadata, key)
        if refused is not None:
            raise InvalidParamsError(refused)
        if not self._check_class(metadata, key, store) and self.code_changes == "warn":
            self._check_code(metadata, key)

    def _added_later_refusal(self, metadata: dict[str, Any], key: str) -> str | None:
        """Why the artifact of ``key`` (its ``metadata.json``) is refused because an
        ``added_later`` default changed since, here or upstream; None when it is not."""
        recorded = metadata.get("added_later_defaults")
        if isinstance(recorded, dict) and recorded:
            current = omitted_defaults(self.params)
            for path, made_with in recorded.items():
                now = current.get(path)
                if now is not None and now != made_with:
                    return (
                        f"{self.payload_name} key {key} was made with {path} = {made_with} (the "
                        f"default of its added_later field then), but that default is now {now}, "
                        "which the key leaves out, so the artifact is not what the current params "
                        f"make; restore added_later(default={made_with}) and pass the new value "
                        "explicitly, or set the class's version to make everything again."
                    )
        suspects = changed_upstream(self, metadata.get("upstream_added_later"))
        if suspects is not None:
            return (
                f"{self.payload_name} key {key} was made from upstream artifacts whose "
                "added_later defaults have changed since (the keys leave those fields out, so "
                "the artifact is not what the current tree makes); upstream fields at their "
                f"default now: {'; '.join(suspects) or 'none'}; restore the old default and "
                "pass the new value explicitly, or set the version of the changed class."
            )
        return None

    def _check_class(self, metadata: dict[str, Any], key: str, store: Store) -> bool:
        """Warn and return True when another class wrote this artifact."""
        code = metadata.get("code")
        recorded = code.get("class") if isinstance(code, dict) else None
        if not isinstance(recorded, str):
            return False  # written before classes were recorded
        cls = type(self)
        current = f"{cls.__module__}.{cls.__qualname__}"
        # A script's classes live in __main__ when it runs and in its module when imported.
        in_main = recorded.startswith("__main__.") or cls.__module__ == "__main__"
        if recorded == current or (
            in_main and recorded.rpartition(".")[2] == cls.__qualname__.rpartition(".")[2]
        ):
            return False
        message = (
            f"{self.payload_name} key {key} in {store.url!r} was written by the class {recorded!r:.200}, "
            f"not by {current}: two classes share the payload name {self.payload_name!r} and "
            "equal params; if they make different payloads, give one of them its own "
            "payload_name= so that their keys differ."
        )
        warn_at_caller(message, ForeignArtifactWarning)
        self.logger.debug(message)
        return True

    def verify(self) -> None:
        """Check every file of the artifact against the sizes and checksums in ``metadata.json``."""
        self.artifact.verify()

    def load_generate(self, **untracked_payload_params: Any) -> None:
        """Load the artifact if it exists, else generate and persist it (once, under a per-key lock).

        A corrupt artifact is moved into the store's quarantine area, with a warning,
        and regenerated.
        """
        self._load_generate(untracked_payload_params, load_payload=True)

    def ensure_committed(self) -> str:
        """Generate and commit the artifact unless it exists, without loading it.

        The step each node of ``persistable.run`` takes: the same per-key lock and
        checks as :meth:`load_generate`. Returns ``"loaded"`` or ``"generated"``.
        """
        return self._load_generate({}, load_payload=False)

    _ensure_committed = ensure_committed  # the name the runner and steps used before

    def _load_generate(
        self, untracked_payload_params: dict[str, Any], *, load_payload: bool
    ) -> str:
        if not _keys.key_cache_active():
            # The key is needed up to four times (look, lock, look again, generate):
            # hash the params once for the whole call.
            with key_cache():
                return self._load_generate(untracked_payload_params, load_payload=load_payload)
        key = self.persist_hash

        def found(adopt: bool = True) -> bool:
            if not load_payload:
                return self.store.has_artifact(self.payload_name, key) or (
                    adopt and self._adopt_v1(key) is not None
                )
            try:
                if type(self).load is Persistable.load:
                    self._load(untracked_payload_params, adopt=adopt)
                else:  # a subclass's own load() is what loads
                    self.load(**untracked_payload_params)
            except ArtifactNotFoundError:
                return False
            return True

        # A 1.x file is adopted under the key's lock (adopting commits an artifact), so
        # the looks outside it are for the artifact only; a read-only store takes no lock.
        outside = self.store.read_only
        try:
            if found(outside):
                return "loaded"
        except CorruptArtifactError:
            if self.store.read_only:
                raise  # a read-only store is never changed, not even to set a file aside
        # Checked before the lock so that an unwritable store is left untouched.
        self.store.check_writable()
        if load_payload:
            # (The runner orders its nodes itself and calls with load_payload=False.)
            self._ensure_upstream()
        started = time.monotonic()
        wait = 0.5
        while True:
            # Wait for the lock in growing slices and look for the artifact in between,
            # so that N waiters load in parallel as soon as it is committed instead of
            # taking the lock one after the other (it matters on object stores).
            total = self.lock_timeout
            remaining = None if total is None else total - (time.monotonic() - started)
            slice_ = wait if remaining is None else max(0.0, min(wait, remaining))
            holding = False
            try:
                with self.store.lock(self.payload_name, key, timeout=slice_):
                    holding = True
                    return self._generate_locked(key, found, untracked_payload_params)
            except LockTimeoutError:
                if holding or (remaining is not None and remaining <= slice_):
                    raise  # from the work itself, or the user's lock_timeout is spent
            try:
                if found(outside):
                    return "loaded"
            except CorruptArtifactError:
                pass
            wait = min(wait * 2, 8.0)

    def _has_anywhere(self) -> bool:
        """Whether the artifact is committed in the store or in a fallback store."""
        key = self.persist_hash
        return self.store.has_artifact(self.payload_name, key) or any(
            fallback.has_artifact(self.payload_name, key) for fallback in self.fallback_stores
        )

    def _ensure_upstream(self) -> None:
        """Commit the missing upstream artifacts first, in dependency order, one at a time.

        So the user code of every node only ever *loads* its dependencies' payloads (as
        under ``persistable.run``, serially), and no call stack grows with the depth of
        the chain. Payloads generated here are released once their consumers are done.
        """
        needed: dict[int, Persistable[Any, Any]] = {}
        frontier: list[Persistable[Any, Any]] = [self]
        while frontier:
            upcoming: list[Persistable[Any, Any]] = []
            for item in frontier:
                for dependency in item.tracked_persistable_dependencies:
                    if id(dependency) in needed or dependency._has_anywhere():
                        continue
                    needed[id(dependency)] = dependency
                    upcoming.append(dependency)
            frontier = upcoming
        if not needed:
            return
        order = [item for item in _keys.dependency_order(self) if id(item) in needed]
        consumers: dict[int, int] = {}
        for item in order:
            for dependency in item.tracked_persistable_dependencies:
                consumers[id(dependency)] = consumers.get(id(dependency), 0) + 1
        held_before = {id(item) for item in order if item._has_payload}
        self.logger.info(
            "%s needs %d missing upstream artifacts; generating them first",
            self.payload_name,
            len(order),
        )
        for item in order:
            item._ensure_committed()
            for dependency in item.tracked_persistable_dependencies:
                left = consumers.get(id(dependency), 0) - 1
                consumers[id(dependency)] = left
                if left == 0 and id(dependency) in needed and id(dependency) not in held_before:
                    dependency.reset_payload()  # no consumer left in this chain: free memory

    def _generate_locked(
        self, key: str, found: Callable[[], bool], untracked_payload_params: dict[str, Any]
    ) -> str:
        # Decided again under the lock: another worker may have committed (or already
        # set aside and regenerated) the artifact while we waited.
        try:
            if found():
                return "loaded"
            self.logger.info("No artifact for %s key %s; generating", self.payload_name, key)
        except CorruptArtifactError as error:
            self._quarantine(error)
        # Holding the lock already, and nothing is there: no replace, no second lock.
        self._generate(untracked_payload_params, persist=True, replace=False)
        return "generated"

    def _quarantine(self, error: CorruptArtifactError) -> None:
        destination = self.artifact.quarantine()
        message = (
            f"Moved the corrupt artifact {self.payload_name} key {self.persist_hash} to "
            f"{destination!r} in {self.store.url!r} ({error}); regenerating it."
        )
        warn_at_caller(message, QuarantineWarning)
        self.logger.debug(message)

    @property
    def payload(self) -> PayloadT:
        """The payload of the current key; loaded or generated on first access.

        When params or dependencies were assigned since the payload in memory was made,
        the payload of the new key is loaded (or generated) instead.
        """
        if self._has_payload and not self._payload_is_current():
            self.logger.info(
                "The params of %s changed since its payload was made; loading the new key's",
                self.payload_name,
            )
            self.reset_payload()
        if not self._has_payload:
            self.load_generate()
        return cast(PayloadT, self._payload)

    def _payload_is_current(self) -> bool:
        """Whether the payload in memory is the payload of the current key."""
        state = self._payload_state
        if state is None:
            return True  # set without a key by a subclass: nothing to compare
        epoch, dependencies, key = state
        now = tuple(map(id, self.tracked_persistable_dependencies))
        if (
            epoch == _keys.current_epoch()
            and dependencies == now
            and key_changes_only_by_assignment(self)
        ):
            return True  # nothing assigned since; a list or array in the params, or keyed
            # code, can change without an assignment: then the key is hashed again.
        if self.persist_hash != key:
            return False
        self._payload_state = (_keys.current_epoch(), now, key)
        return True

    def _set_payload(self, payload: PayloadT, key: str | None = None) -> None:
        self._payload = payload
        self._has_payload = True
        self._generation = None
        if key is not None:
            self._payload_state = (
                _keys.current_epoch(),
                tuple(map(id, self.tracked_persistable_dependencies)),
                key,
            )
        else:
            self._payload_state = None

    def validate_payload(self, payload: PayloadT | None = None) -> None:
        """Run :meth:`_validate_payload` on ``payload`` or on the current payload."""
        if payload is None:
            if not self._has_payload:
                raise NoPayloadError(
                    f"validate_payload() was called on {self.payload_name} but there is no payload; "
                    "generate or load it first."
                )
            payload = cast(PayloadT, self._payload)
        self._validate_payload(payload)

    def reset_payload(self) -> None:
        """Forget the payload held in memory (the artifact stays)."""
        self._payload = None
        self._has_payload = False
        self._payload_state = None

    # -- hooks --------------------------------------------------------------------

    def _generate_payload(self, **untracked_payload_params: Any) -> PayloadT:
        """Make the payload from ``self.params`` and the tracked dependencies' payloads."""
        raise ExplainedNotImplementedError(f"{type(self).__name__}._generate_payload")

    def _validate_payload(self, payload: PayloadT) -> None:
        """Raise (e.g. :class:`InvalidPayloadError`) if ``payload`` is not valid."""

    def _post_load(self, **untracked_payload_params: Any) -> None:
        """Runs after a load; rebuild what was not persisted."""

    def _post_generate(self, **untracked_payload_params: Any) -> None:
        """Runs after a generate (and persist)."""

    @property
    def has_payload(self) -> bool:
        """Whether a payload is held in memory (generated or loaded)."""
        return self._has_payload

    def _repr_html_(self) -> str:
        from persistable.artifact._html import persistable_html

        key = self.persist_hash
        try:
            committed = self.store.has_artifact(self.payload_name, key)
        except OSError:
            committed = False
        return persistable_html(
            type(self).__name__,
            self.payload_name,
            key,
            self.params_tree,
            committed,
            str(self._location(key)),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(payload_name={self.payload_name!r}, params={self.params!r}, store={self.store.url!r})"
