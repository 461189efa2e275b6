"""The extension points: ``H5FlowStage``, ``H5FlowGenerator``, ``H5FlowResource``.

Their constructors, ``init``/``run``/``next``/``finish`` methods and attributes follow
h5flow's, so h5flow modules run after changing only their imports. ``class_version``
enters the key of the flow's output artifact.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from persistable.flow._config import Requirement
from persistable.flow._data_manager import H5FlowDataManager
from persistable.flow._mpi import SerialComm

__all__ = ["H5FlowGenerator", "H5FlowResource", "H5FlowStage", "resources"]

logger = logging.getLogger(__name__)

#: The resources of the running flow by class name (h5flow's ``h5flow.core.resources``).
resources: dict[str, Any] = {}


class _FlowObject:
    """What stages, generators and resources share: version, resume flag, data manager, ranks."""

    #: Enters the key of the flow's output: change it when the class's results change.
    class_version: ClassVar[str] = "0.0.0"
    #: False when the object keeps state across chunks that later chunks or ``finish``
    #: depend on: such state is not journaled, so a flow with one starts over instead of
    #: resuming. A change of an object's attributes between chunks is also detected
    #: (``_state``) and has the same effect; False only saves that check.
    resumable: ClassVar[bool] = True

    classname: str
    data_manager: H5FlowDataManager
    comm: SerialComm
    rank: int
    size: int
    params: dict[str, Any]

    def _bind(
        self, classname: str, data_manager: H5FlowDataManager, params: dict[str, Any]
    ) -> None:
        self.classname = classname
        self.data_manager = data_manager
        self.comm = data_manager.comm
        self.rank = self.comm.rank
        self.size = self.comm.size
        self.params = params


class _Positioned(_FlowObject):
    """Generators and resources also get the input file and the loop's start and end."""

    def __init__(
        self,
        classname: str,
        data_manager: H5FlowDataManager,
        input_filename: str | None = None,
        start_position: int | None = None,
        end_position: int | None = None,
        **params: Any,
    ) -> None:
        self._bind(classname, data_manager, params)
        self.input_filename = input_filename
        self.start_position = start_position
        self.end_position = end_position


class H5FlowStage(_FlowObject):
    """One step of the loop: ``run(source_name, source_slice, cache)`` once per chunk.

    Attributes: ``name`` (block name), ``classname``, ``class_version``,
    ``data_manager``, ``requires`` (list of requirement dicts), ``comm``, ``rank``, ``size``.
    """

    def __init__(
        self,
        name: str,
        classname: str,
        data_manager: H5FlowDataManager,
        requires: list[dict[str, Any]] | None = None,
        **params: Any,
    ) -> None:
        self.name = name
        self.requires = requires if requires is not None else []
        self._bind(classname, data_manager, params)

    def init(self, source_name: str) -> None:
        """Called once before the loop: create datasets and write metadata here."""

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        """Called once per chunk with the chunk's rows and the required data in ``cache``."""

    def finish(self, source_name: str) -> None:
        """Called once after the loop."""


class H5FlowGenerator(_Positioned):
    """Produces the slices of the loop; ``next()`` returns :attr:`EMPTY` when done.

    Every rank calls ``next()`` in step; the loop ends when all ranks return EMPTY.
    On resume, ``next()`` is called again for the finished chunks (with their stage
    work skipped), so it must be deterministic and cheap (a slice other than the
    journal's stops the run, and the next run starts over).
    """

    EMPTY: ClassVar[slice] = slice(-1, -1)

    def __init__(
        self,
        classname: str,
        dset_name: str,
        data_manager: H5FlowDataManager,
        input_filename: str | None = None,
        start_position: int | None = None,
        end_position: int | None = None,
        **params: Any,
    ) -> None:
        self.dset_name = dset_name
        super().__init__(
            classname, data_manager, input_filename, start_position, end_position, **params
        )

    def __iter__(self) -> H5FlowGenerator:
        return self

    def __next__(self) -> slice:
        next_slice = self.next()
        if all(s == H5FlowGenerator.EMPTY for s in self.comm.allgather(next_slice)):
            raise StopIteration
        return next_slice

    def init(self) -> None:
        """Called once before the stages' ``init``."""

    def next(self) -> slice:
        """The next slice of ``dset_name`` (or :attr:`EMPTY`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement next()")

    def finish(self) -> None:
        """Called once after the loop."""


class H5FlowResource(_Positioned):
    """A shared object for stages, in ``resources[classname]`` (``init``/``finish`` hooks)."""

    def init(self, source_name: str) -> None:
        """Called once before the generator's ``init``."""

    def finish(self, source_name: str) -> None:
        """Called once after the stages' ``finish``."""


def requirement_dicts(requires: tuple[Requirement, ...]) -> list[dict[str, Any]]:
    """``requires`` in h5flow's normalised form (what ``stage.requires`` holds)."""
    return [{"name": r.name, "path": list(r.path), "index_only": r.index_only} for r in requires]
