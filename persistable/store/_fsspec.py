"""A store on any fsspec filesystem (S3, GCS, memory, ...): placeholder until the store issue lands."""

from __future__ import annotations

from typing import Any

from persistable.store._base import Store

__all__ = ["FsspecStore"]


class FsspecStore(Store):  # placeholder, replaced by the store issue
    """Not implemented yet."""

    def __init__(
        self, url: str, *, storage_options: dict[str, Any] | None = None, read_only: bool = False
    ) -> None:
        raise NotImplementedError("fsspec stores are not implemented yet")
