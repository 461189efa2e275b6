"""The five object operations a lease needs (the contract each store implements for ``_lease``)."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["LeaseFiles"]


class LeaseFiles(ABC):
    """The five object operations a lease needs, on paths relative to the store root."""

    @abstractmethod
    def create(self, path: str, data: bytes) -> bool:
        """Write ``path`` only if it does not exist (atomically); False if it exists."""

    @abstractmethod
    def read(self, path: str) -> bytes | None:
        """The content of ``path``, or None if it does not exist."""

    @abstractmethod
    def overwrite(self, path: str, data: bytes) -> None:
        """Replace the content of ``path`` (only ever used by the lease's owner)."""

    @abstractmethod
    def list_names(self, folder: str) -> list[str]:
        """Names of the objects directly in ``folder`` (fresh, never from a cache)."""

    @abstractmethod
    def delete(self, path: str) -> None:
        """Delete ``path``; no error if it is gone."""
