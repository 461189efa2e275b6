"""References between flow datasets: ``dereference`` and ``dereference_chain``.

A reference dataset is an ``(L, 2)`` array of row indices (parent, child); a region
dataset holds, per row of one side, the ``[start, stop)`` range of the reference rows
that mention it, so a selection loads only the references it needs. Both are 64-bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.ma as ma
from numpy.typing import NDArray

__all__ = ["REF_DTYPE", "dereference", "dereference_chain", "ref_region_dtype"]

#: Row indices inside ``ref`` datasets (h5flow used 32 bits; files over 2**32 rows need 64).
REF_DTYPE = np.dtype("i8")
#: The dtype of ``ref_region`` lookup tables: the reference rows ``[start, stop)`` of a row.
ref_region_dtype = np.dtype([("start", "i8"), ("stop", "i8")])


def _selection(sel: Any, default_length: int | None) -> NDArray[np.int64]:
    """Selection (slice, index or indices) as a 1-D int64 array."""
    if isinstance(sel, slice):
        if sel.stop is not None and sel.stop < 0:
            return np.zeros(0, dtype=np.int64)  # H5FlowGenerator.EMPTY
        stop = sel.stop
        if stop is None:
            if default_length is None:
                raise ValueError(
                    f"dereference needs a slice with a stop (got {sel!r}) when no region is given."
                )
            stop = default_length
        return np.arange(*slice(sel.start, stop, sel.step).indices(stop), dtype=np.int64)
    return np.atleast_1d(np.asarray(sel)).astype(np.int64).ravel()


def _load_rows(dataset: Any, rows: NDArray[np.int64]) -> Any:
    """``dataset[rows]`` reading one contiguous block (h5py cannot fancy-index unsorted rows)."""
    if len(rows) == 0:
        return np.asarray(dataset[0:0])
    low, high = int(rows.min()), int(rows.max()) + 1
    return np.asarray(dataset[low:high])[rows - low]


def _sorted_pairs(parents: NDArray[Any], children: NDArray[Any]) -> bool:
    """Whether (parent, child) pairs are already in lexicographic order."""
    if len(parents) < 2:
        return True
    step = parents[1:] - parents[:-1]
    if bool(np.any(step < 0)):
        return False
    same = step == 0
    return not bool(np.any(children[1:][same] < children[:-1][same]))


def _empty(n_elem: int, dtype: np.dtype[Any], as_masked: bool) -> Any:
    if as_masked:
        return ma.array(np.zeros((n_elem, 1), dtype=dtype), mask=True, shrink=False)
    return [np.empty(0, dtype) for _ in range(n_elem)]


def _looks_like_data(value: Any) -> bool:
    """Whether a first argument is a dataset (the README's form) rather than a selection."""
    if value is None or isinstance(value, (slice, int, np.integer, list, tuple, range)):
        return False
    if hasattr(value, "id") and hasattr(value, "dtype"):  # an h5py.Dataset
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and np.dtype(dtype).kind not in "iub"


def dereference(
    first: Any = None,
    /,
    ref: Any = None,
    data: Any = None,
    region: Any = None,
    mask: Any = None,
    ref_direction: Sequence[int] = (0, 1),
    indices_only: bool = False,
    as_masked: bool = True,
    *,
    sel: Any = None,
) -> Any:
    """Load the rows of ``data`` that ``ref`` links to each row selected by ``sel``.

    Two calling forms are accepted: h5flow's code, ``dereference(sel, ref, data, region)``,
    and its README, ``dereference(data, ref, region, sel=...)`` (a dataset first; without
    ``sel`` every row of ``region`` is selected).

    Parameters
    ----------
    first
        ``sel``, or ``data`` in the README's form.
    sel
        A slice, an index or indices into the parent side (``ref[:, ref_direction[0]]``).
    ref
        ``(L, 2)`` reference dataset or array.
    data
        Dataset or array to load from (may be omitted with ``indices_only=True``).
    region
        Region dataset (read at ``sel``) or array with one row per selected item.
    mask
        Boolean, one per selected item; True items are not dereferenced (masked out).
    ref_direction
        ``(0, 1)`` matches ``sel`` against column 0 and loads column 1; ``(1, 0)`` the reverse.
    indices_only
        Return the indices into ``data`` instead of its rows.
    as_masked
        Return a masked array ``(len(sel), n)`` (n: the most links of any selected
        item; items ordered by child index); else a list of arrays, one per unmasked item.
    """
    if ref is None:
        raise TypeError("dereference needs the reference dataset 'ref'.")
    if _looks_like_data(first):
        region = data if region is None else region
        data = first
        if sel is None:
            sel = (
                slice(0, len(region))
                if region is not None
                else slice(0, int(np.max(np.asarray(ref[:])[:, int(ref_direction[0])])) + 1)
            )
    elif first is not None:
        sel = first
    if sel is None:
        raise TypeError("dereference needs a selection 'sel' (a slice, an index or indices).")
    parent_col, child_col = int(ref_direction[0]), int(ref_direction[1])
    region_is_array = region is not None and not hasattr(region, "id")
    default_length = len(region) if region is not None and not region_is_array else None
    sel_idx = _selection(sel, default_length)
    n_elem = len(sel_idx)
    sel_mask = (
        np.zeros(n_elem, dtype=bool) if mask is None else np.asarray(mask, dtype=bool).ravel()
    )
    if len(sel_mask) != n_elem:
        raise ValueError(f"mask has {len(sel_mask)} entries for {n_elem} selected items.")
    chosen = sel_idx[~sel_mask]
    return_dtype = np.dtype(ref.dtype) if indices_only else np.dtype(data.dtype)
    if len(chosen) == 0:
        return _empty(n_elem if as_masked else 0, return_dtype, as_masked)

    if region is not None:
        regions = np.asarray(region)[~sel_mask] if region_is_array else _load_rows(region, chosen)
        valid = regions["start"] != regions["stop"]
        if not valid.any():
            return _empty(n_elem if as_masked else len(chosen), return_dtype, as_masked)
        ref_block = np.asarray(
            ref[int(regions["start"][valid].min()) : int(regions["stop"][valid].max())]
        )
    else:
        ref_block = np.asarray(ref[:])
    if ref_block.ndim != 2 or ref_block.shape[-1] != 2:
        ref_block = ref_block.reshape(-1, 2)

    if len(chosen) < 2 or bool(np.all(chosen[1:] > chosen[:-1])):  # sorted, unique: a slice
        uniq_sel, inverse = chosen, np.arange(len(chosen))
    else:
        uniq_sel, inverse = np.unique(chosen, return_inverse=True)
    parents = ref_block[:, parent_col]
    children = ref_block[:, child_col]
    n_uniq = len(uniq_sel)
    identity = (
        len(inverse) == n_uniq and not sel_mask.any() and bool(np.all(inverse == np.arange(n_uniq)))
    )
    low = int(uniq_sel[0])
    if int(uniq_sel[-1]) - low + 1 == n_uniq:  # a contiguous range (a slice): no search needed
        group = parents - low
        keep = (group >= 0) & (group < n_uniq)
    else:
        group = np.searchsorted(uniq_sel, parents)
        keep = group < n_uniq
        keep[keep] = uniq_sel[group[keep]] == parents[keep]
    if not keep.all():
        parents, children, group = parents[keep], children[keep], group[keep]
    if not _sorted_pairs(parents, children):  # references are usually appended in order
        order = np.lexsort((children, parents))
        parents, children, group = parents[order], children[order], group[order]
    counts = np.bincount(group, minlength=len(uniq_sel))

    if indices_only:
        values: Any = children
    else:
        values = _load_rows(data, children.astype(np.int64))

    if not as_masked:
        bounds = np.concatenate(([0], np.cumsum(counts)))
        return [values[bounds[g] : bounds[g + 1]] for g in inverse]

    width = max(int(counts.max()) if len(counts) else 0, 1)
    starts = np.cumsum(counts) - counts
    column = np.arange(len(parents)) - starts[group]
    condensed = np.zeros((n_uniq, width), dtype=return_dtype)
    condensed_mask = np.ones((n_uniq, width), dtype=bool)
    flat = group * width + column
    condensed.reshape(-1)[flat] = values
    condensed_mask.reshape(-1)[flat] = False
    if identity:  # one row per selected item, in order: the condensed table is the answer
        return ma.array(condensed, mask=condensed_mask, shrink=False)

    out = np.zeros((n_elem, width), dtype=return_dtype)
    out_mask = np.ones((n_elem, width), dtype=bool)
    out[~sel_mask] = condensed[inverse]
    out_mask[~sel_mask] = condensed_mask[inverse]
    return ma.array(out, mask=out_mask, shrink=False)


def _row_mask(masked: Any) -> NDArray[np.bool_]:
    """One boolean per element of a masked array (structured dtypes: any field masked)."""
    m = ma.getmaskarray(masked)
    if m.dtype.names:
        stacked = np.stack([np.asarray(m[name], dtype=bool) for name in m.dtype.names], axis=-1)
        return np.asarray(np.any(stacked, axis=-1), dtype=bool)
    return np.asarray(m, dtype=bool)


def dereference_chain(
    sel: Any,
    refs: Sequence[Any],
    data: Any = None,
    regions: Sequence[Any] | None = None,
    mask: Any = None,
    ref_directions: Sequence[Sequence[int]] | None = None,
    indices_only: bool = False,
) -> Any:
    """Follow references through several datasets, e.g. ``A -> B -> C``.

    Each step dereferences the indices found by the previous one; the result has one
    more dimension per step: ``(len(sel), n_ab, n_bc, ...)``, masked where a link is missing.

    Parameters
    ----------
    sel
        A slice, an index or indices into the first dataset.
    refs
        The reference datasets of each step, in order.
    data
        The dataset to load at the end (omit with ``indices_only=True``).
    regions
        Region datasets of each step (parent side), or None to scan whole references.
    mask
        Boolean per selected item of the first dataset; True items are masked out.
    ref_directions
        One ``(parent column, child column)`` per step (default ``(0, 1)`` each).
    indices_only
        Return indices into the last dataset instead of its rows.
    """
    first_region = regions[0] if regions else None
    default_length = len(first_region) if first_region is not None else None
    current = _selection(sel, default_length)
    shape: tuple[int, ...] = (len(current),)
    current_mask = np.zeros(shape, dtype=bool)
    if mask is not None:
        current_mask |= np.asarray(mask, dtype=bool).reshape(shape)
    result: Any = None
    n_steps = len(refs)
    for step in range(n_steps):
        last = step == n_steps - 1
        direction = ref_directions[step] if ref_directions else (0, 1)
        step_region = regions[step] if regions else None
        result = dereference(
            current.ravel(),
            refs[step],
            data=data if last else None,
            region=step_region,
            mask=current_mask.ravel(),
            ref_direction=direction,
            indices_only=indices_only if last else True,
        )
        shape = (*shape, result.shape[-1])
        current_mask = np.expand_dims(current_mask, -1) | _row_mask(result).reshape(shape)
        result = ma.array(np.asarray(result.data).reshape(shape), mask=current_mask, shrink=False)
        if not last:
            current = np.asarray(result.data).astype(np.int64)
    return result
