"""``H5FlowDataManager``: h5flow's data API over a per-rank replica or one shared file.

Every write is an *effect* (``create``, ``resize``, ``write``, ``attrs``, ...); collective
calls (``reserve_data``, ``write_data``, ``write_ref``) gather every rank's part in rank
order, and every rank applies the same metadata effects in the same order. Rank 0
records the effects of each loop step for the resume journal. Two ways to hold them:

* *replicas* (the pip ``h5py``, which has no parallel HDF5, so no two processes may
  write one file): every rank keeps its own file holding what the flow wrote (datasets
  of the input are read from the input file, which every rank opens read-only, and are
  copied into the replica only when written: copy-on-write; rank 0's replica starts as
  a byte copy of the input instead and becomes the output). Every rank applies every
  effect, data included, so all replicas stay identical and each rank can read what
  any rank wrote.
* *shared* (an ``h5py`` built with parallel HDF5, ``mpio=True``): every rank opens one
  file (a copy of the input) with the ``mpio`` driver. Metadata effects (create,
  resize, attrs, delete) are HDF5 collective calls made by every rank (``set_attrs`` is
  a checked collective call there, writing rank 0's values); each rank writes
  only its own rows (independent I/O), rank 0 the ``ref_region`` updates; the data goes
  to rank 0 only, for the journal. A barrier ends every collective write, so any rank
  reads what any rank wrote on a file system where a finished write is seen by every
  process (POSIX: local disks, Lustre, GPFS; MPI's atomic mode would make it hold
  everywhere, but costs ~45x in writes). Variable-length data and
  filtered (compressed) datasets cannot be written this way (parallel HDF5 writes them
  only collectively, or not at all): such a write raises ``ReplicasNeeded`` on every
  rank, and the flow runs the config again with replicas, resuming from its journal.
"""

from __future__ import annotations

import copy
import itertools
import logging
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from persistable.flow._errors import FlowError, FlowStageError
from persistable.flow._mpi import SerialComm
from persistable.flow._refs import REF_DTYPE, dereference_chain, ref_region_dtype

__all__ = ["Effect", "H5FlowDataManager", "ReplicasNeeded", "is_dropped"]

logger = logging.getLogger(__name__)

#: One write applied to a replica: ``(kind, path, *arguments)``.
Effect = tuple[Any, ...]


def _h5py() -> Any:
    from persistable.flow._h5 import h5py

    return h5py()


class ReplicasNeeded(FlowError):
    """A write the ``mpio`` driver cannot make (raised on every rank at the same call)."""


def _mpio_problem(dset: Any) -> str | None:
    """Why ranks cannot write ``dset`` independently with ``mpio`` (or None when they can)."""
    if dset.dtype.hasobject:
        return f"{dset.name} holds variable-length data"
    if dset.id.get_create_plist().get_nfilters():
        return f"{dset.name} is filtered (compressed)"
    return None


def is_dropped(path: str, drop: Iterable[str]) -> bool:
    """Whether object ``path`` belongs to a dropped object (exact names) or references one."""
    path = path.strip("/")
    for name in drop:
        name = name.strip("/")
        if path == name or path.startswith(name + "/"):
            return True
        if re.fullmatch(rf".+/ref/{re.escape(name)}(/.*)?", path):
            return True
    return False


class H5FlowDataManager:
    """Access to the flow's datasets, references and attributes (h5flow's API).

    Parameters
    ----------
    filepath
        This rank's replica file (created empty, or as a copy of the input).
    input_filename
        The input file, opened read-only (None for generator-only flows).
    comm
        The communicator (serial when MPI is off).
    compression
        HDF5 compression of new datasets (``"gzip"``, ``"lzf"`` or None).
    copy_input
        Start the replica as a byte copy of the input (rank 0 of a flow): the replica is
        then the whole output, and needs no merge unless objects were deleted or dropped.
    mpio
        Every rank opens ``filepath`` itself with h5py's ``mpio`` driver (needs an MPI
        ``comm`` and an h5py built with parallel HDF5); the file then starts as a copy of
        the input whatever ``copy_input`` is (rank 0 makes it before the others open it).
    """

    def __init__(
        self,
        filepath: str | Path,
        input_filename: str | Path | None = None,
        comm: SerialComm | None = None,
        compression: str | None = None,
        drop_list: Sequence[str] = (),
        *,
        copy_input: bool = False,
        mpio: bool = False,
    ) -> None:
        h5py = _h5py()
        self.filepath = str(filepath)
        self.input_filename = None if input_filename is None else str(input_filename)
        self.comm = comm if comm is not None else SerialComm()
        self.rank = self.comm.rank
        self.size = self.comm.size
        self.compression = compression
        self.drop_list = list(drop_list)
        #: One file shared by every rank (``mpio``), instead of one replica per rank.
        self.shared = bool(mpio and self.comm.is_mpi)
        copied = input_filename is not None and (copy_input or self.shared)
        if self.shared:
            if self.rank == 0 and copied:
                shutil.copyfile(cast(str, input_filename), self.filepath)
            self.comm.barrier()
            self.fh = h5py.File(
                self.filepath, "r+" if copied else "w", driver="mpio", comm=self.comm.world
            )
        elif copied:
            shutil.copyfile(cast(str, input_filename), self.filepath)  # a kernel copy
            self.fh = h5py.File(self.filepath, "r+")
        else:
            self.fh = h5py.File(self.filepath, "w")
        self._in = None if input_filename is None else h5py.File(self.input_filename, "r")
        #: Paths of objects deleted by the flow (absent from reads and the output).
        self.deleted: set[str] = set()
        self._recording = self.rank == 0
        self._effects: list[Effect] = []
        #: Where rank 0's effects go the moment they are made (the resume journal's
        #: open step), instead of ``_effects``; see ``journal_to``.
        self._sink: Callable[[Effect], None] | None = None
        self._objects: dict[str, tuple[Any, bool]] = {}
        self._regions: dict[str, list[str]] = {}
        self._mpio_checked: set[str] = set()

    def __repr__(self) -> str:
        return f"H5FlowDataManager(filepath={self.filepath!r}, input={self.input_filename!r}, rank={self.rank}/{self.size})"

    # -- files -------------------------------------------------------------------

    def close(self) -> None:
        """Close the replica and the input file."""
        if self.fh:
            self.fh.close()
        if self._in is not None and self._in:
            self._in.close()

    def finish(self) -> None:
        """Flush the replica (the output file is assembled by the flow afterwards)."""
        if self.fh:
            self.fh.flush()

    def __enter__(self) -> H5FlowDataManager:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if self.shared and error is not None and not isinstance(error, ReplicasNeeded):
            # Closing a shared file is collective: it would wait for the ranks that did
            # not fail. The failing rank stops the job instead (MPI_Abort, in run_flow).
            return
        self.close()

    def _is_deleted(self, path: str) -> bool:
        path = path.strip("/")
        return any(path == d or path.startswith(d + "/") for d in self.deleted)

    def _lookup(self, path: str) -> Any:
        """The object ``path`` (replica first, then the input), or None."""
        found = self._find(path)
        return None if found is None else found[0]

    def _find(self, path: str) -> tuple[Any, bool] | None:
        """``(object, whether it is in the replica)`` for ``path``, or None.

        Found objects are cached by path (an HDF5 lookup costs about a millisecond);
        the cache is cleared whenever an object is created, copied or deleted.
        """
        path = path.strip("/")
        found = self._objects.get(path)
        if found is not None:
            return found
        if path in self.fh:
            found = (self.fh[path], True)
        elif self._in is not None and not self._is_deleted(path) and path in self._in:
            found = (self._in[path], False)
        if found is not None:
            self._objects[path] = found
        return found

    def _forget(self) -> None:
        """Drop the lookup caches (an object was created, copied or deleted)."""
        self._objects.clear()
        self._regions.clear()
        self._mpio_checked.clear()

    def _obj(self, path: str) -> Any:
        found = self._lookup(path)
        if found is None:
            raise KeyError(f"{path.strip('/')!r} is neither in the output nor in the input file")
        return found

    # -- effects -------------------------------------------------------------------

    def journal_to(self, sink: Callable[[Effect], None] | None) -> None:
        """Hand each effect recorded from now on to ``sink`` as it is made (None: keep them).

        The sink writes it out at once, so the rows of a ``write_data`` need no copy
        (the stage may change its array afterwards; the journal has what was written).
        """
        self._sink = sink

    def take_effects(self) -> list[Effect]:
        """The effects recorded since the last call (rank 0 only; others get [])."""
        effects, self._effects = self._effects, []
        return effects

    def apply(self, effects: Iterable[Effect]) -> None:
        """Apply recorded effects (a journal replay) without recording them again."""
        recording, self._recording = self._recording, False
        try:
            for effect in effects:
                self._apply(effect)
        finally:
            self._recording = recording
        self._settle()

    def _settle(self) -> None:
        """End a collective write on a shared file: every rank's writes are done (a barrier)."""
        if self.shared:
            self.comm.barrier()

    def _apply(self, effect: Effect, writer: int | None = None) -> None:
        """Apply (and on rank 0 record) ``effect``.

        A ``write`` on a shared file is made by rank ``writer`` only (rank 0 when None:
        a journal replay, a ``ref_region`` update); with replicas, by every rank.
        """
        kind, path = effect[0], effect[1]
        fh = self.fh
        if kind in ("group", "dataset", "delete"):
            self._forget()
        if kind == "group":
            self._require_group(path)
        elif kind == "dataset":
            shape, maxshape, dtype, fill, compression = effect[2:]
            if self.shared and np.dtype(dtype).hasobject:
                raise ReplicasNeeded(f"{path} would hold variable-length data")
            self._require_group(path.rsplit("/", 1)[0] if "/" in path else "")
            if path not in fh:
                fh.create_dataset(
                    path,
                    shape=shape,
                    maxshape=maxshape,
                    dtype=dtype,
                    fillvalue=fill,
                    compression=compression,
                    chunks=True,
                )
        elif kind == "attrs":
            self._writable(path, group_if_missing=True)
            for key, value in effect[2].items():
                self._obj(path).attrs[key] = value
        elif kind == "resize":
            self._writable(path)
            dset = self._obj(path)
            dset.resize((effect[2], *dset.shape[1:]))
        elif kind == "write":
            if self.shared:
                self._check_mpio(path)
            if not self.shared or (writer or 0) == self.rank:
                self._writable(path)
                sel, data = effect[2], effect[3]
                self._obj(path)[sel] = data
        elif kind == "delete":
            if path in fh:
                del fh[path]
            self.deleted.add(path)  # hidden in the input; its space is given back by a rewrite
        else:  # pragma: no cover - effects are made by this module only
            raise ValueError(f"unknown effect {kind!r}")
        if self._recording:
            if self._sink is not None:
                self._sink(effect)
            else:
                self._effects.append(effect)

    def _require_group(self, path: str) -> None:
        """Create ``path`` and its parents in the replica, taking over input attributes."""
        path = path.strip("/")
        if not path:
            return
        current = ""
        for part in path.split("/"):
            current = f"{current}/{part}" if current else part
            if current not in self.fh:
                self._forget()
                group = self.fh.create_group(current)
                if self._in is not None and current in self._in and not self._is_deleted(current):
                    for key, value in self._in[current].attrs.items():
                        group.attrs[key] = value

    def _writable(self, path: str, group_if_missing: bool = False) -> None:
        """Make ``path`` exist in the replica (copy-on-write from the input)."""
        path = path.strip("/")
        found = self._find(path)
        if found is not None and found[1]:
            return
        h5py = _h5py()
        source = None if self._in is None or self._is_deleted(path) else self._in.get(path)
        if isinstance(source, h5py.Dataset):
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            self._require_group(parent)
            self._forget()
            source.file.copy(
                source, self.fh[parent] if parent else self.fh, name=path.rsplit("/", 1)[-1]
            )
        elif source is not None or group_if_missing:
            self._require_group(path)
        else:
            raise KeyError(f"{path!r} does not exist; create it first (create_dset/create_ref)")

    def _check_mpio(self, *paths: str) -> None:
        """On a shared file: raise ``ReplicasNeeded`` if ranks cannot write these datasets."""
        for path in paths:
            path = path.strip("/")
            if path not in self._mpio_checked:
                problem = _mpio_problem(self._obj(path))
                if problem is not None:
                    raise ReplicasNeeded(problem)
                self._mpio_checked.add(path)

    def _parts(
        self, op: str, name: str, summary: Any, data: Any
    ) -> tuple[list[Any], list[Any] | None]:
        """Every rank's ``summary`` and, where this rank needs them, every rank's ``data``.

        With replicas every rank gets all the data (each writes all of it); on a shared
        file only rank 0 does (it journals them), the others get None.
        """
        if not self.shared:
            gathered = self._collect(op, name, (summary, data))
            return [g[0] for g in gathered], [g[1] for g in gathered]
        summaries = self._collect(op, name, summary)
        return summaries, self.comm.gather(data)  # None on every rank but 0

    def _collect(self, op: str, name: str, payload: Any) -> list[Any]:
        """Allgather ``payload`` of a collective call, checking every rank made the same call."""
        gathered = self.comm.allgather((op, name, payload))
        for rank, (other_op, other_name, _) in enumerate(gathered):
            if (other_op, other_name) != (op, name):
                raise FlowStageError(
                    f"Rank {self.rank} called {op}({name!r}) while rank {rank} called "
                    f"{other_op}({other_name!r}); collective data-manager calls "
                    "(reserve_data, write_data, write_ref; set_attrs too when the ranks share one "
                    "mpio file) must be made by every rank in the same order "
                    "(pass an empty slice or array on a rank with nothing to write)."
                )
        return [p for _, _, p in gathered]

    # -- queries -------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        """Whether object ``path`` exists (output or input)."""
        return self._lookup(path) is not None

    def dset_exists(self, dataset_name: str) -> bool:
        return self.exists(f"{dataset_name}/data")

    def ref_exists(self, parent_dataset_name: str, child_dataset_name: str) -> bool:
        return self.exists(f"{parent_dataset_name}/ref/{child_dataset_name}/ref") or self.exists(
            f"{child_dataset_name}/ref/{parent_dataset_name}/ref"
        )

    def ref_region_exists(self, parent_dataset_name: str, child_dataset_name: str) -> bool:
        return self.exists(f"{parent_dataset_name}/ref/{child_dataset_name}/ref_region")

    def attr_exists(self, name: str, key: str) -> bool:
        return self.exists(name) and key in self._obj(name).attrs

    def get_dset(self, dataset_name: str) -> Any:
        """The ``h5py.Dataset`` ``<dataset_name>/data``."""
        return self._obj(f"{dataset_name}/data")

    def get_attrs(self, name: str) -> Any:
        """The attributes of object ``name`` (an ``h5py.AttributeManager``)."""
        return self._obj(name).attrs

    def get_ref(
        self, parent_dataset_name: str, child_dataset_name: str
    ) -> tuple[Any, tuple[int, int]]:
        """The reference dataset linking the two and its direction ((0, 1) or (1, 0))."""
        path = f"{parent_dataset_name}/ref/{child_dataset_name}/ref"
        if self.exists(path):
            return self._obj(path), (0, 1)
        return self._obj(f"{child_dataset_name}/ref/{parent_dataset_name}/ref"), (1, 0)

    def get_ref_region(self, parent_dataset_name: str, child_dataset_name: str) -> Any:
        """The region table of ``parent -> child`` (one row per parent row)."""
        return self._obj(f"{parent_dataset_name}/ref/{child_dataset_name}/ref_region")

    def _region_paths(self, dataset_name: str) -> list[str]:
        base = f"{dataset_name.strip('/')}/ref"
        cached = self._regions.get(base)
        if cached is None:
            cached = self._regions[base] = self._find_region_paths(base)
        return cached

    def _find_region_paths(self, base: str) -> list[str]:
        h5py = _h5py()
        paths: set[str] = set()
        for fh in (self.fh, self._in):
            if fh is None or base not in fh or (fh is self._in and self._is_deleted(base)):
                continue

            def visit(name: str, obj: Any, base: str = base) -> None:
                if isinstance(obj, h5py.Dataset) and name.endswith("ref_region"):
                    paths.add(f"{base}/{name}")

            fh[base].visititems(visit)
        return sorted(p for p in paths if self.exists(p))

    def get_refs(self, dataset_name: str) -> list[Any]:
        """Every reference dataset involving ``dataset_name``."""
        refs = []
        for region in self._region_paths(dataset_name):
            target = self._obj(region).attrs["ref"]
            if self.exists(target):
                refs.append(self._obj(target))
        return refs

    def __getitem__(self, args: Any) -> Any:
        """``dm['a']`` an object; ``dm['a', sel]`` rows; ``dm['a', 'b', ..., sel]`` dereferenced rows."""
        if isinstance(args, str):
            return self._obj(args)
        args = tuple(args)
        sel: Any = None
        last = args[-1]
        if isinstance(last, slice):
            sel, args = last, args[:-1]
        elif isinstance(last, (int, np.integer)):
            sel, args = slice(int(last), int(last) + 1), args[:-1]
        elif not isinstance(last, (str, bytes)):
            sel, args = np.atleast_1d(np.asarray(last)).astype(np.int64), args[:-1]
        if len(args) == 1:
            dset = self.get_dset(args[0])
            return dset if sel is None else dset[sel]
        pairs = list(itertools.pairwise(args))
        regions = None
        if sel is None:
            sel = slice(0, len(self.get_dset(args[0])))
        else:
            regions = [self.get_ref_region(p, c) for p, c in pairs]
        refs, directions = zip(*(self.get_ref(p, c) for p, c in pairs), strict=False)
        return dereference_chain(
            sel,
            list(refs),
            data=self.get_dset(args[-1]),
            regions=regions,
            ref_directions=list(directions),
        )

    # -- writes (every rank calls them with the same arguments) ----------------------

    def set_attrs(self, name: str, **attrs: Any) -> None:
        """Set attributes of object ``name`` (a group is created when missing)."""
        values = copy.deepcopy(attrs) if self._recording else attrs  # journaled as set now
        if self.shared:  # a collective HDF5 call: every rank writes rank 0's values
            values = self._collect("set_attrs", name.strip("/"), values)[0]
        self._apply(("attrs", name.strip("/"), values))

    def create_dset(self, dataset_name: str, dtype: Any, shape: tuple[int, ...] = ()) -> None:
        """Create the growable 1-D dataset ``<dataset_name>/data`` unless it exists."""
        path = f"{dataset_name.strip('/')}/data"
        if self.exists(path):
            return
        self._apply(
            ("dataset", path, (0, *shape), (None, *shape), np.dtype(dtype), None, self.compression)
        )

    def create_ref(self, parent_dataset_name: str, child_dataset_name: str) -> None:
        """Create ``parent/ref/child/ref`` and both region tables (both datasets must exist)."""
        parent, child = parent_dataset_name.strip("/"), child_dataset_name.strip("/")
        child_path = f"{child}/ref/{parent}"
        if self.exists(child_path + "/ref"):
            raise FlowStageError(
                f"References {parent}->{child} already exist as {child_path}/ref; "
                f"use get_ref({parent!r}, {child!r}) instead of creating them again."
            )
        path = f"{parent}/ref/{child}"
        if self.exists(path + "/ref"):
            return
        parent_dset, child_dset = self.get_dset(parent), self.get_dset(child)
        fill = np.zeros((), dtype=ref_region_dtype)
        self._apply(
            ("dataset", path + "/ref", (0, 2), (None, 2), REF_DTYPE, None, self.compression)
        )
        self._apply(("attrs", path + "/ref", {"dset0": parent_dset.name, "dset1": child_dset.name}))
        for region, length in ((path, len(parent_dset)), (child_path, len(child_dset))):
            self._apply(
                (
                    "dataset",
                    region + "/ref_region",
                    (length,),
                    (None,),
                    ref_region_dtype,
                    fill,
                    self.compression,
                )
            )
            self._apply(("attrs", region + "/ref_region", {"ref": f"/{path}/ref"}))
        self._apply(
            (
                "attrs",
                path + "/ref",
                {"ref_region0": f"/{path}/ref_region", "ref_region1": f"/{child_path}/ref_region"},
            )
        )

    def _resize_data(self, path: str, length: int) -> None:
        """Resize a dataset; a ``/data`` dataset also grows the region tables of its references."""
        self._apply(("resize", path.strip("/"), int(length)))
        if not path.endswith("/data"):
            return
        for ref in self.get_refs(path.strip("/")[: -len("/data")]):
            for side in ("0", "1"):
                region = str(ref.attrs[f"ref_region{side}"]).strip("/")
                target = len(self._obj(str(ref.attrs[f"dset{side}"])))
                if len(self._obj(region)) < target:
                    self._apply(("resize", region, target))

    def reserve_data(self, dataset_name: str, spec: Any) -> slice:
        """Reserve rows: an int appends that many (in rank order), a slice grows the dataset to it."""
        path = f"{dataset_name.strip('/')}/data"
        if isinstance(spec, (int, np.integer)):
            counts = [int(c) for c in self._collect("reserve_data", dataset_name, int(spec))]
            current = len(self.get_dset(dataset_name))
            self._resize_data(path, current + sum(counts))
            start = current + sum(counts[: self.rank])
            return slice(start, start + counts[self.rank])
        if isinstance(spec, slice):
            specs = self._collect("reserve_data", dataset_name, spec)
            needed = max(int(s.stop) for s in specs if s.stop is not None) if specs else 0
            if needed > len(self.get_dset(dataset_name)):
                self._resize_data(path, needed)
            return spec
        raise TypeError(f"reserve_data needs an int (rows to append) or a slice, got {spec!r}.")

    def write_data(self, dataset_name: str, spec: Any, data: Any) -> None:
        """Write ``data`` at ``spec`` (collective: every rank calls it, in the same order)."""
        path = f"{dataset_name.strip('/')}/data"
        if self.shared:
            # Every rank, whether it has rows or not: making the dataset writable (a no-op
            # on a shared file, which starts as a copy of the input) is HDF5 metadata
            # there, which only every rank together may change.
            self._writable(path)
            self._check_mpio(path)
        # Rank 0 journals the rows as written now: a copy when the effects are kept for
        # later, since a stage may change its array afterwards (a reused buffer) and the
        # replay must write what was written; a journal sink writes them out at once.
        copied = self._recording and self._sink is None
        mine = np.array(data, copy=True) if copied else np.asarray(data)
        specs, datas = self._parts("write_data", dataset_name, (spec, mine.size), mine)
        for rank, (rank_spec, size) in enumerate(specs):
            if isinstance(rank_spec, slice) and rank_spec.start is not None and rank_spec.start < 0:
                continue  # an empty generator slice
            if size == 0:
                continue
            if datas is not None:
                self._apply(("write", path, rank_spec, datas[rank]), writer=rank)
            elif rank == self.rank:
                self._apply(("write", path, rank_spec, mine), writer=rank)
        self._settle()

    def write_ref(self, parent_dataset_name: str, child_dataset_name: str, refs: Any) -> None:
        """Append ``(N, 2)`` parent->child row pairs (collective) and update both region tables."""
        arr = np.asarray(refs, dtype=np.int64).reshape(-1, 2)
        ref_dset, direction = self.get_ref(parent_dataset_name, child_dataset_name)
        ref_path = ref_dset.name.strip("/")
        parent_region = self.get_ref_region(parent_dataset_name, child_dataset_name).name.strip("/")
        child_region = self.get_ref_region(child_dataset_name, parent_dataset_name).name.strip("/")
        if self.shared:
            self._check_mpio(ref_path, parent_region, child_region)
        highs = arr.max(axis=0) + 1 if len(arr) else np.zeros(2, dtype=np.int64)
        summaries, parts = self._parts(
            "write_ref",
            f"{parent_dataset_name}->{child_dataset_name}",
            (len(arr), int(highs[0]), int(highs[1])),
            arr,
        )
        offset = len(ref_dset)
        total = sum(n for n, _, _ in summaries)
        if not total:
            self._settle()
            return
        self._apply(("resize", ref_path, offset + total))
        start = offset
        for rank, (n, _, _) in enumerate(summaries):
            if n and (parts is not None or rank == self.rank):
                rows = arr if parts is None else parts[rank]
                written = slice(start, start + n)
                self._apply(("write", ref_path, written, rows[:, list(direction)]), writer=rank)
            start += n
        every = None if parts is None else np.concatenate(parts)
        for side, region in ((0, parent_region), (1, child_region)):
            high = max(h[side + 1] for h in summaries if h[0])
            self._update_region(region, None if every is None else every[:, side], offset, high)
        self._settle()

    def _update_region(
        self, region_path: str, rows: np.ndarray[Any, Any] | None, offset: int, high: int
    ) -> None:
        """Grow the region table to ``high`` rows; fold in the refs from ``offset`` on.

        ``rows`` (the parent or child row of every new ref, in order) is None on the
        ranks of a shared file other than 0: they only join the collective resize.
        """
        region_dset = self._obj(region_path)
        if len(region_dset) < high:
            self._apply(("resize", region_path, high))
            region_dset = self._obj(region_path)
        if rows is None:
            return
        low = int(rows.min())
        current = np.asarray(region_dset[low:high])
        positions = np.arange(len(rows), dtype=np.int64) + offset
        local = rows - low
        new_start = np.full(high - low, np.iinfo(np.int64).max, dtype=np.int64)
        new_stop = np.full(high - low, -1, dtype=np.int64)
        np.minimum.at(new_start, local, positions)
        np.maximum.at(new_stop, local, positions + 1)
        touched = new_stop >= 0
        valid = current["start"] != current["stop"]
        updated = current.copy()
        updated["start"] = np.where(
            touched,
            np.where(valid, np.minimum(current["start"], new_start), new_start),
            current["start"],
        )
        updated["stop"] = np.where(
            touched,
            np.where(valid, np.maximum(current["stop"], new_stop), new_stop),
            current["stop"],
        )
        self._apply(("write", region_path, slice(low, high), updated))

    def delete(self, name: str) -> None:
        """Delete object ``name`` and every reference to or from it."""
        name = name.strip("/")
        for ref in self.get_refs(name):
            for side in ("0", "1"):
                region = str(ref.attrs[f"ref_region{side}"]).strip("/")
                self._apply(("delete", region.rsplit("/", 1)[0]))
        if self.exists(name):
            self._apply(("delete", name))
