"""S3 requests per artifact do not grow with the store, and the direct S3 listing is exact."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from persistable import Persistable, PersistableParams, make_store


@dataclass
class IndexParams(PersistableParams):
    """One index per artifact."""

    index: int


class Indexed(Persistable[list[int], IndexParams]):
    """A small list from its index."""

    def _generate_payload(self, **untracked_payload_params: Any) -> list[int]:
        return [self.params.index] * 3


@contextlib.contextmanager
def recorded() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every S3 request any s3fs client of this process sends: (operation, parameters)."""
    from aiobotocore.client import AioBaseClient  # type: ignore[import-untyped]

    calls: list[tuple[str, dict[str, Any]]] = []
    original = AioBaseClient._make_api_call

    async def recording(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append((operation, dict(params)))
        return await original(self, operation, params)

    AioBaseClient._make_api_call = recording
    try:
        yield calls
    finally:
        AioBaseClient._make_api_call = original


@pytest.mark.s3
def test_a_first_run_lists_only_its_own_lease_folder(s3_bucket: tuple[str, dict[str, Any]]) -> None:
    """The lease listing of a new key is one request on its folder, never on the folder of all keys."""
    url, options = s3_bucket
    counts = []
    for index in range(6):
        item = Indexed(url, IndexParams(index), storage_options=options)
        with recorded() as calls:
            item.load_generate()
        lists = [params for operation, params in calls if operation == "ListObjectsV2"]
        assert [params["Prefix"] for params in lists] == [
            f"cache/.persistable/leases/{item.payload_name}/{item.persist_hash}/"
        ]
        counts.append(len(calls))
    assert len(set(counts[1:])) == 1, counts  # the same requests for every new key
    again = Indexed(url, IndexParams(5), storage_options=options)
    again.load_generate()
    assert again.payload == [5, 5, 5]


@pytest.mark.s3
def test_the_direct_listing_names_files_and_folders_across_pages(
    s3_bucket: tuple[str, dict[str, Any]],
) -> None:
    """list_dir on S3 gives what a listing through fsspec gives, whatever the page size."""
    url, options = s3_bucket
    store = make_store(url, storage_options=options)
    root = url.removeprefix("s3://")
    fs = store.fs  # type: ignore[attr-defined]
    fs.pipe(
        {
            f"{root}/top/a.json": b"1",
            f"{root}/top/b.json": b"2",
            f"{root}/top/sub/c.json": b"3",
            f"{root}/top/sub/d/e.json": b"4",
            f"{root}/top/z/f.json": b"5",
            f"{root}/topping/g.json": b"6",
        }
    )
    expected = ["a.json", "b.json", "sub", "z"]
    assert store.list_dir("top") == expected
    assert store.list_dir("top/") == expected
    for page_size in (1, 2, 1000):
        assert store._list_s3(store._full("top"), page_size=page_size) == expected  # type: ignore[attr-defined]
    assert store.list_dir("top/sub") == ["c.json", "d"]
    assert store.list_dir("missing") == []
    assert store.list_dir("top/a.json") == []  # a file is not a folder
    assert {"top", "topping"} <= set(store.list_dir(""))
