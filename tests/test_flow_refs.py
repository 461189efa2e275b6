"""References: the seed README's dereference example, chains, and 64-bit indices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.ma as ma
import pytest

from persistable.flow import H5FlowDataManager, dereference, dereference_chain, ref_region_dtype


def _naive(
    sel: Any, ref: np.ndarray[Any, Any], data: np.ndarray[Any, Any], direction: tuple[int, int]
) -> list[list[Any]]:
    """For each selected row, the linked data rows ordered by child index (plain Python)."""
    p, c = direction
    out = []
    for i in sel:
        children = sorted(int(r[c]) for r in ref if r[p] == i)
        out.append([data[j] for j in children])
    return out


@pytest.fixture
def ab_file(tmp_path: Path) -> Path:
    """Datasets A (structured) and B (float) with A->B references: row i of A links 0-3 rows of B."""
    path = tmp_path / "ab.h5"
    rng = np.random.default_rng(3)
    a = np.zeros(30, [("id", "i8"), ("some_val", "f4")])
    a["id"] = np.arange(30)
    b = rng.random(70).astype("f4")
    pairs = [
        (i, int(j)) for i in range(30) for j in rng.choice(70, rng.integers(0, 4), replace=False)
    ]
    with H5FlowDataManager(path) as dm:
        dm.create_dset("A", a.dtype)
        dm.create_dset("B", b.dtype)
        dm.create_ref("A", "B")
        dm.write_data("A", dm.reserve_data("A", len(a)), a)
        dm.write_data("B", dm.reserve_data("B", len(b)), b)
        for start in range(0, len(pairs), 17):  # several appends, as a chunk loop does
            dm.write_ref("A", "B", np.array(pairs[start : start + 17]))
    return path


def test_seed_readme_dereference_example(ab_file: Path) -> None:
    """The seed README's b2a / a2b / sel example holds, and matches a plain-Python reference."""
    with h5py.File(ab_file, "r") as f:
        assert f["/A/ref/B/ref"].dtype == np.dtype("i8")
        assert f["/A/ref/B/ref_region"].dtype == ref_region_dtype
        ref = f["/A/ref/B/ref"][:]
        b2a = dereference(
            f["/B/data"],  # dataset to load, shape: (M,)
            f["/A/ref/B/ref"],  # references to use, shape: (L,)
            f["/A/ref/B/ref_region"],  # lookup regions in references, shape: (N,)
            as_masked=True,  # return a numpy masked array
        )
        n = max(np.bincount(ref[:, 0], minlength=30))
        assert b2a.shape == (30, n)
        assert b2a.dtype == f["/B/data"].dtype
        b_sum = b2a.sum(axis=-1)
        expected = _naive(range(30), ref, f["/B/data"][:], (0, 1))
        np.testing.assert_allclose(ma.filled(b_sum, 0.0), [sum(x) for x in expected], rtol=1e-6)
        for row, values in zip(b2a, expected, strict=False):
            assert list(row.compressed()) == values

        a2b = dereference(
            f["/A/data"],  # dataset to load, shape: (N,)
            f["/A/ref/B/ref"],  # references to use, shape: (L,)
            f["/B/ref/A/ref_region"],  # lookup regions in references, shape: (M,)
            ref_direction=(1, 0),  # now use references from 1->0 (B->A)
            as_masked=True,
        )
        m = max(np.bincount(ref[:, 1], minlength=70))
        assert a2b.shape == (70, m)
        assert a2b.dtype == f["/A/data"].dtype
        expected_a = _naive(range(70), ref, f["/A/data"][:], (1, 0))
        for row, values in zip(a2b, expected_a, strict=False):
            present = row.data[~ma.getmaskarray(row)["id"]]
            assert [tuple(v) for v in present] == [tuple(v) for v in values]

        subset = dereference(
            f["/B/data"],
            f["/A/ref/B/ref"],
            f["/A/ref/B/ref_region"],
            sel=slice(0, 10),
            as_masked=True,
        )
        assert ma.allequal(
            subset,
            dereference(slice(0, 10), ref, f["/B/data"], f["/A/ref/B/ref_region"])[
                :, : subset.shape[-1]
            ],
        )
        assert subset.shape[0] == 10
        assert subset.shape[-1] <= b2a.shape[-1]
        for row, values in zip(subset, expected[:10], strict=False):
            assert list(row.compressed()) == values

        # without a region, with a mask, as lists and as indices
        masked = dereference(
            np.arange(5), ref, f["/B/data"][:], mask=np.array([0, 1, 0, 0, 0], bool)
        )
        assert masked.mask[1].all()
        lists = dereference(
            slice(0, 30), ref, f["/B/data"], f["/A/ref/B/ref_region"], as_masked=False
        )
        assert [list(x) for x in lists] == expected
        idx = dereference(slice(0, 30), ref, region=f["/A/ref/B/ref_region"], indices_only=True)
        assert idx.dtype == np.dtype("i8")


def test_chain_and_data_manager_getitem(tmp_path: Path) -> None:
    """dereference_chain through A->B<-C equals the data manager's dm['A', 'B', 'C', sel]."""
    path = tmp_path / "abc.h5"
    with H5FlowDataManager(path) as dm:
        for name in ("A", "B", "C"):
            dm.create_dset(name, "i8")
        dm.create_ref("A", "B")
        dm.create_ref("C", "B")
        a = np.arange(4)
        b = np.arange(12)
        c = np.arange(36)
        for name, values in (("A", a), ("B", b), ("C", c)):
            dm.write_data(name, dm.reserve_data(name, len(values)), values * 10)
        dm.write_ref("A", "B", np.c_[np.repeat(a, 3), b])
        dm.write_ref("C", "B", np.c_[c, np.repeat(b, 3)])
        chain = dm["A", "B", "C", slice(0, 4)]
        assert chain.shape == (4, 3, 3)
        np.testing.assert_array_equal(chain[1].compressed(), np.arange(9, 18) * 10)
        direct = dereference_chain(
            slice(0, 4),
            [dm.get_ref("A", "B")[0], dm.get_ref("B", "C")[0]],
            dm.get_dset("C"),
            regions=[dm.get_ref_region("A", "B"), dm.get_ref_region("B", "C")],
            ref_directions=[(0, 1), (1, 0)],
        )
        assert ma.allequal(direct, chain)
        assert dm["B", 5][0] == 50


def test_reference_indices_beyond_32_bits() -> None:
    """Row indices above 2**32 survive dereference (h5flow stored them as uint32)."""
    big = 2**33
    ref = np.array([[0, big], [1, big + 1]], dtype="i8")
    region = np.array([(0, 1), (1, 2)], dtype=ref_region_dtype)
    idx = dereference([0, 1], ref, region=region, indices_only=True)
    assert idx.compressed().tolist() == [big, big + 1]


def test_data_manager_regions_follow_growth_and_delete(tmp_path: Path) -> None:
    """Region tables grow with their datasets; reserve_data by slice; delete removes refs both ways."""
    with H5FlowDataManager(tmp_path / "dm.h5") as dm:
        dm.create_dset("A", "i8")
        dm.create_dset("B", "f4")
        dm.create_ref("A", "B")
        assert dm.reserve_data("A", 5) == slice(0, 5)
        assert len(dm.get_ref_region("A", "B")) == 5
        assert dm.reserve_data("A", slice(3, 9)) == slice(3, 9)
        assert len(dm.get_dset("A")) == 9
        assert len(dm.get_ref_region("A", "B")) == 9
        dm.write_data("B", dm.reserve_data("B", 4), np.arange(4))
        assert len(dm.get_ref_region("B", "A")) == 4
        dm.write_ref("A", "B", np.array([[8, 3], [8, 0]]))
        assert tuple(dm.get_ref_region("A", "B")[8]) == (0, 2)
        assert tuple(dm.get_ref_region("B", "A")[3]) == (0, 1)
        assert dm.get_ref("B", "A")[1] == (1, 0)
        assert len(dm.get_refs("A")) == 1
        dm.set_attrs("A", unit="mm")
        assert dm.get_attrs("A")["unit"] == "mm"
        dm.delete("B")
        assert not dm.dset_exists("B")
        assert not dm.ref_exists("A", "B")
        assert not dm.exists("A/ref/B")
        assert dm.dset_exists("A")
