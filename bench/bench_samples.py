"""Samples and science serializers: Cache hits against plain pickle loads, map on processes
against serial, and zarr / OME-TIFF write and read of a large array against the raw library
calls. Prints a markdown table (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_samples_nodes import Burn, Image, Normalize
from _common import Row, markdown_table, median_time, scratch_dir, time_call

from persistable import Persistable, PersistableParams
from persistable.io import OmeTiffFileIO, ZarrFileIO
from persistable.samples import Cache, Compose


@dataclass
class ArrayParams(PersistableParams):
    """Names one array."""

    name: str


class Held(Persistable[Any, ArrayParams]):
    """Persists the array handed to load_generate()."""

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return untracked_payload_params["payload"]


def cache_hit(folder: Path, count: int) -> list[Row]:
    """Per-sample time of a pipeline whose one step is a Cache hit, against pickle.load of the same sample."""
    rng = np.random.default_rng(0)
    samples = [
        Image(id=f"s{index}", image=rng.random((512, 512), dtype=np.float32))
        for index in range(count)
    ]
    pipeline = Compose([Cache(Normalize(scale=2.0))])
    store = folder / "cache"
    pipeline.map(samples, store=store)
    paths = []
    for sample in samples:
        path = folder / f"{sample.id}.pkl"
        path.write_bytes(pickle.dumps(pipeline(sample, store=store), protocol=5))
        paths.append(path)

    def hits() -> None:
        for sample in samples:
            pipeline(sample, store=store)

    def plain() -> None:
        for path in paths:
            with path.open("rb") as stream:
                pickle.load(stream)

    ours = median_time(hits, 5) / count
    raw = median_time(plain, 5) / count
    return [
        Row(
            f"Cache hit per sample (1 MiB image, {count} samples)",
            ours,
            "s",
            "pickle.load",
            raw,
            1.2,
        )
    ]


def mapping(count: int, workers: int) -> list[Row]:
    """``map`` of CPU-bound samples on processes against serial."""
    samples = [Image(id=f"s{index}", image=np.zeros(4, np.float32)) for index in range(count)]
    pipeline = Compose([Burn()])
    serial = time_call(lambda: pipeline.map(samples))
    processes = time_call(lambda: pipeline.map(samples, executor="processes", max_workers=workers))
    return [
        Row(
            f"map of {count} CPU-bound samples, processes ({workers} workers)",
            processes,
            "s",
            "serial",
            serial,
            None,
        )
    ]


def arrays(folder: Path, size_mib: int) -> list[Row]:
    """zarr and OME-TIFF write and read of one large array, against zarr and tifffile called directly."""
    import tifffile
    import zarr

    side = int((size_mib * 2**20 / 4 / 16) ** 0.5)
    data = np.random.default_rng(1).random((16, side, side), dtype=np.float32)
    rows: list[Row] = []

    def raw_zarr_write() -> None:
        target = folder / f"raw-{os.urandom(4).hex()}.zarr"
        array = zarr.create_array(
            zarr.storage.LocalStore(target),
            shape=data.shape,
            dtype=data.dtype,
            chunks=(1, side, side),
        )
        array[...] = data

    def ours_zarr_write() -> None:
        Held(
            folder / f"store-{os.urandom(4).hex()}",
            ArrayParams("z"),
            payload_io=ZarrFileIO(chunks=(1, side, side)),
        ).load_generate(payload=data)

    rows.append(
        Row(
            f"zarr write {size_mib} MiB",
            median_time(ours_zarr_write, 3),
            "s",
            "zarr",
            median_time(raw_zarr_write, 3),
            1.15,
        )
    )
    store = folder / "read-store"
    Held(store, ArrayParams("z"), payload_io=ZarrFileIO(chunks=(1, side, side))).load_generate(
        payload=data
    )
    raw_target = folder / "read.zarr"
    array = zarr.create_array(
        zarr.storage.LocalStore(raw_target),
        shape=data.shape,
        dtype=data.dtype,
        chunks=(1, side, side),
    )
    array[...] = data

    def ours_zarr_read() -> None:
        Held(store, ArrayParams("z"), payload_io=ZarrFileIO()).payload[...]

    def raw_zarr_read() -> None:
        zarr.open_array(zarr.storage.LocalStore(raw_target, read_only=True), mode="r")[...]

    rows.append(
        Row(
            f"zarr read {size_mib} MiB",
            median_time(ours_zarr_read, 3),
            "s",
            "zarr",
            median_time(raw_zarr_read, 3),
            1.15,
        )
    )
    tiff_io = OmeTiffFileIO(dims="ZYX")

    def raw_tiff_write() -> None:
        tifffile.imwrite(
            folder / f"raw-{os.urandom(4).hex()}.ome.tiff",
            data,
            ome=True,
            metadata={"axes": "ZYX"},
            photometric="minisblack",
        )

    def ours_tiff_write() -> None:
        Held(
            folder / f"tstore-{os.urandom(4).hex()}", ArrayParams("t"), payload_io=tiff_io
        ).load_generate(payload=data)

    rows.append(
        Row(
            f"OME-TIFF write {size_mib} MiB",
            median_time(ours_tiff_write, 3),
            "s",
            "tifffile",
            median_time(raw_tiff_write, 3),
            1.15,
        )
    )
    tstore = folder / "tread-store"
    Held(tstore, ArrayParams("t"), payload_io=tiff_io).load_generate(payload=data)
    raw_tiff = folder / "read.ome.tiff"
    tifffile.imwrite(raw_tiff, data, ome=True, metadata={"axes": "ZYX"}, photometric="minisblack")

    def ours_tiff_read() -> None:
        Held(tstore, ArrayParams("t"), payload_io=tiff_io).load()

    def raw_tiff_read() -> None:
        tifffile.imread(raw_tiff)

    rows.append(
        Row(
            f"OME-TIFF read {size_mib} MiB",
            median_time(ours_tiff_read, 3),
            "s",
            "tifffile",
            median_time(raw_tiff_read, 3),
            1.15,
        )
    )
    return rows


def main(argv: list[str]) -> None:
    """Run the three groups and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    with scratch_dir("samples") as folder:
        rows += cache_hit(folder, 20 if args.quick else 200)
        rows += mapping(20 if args.quick else 200, 2)
        rows += arrays(folder, 16 if args.quick else 1024)
    print(markdown_table(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
