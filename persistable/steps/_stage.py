"""memori's ``Stage``: a function whose results are a dict of named outputs, memoized as artifacts.

The behaviour memori documents is kept (static args override run args, a ``str`` that
names an existing file is keyed by its content, and by its spelling, outputs that are files are re-hashed
on a hit and a change re-runs the stage, ``force_run_stage`` / ``force_skip_stage`` /
``force_hash_write``, aliases), its defects are not: each run starts from its own
arguments, tuples and lists are one encoding, a single output keeps the whole return
value, the caller's lists are never changed, and a run is one artifact of the store
(atomic, checksummed, under the per-key lock) keyed by the stage's name, code,
outputs and arguments.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from persistable._content import file_digest
from persistable._fingerprint import CodeFingerprint, fingerprint
from persistable._persistable import Persistable
from persistable.exceptions import ArtifactNotFoundError
from persistable.params import UNTRACKED, PersistableParams, encode_value
from persistable.steps._errors import StepDefinitionError, StepOutputError
from persistable.store import Store, make_store

__all__ = ["Stage", "StagePersistable", "hashable"]

logger = logging.getLogger(__name__)

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def hashable(function: Callable[..., Any]) -> Callable[..., Any]:
    """memori's marker for a callee whose code should count; accepted and returned as is.

    Code fingerprints already follow the functions a stage calls.
    """
    return function


def _encode_files(value: Any, path: str) -> Any:
    """``value`` with every ``str`` naming an existing file replaced by its content digest, encoded."""
    if isinstance(value, str) and os.path.isfile(value):
        # The spelling counts too: a stage may derive output names from its input's path,
        # so the same content under another name must not hand back the other's results.
        return {"__type__": "file", "path": value, "xxh3_128": file_digest(value)}
    if isinstance(value, (list, tuple)):
        return [_encode_files(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if (
        isinstance(value, Mapping)
        and all(isinstance(key, str) for key in value)
        and "__type__" not in value
    ):
        return {key: _encode_files(item, f"{path}[{key!r}]") for key, item in value.items()}
    return encode_value(value, path)


def _output_files(value: Any, found: dict[str, str]) -> dict[str, str]:
    """Digest of every existing file named by a ``str`` in ``value`` (lists and dicts searched)."""
    if isinstance(value, str):
        if os.path.isfile(value):
            found[os.path.abspath(value)] = file_digest(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _output_files(item, found)
    elif isinstance(value, Mapping):
        for item in value.values():
            _output_files(item, found)
    return found


def changed_outputs(payload: dict[str, Any]) -> list[str]:
    """The recorded output files that are missing or whose content changed since the run."""
    changed = []
    for path, digest in sorted(payload.get("files", {}).items()):
        if not os.path.isfile(path) or file_digest(path) != digest:
            changed.append(path)
    return changed


@dataclass
class StageParams(PersistableParams):
    """The input arguments of one stage run, keyed with files by content."""

    arguments: dict[str, Any] = field(default_factory=dict, metadata={"persistable": UNTRACKED})
    stage_name: str = field(default="stage", metadata={"persistable": UNTRACKED})

    def to_dict(self) -> dict[str, Any]:
        return {
            name: _encode_files(value, f"argument {name!r} of stage {self.stage_name}")
            for name, value in self.arguments.items()
        }


class StagePersistable(Persistable[dict[str, Any], StageParams]):
    """One run of a stage: its payload is ``{"results": {...}, "files": {path: digest}}``.

    The code fingerprint of the stage's function is part of the key (memori re-runs a
    stage whose code changed); unlike memori's, it follows callees at any depth and the
    module constants and defaults they read.
    """

    code_changes = "rerun"

    def __init__(
        self,
        store: Store,
        function: Callable[..., Any],
        outputs: list[str],
        params: StageParams,
        payload_name: str,
    ) -> None:
        super().__init__(store, params, None, payload_name=payload_name)
        self.function = function
        # Computed here and pickled along, so a worker process keys the run the same way.
        self._code = fingerprint(function)
        self.outputs = list(outputs)
        #: Whether this object ran the function (rather than loading a run).
        self.ran = False

    def key_tree(self) -> dict[str, Any]:
        tree = super().key_tree()
        tree["outputs"] = self.outputs
        return tree

    def code_fingerprint(self) -> CodeFingerprint:
        """The fingerprint of the stage's function and the user code it reaches."""
        return self._code

    def _generate_payload(self, **untracked_payload_params: Any) -> dict[str, Any]:
        results = call_stage(self.function, self.outputs, self.params.arguments, self.payload_name)
        self.ran = True
        return {"results": results, "files": _output_files(results, {})}


def call_stage(
    function: Callable[..., Any], outputs: list[str], arguments: dict[str, Any], name: str
) -> dict[str, Any]:
    """Call ``function(**arguments)`` and label its return value with ``outputs``."""
    value = function(**arguments)
    if len(outputs) == 1:
        return {outputs[0]: value}  # one output is the whole value, a list included
    if not isinstance(value, (tuple, list)) or len(value) != len(outputs):
        got = f"{len(value)} values" if isinstance(value, (tuple, list)) else type(value).__name__
        raise StepOutputError(
            f"stage {name} has stage_outputs={outputs!r} but its function returned {got}; "
            f"return a tuple of {len(outputs)} values, or change stage_outputs."
        )
    return dict(zip(outputs, value, strict=True))


def _stage_name(name: str) -> str:
    cleaned = "".join(char if char in _NAME_CHARS else "_" for char in name).lstrip(".-")
    return cleaned or "stage"


class Stage:
    """memori's ``Stage``: one node of a pipeline, wrapping a function with named outputs.

    Parameters
    ----------
    function_to_call
        The function the stage runs; its parameter names are the stage's inputs.
    stage_outputs
        Names of the return values (one name: the whole return value), default ``["output"]``.
    hash_output
        Where runs are memoized (a folder, URL or Store); None runs every time.
    stage_name
        The stage's name (default the function's name): the payload name of its artifacts.
    aliases
        Further names of outputs in :attr:`results` (``{"alias": "output"}``, or
        ``{"output": "alias"}`` as memori's docstring writes it).
    **static_args
        Arguments that always override those given to :meth:`run`.
    """

    def __init__(
        self,
        function_to_call: Callable[..., Any],
        stage_outputs: list[str] | str | None = None,
        hash_output: Any = None,
        stage_name: str | None = None,
        aliases: dict[str, str] | None = None,
        **static_args: Any,
    ) -> None:
        if not callable(function_to_call):
            raise StepDefinitionError(
                f"Stage wraps a callable (got {function_to_call!r:.80} that is a "
                f"{type(function_to_call).__name__})."
            )
        self.function_to_call = function_to_call
        signature = inspect.signature(inspect.unwrap(function_to_call))
        self.stage_inputs: list[str] = [
            parameter.name
            for parameter in signature.parameters.values()
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]
        #: Whether the function takes ``**kwargs``.
        self.accepts_any_keyword = any(
            parameter.kind is parameter.VAR_KEYWORD for parameter in signature.parameters.values()
        )
        if stage_outputs is None:
            stage_outputs = ["output"]
        outputs: list[Any] = (
            [stage_outputs] if isinstance(stage_outputs, str) else list(stage_outputs)
        )
        if not outputs or not all(isinstance(name, str) and name for name in outputs):
            raise StepDefinitionError(
                f"stage_outputs must be a non-empty list of names (got {stage_outputs!r})."
            )
        self.stage_outputs: list[str] = outputs
        self.stage_args: dict[str, Any] = dict(static_args)
        self.stage_input_args: dict[str, Any] = {}
        self.stage_name: str = (
            stage_name if stage_name else getattr(function_to_call, "__name__", "stage")
        )
        self.stage_aliases: dict[str, str] = dict(aliases or {})
        self.stage_results: dict[str, Any] = {}
        self.stage_has_run = False
        self.stage_from_hash = False
        self._hash_output: Any = None
        self._store: Store | None = None
        if hash_output:
            self.hash_output = hash_output

    # -- memori's properties --------------------------------------------------------------

    @property
    def inputs(self) -> list[str]:
        """The names of the function's parameters."""
        return self.stage_inputs

    @property
    def outputs(self) -> list[str]:
        """The names of the stage's outputs."""
        return self.stage_outputs

    @property
    def args(self) -> dict[str, Any]:
        """The static arguments given at construction (or by :meth:`set_stage_arg`)."""
        return self.stage_args

    @property
    def input_args(self) -> dict[str, Any]:
        """The arguments of the last run (run arguments, then static ones)."""
        return self.stage_input_args

    @property
    def results(self) -> dict[str, Any]:
        """The outputs of the last run, plus their aliases."""
        results = dict(self.stage_results)
        for first, second in self.stage_aliases.items():
            if second in self.stage_results:
                results[first] = self.stage_results[second]
            elif first in self.stage_results:
                results[second] = self.stage_results[first]
        return results

    @property
    def state(self) -> bool:
        """Whether the last run called the function (False when it was loaded or skipped)."""
        return self.stage_has_run

    @property
    def hash_output(self) -> Any:
        """Where runs are memoized (None: not memoized)."""
        return self._hash_output

    @hash_output.setter
    def hash_output(self, hash_output: Any) -> None:
        self._hash_output = hash_output
        self._store = None if not hash_output else make_store(hash_output)

    def set_stage_arg(self, arg: str, value: Any) -> None:
        """Set a static argument (it overrides the run arguments)."""
        self._check_arg(arg)
        self.stage_args[arg] = value

    def del_stage_arg(self, arg: str) -> None:
        """Remove a static argument."""
        self._check_arg(arg)
        self.stage_args.pop(arg, None)

    def _check_arg(self, arg: str) -> None:
        if arg not in self.stage_inputs:
            raise ValueError(
                f"{arg!r} is not an argument of stage {self.stage_name}; its arguments are "
                f"{self.stage_inputs}."
            )

    # -- running ---------------------------------------------------------------------------

    def bind_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """This run's arguments: positional by input name, then keywords, then the static args.

        A single positional dict (another stage's results) whose keys name every input
        not given otherwise is taken as keyword arguments, as memori's README chains stages.
        """
        if len(args) == 1 and not kwargs and isinstance(args[0], dict):
            results = args[0]
            needed = [name for name in self.stage_inputs if name not in self.stage_args]
            if needed and all(name in results for name in needed):
                args, kwargs = (), {name: results[name] for name in needed}
        if len(args) > len(self.stage_inputs):
            raise TypeError(
                f"stage {self.stage_name} takes {len(self.stage_inputs)} positional arguments "
                f"({self.stage_inputs}) but {len(args)} were given."
            )
        arguments = dict(zip(self.stage_inputs, args, strict=False))  # checked above
        arguments.update(kwargs)
        arguments.update(self.stage_args)
        return arguments

    def persistable(self, arguments: dict[str, Any]) -> StagePersistable:
        """The artifact of a run with these (already bound) arguments."""
        if self._store is None:
            raise StepDefinitionError(
                f"stage {self.stage_name} has no hash_output, so its runs are not memoized."
            )
        name = _stage_name(self.stage_name)
        params = StageParams(arguments=dict(arguments), stage_name=self.stage_name)
        return StagePersistable(
            self._store, self.function_to_call, self.stage_outputs, params, name
        )

    def run(
        self,
        *args: Any,
        force_skip_stage: bool = False,
        force_run_stage: bool = False,
        force_hash_write: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Run the stage (or load its memoized run) and return its results dict.

        ``force_run_stage`` runs even when a run is memoized (and replaces it);
        ``force_skip_stage`` never runs: it loads the run of these arguments, or else the
        most recent run of the stage; ``force_hash_write`` memoizes a skipped stage's
        results under these arguments.
        """
        arguments = self.bind_arguments(args, kwargs)
        self.stage_input_args = arguments
        self.stage_has_run = False
        logger.info("Arguments of stage %s: %r", self.stage_name, arguments)
        if self._store is None:
            if force_skip_stage and not force_run_stage:
                logger.info("Force skip stage: %s (nothing memoized to load)", self.stage_name)
                return self._finish({}, ran=False)
            results = call_stage(
                self.function_to_call, self.stage_outputs, arguments, self.stage_name
            )
            return self._finish(results, ran=True)
        persistable = self.persistable(arguments)
        if force_run_stage:
            logger.info("Force run stage: %s", self.stage_name)
            return self._finish(self._rerun(persistable), ran=True)
        if force_skip_stage:
            logger.info("Force skip stage: %s", self.stage_name)
            return self._skip(persistable, force_hash_write)
        if logger.isEnabledFor(logging.INFO) and not persistable.exists():
            logger.info("Running stage %s: %s", self.stage_name, persistable.explain())
        persistable.load_generate()
        payload = persistable.payload
        if not persistable.ran:
            changed = changed_outputs(payload)
            if changed:
                logger.info(
                    "Re-running stage %s: its output files changed since its run: %s",
                    self.stage_name,
                    ", ".join(changed),
                )
                return self._finish(self._rerun(persistable), ran=True)
            logger.info("Skipping stage %s: loaded its memoized run", self.stage_name)
        return self._finish(payload["results"], ran=persistable.ran)

    def _rerun(self, persistable: StagePersistable) -> dict[str, Any]:
        store, name, key = persistable.store, persistable.payload_name, persistable.persist_hash
        with store.lock(name, key):
            if store.has_artifact(name, key):
                store.remove_dir(store.artifact_dir(name, key))
            persistable.generate()
        results: dict[str, Any] = persistable.payload["results"]
        return results

    def _skip(self, persistable: StagePersistable, force_hash_write: bool) -> dict[str, Any]:
        try:
            persistable.load()
            return self._finish(persistable.payload["results"], ran=False)
        except ArtifactNotFoundError:
            pass
        results = self._latest_results(persistable)
        if force_hash_write and results is not None:
            persistable._set_payload({"results": results, "files": _output_files(results, {})})
            persistable.persist()
        return self._finish(results or {}, ran=False)

    def _latest_results(self, persistable: StagePersistable) -> dict[str, Any] | None:
        """The results of the most recent run of this stage, whatever its arguments."""
        store, name = persistable.store, persistable.payload_name
        dated = []
        for key in store.list_keys(name):
            try:
                dated.append((str(store.read_metadata(name, key).get("created_utc", "")), key))
            except (OSError, ValueError):
                continue
        if not dated:
            logger.warning("Force skip stage %s: no memoized run to load", self.stage_name)
            return None
        key = max(dated)[1]
        other = StagePersistable(
            store, self.function_to_call, self.stage_outputs, persistable.params, name
        )
        payload = other._read_payload(key, verify=False)
        logger.warning(
            "Force skip stage %s: loaded the most recent run (key %s), made from other arguments",
            self.stage_name,
            key,
        )
        results: dict[str, Any] = payload["results"]
        return results

    def _finish(self, results: dict[str, Any], *, ran: bool) -> dict[str, Any]:
        self.stage_results = dict(results)
        self.stage_has_run = ran
        self.stage_from_hash = not ran and bool(results)
        return self.stage_results

    def __repr__(self) -> str:
        return f"Stage({self.stage_name!r}, stage_outputs={self.stage_outputs!r})"
