"""Checked by mypy, never run: the public API keeps its static types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from typing_extensions import assert_type

from persistable import NpyFileIO, Persistable, PersistableParams


@dataclass
class _Params(PersistableParams):
    n: int


class _Points(Persistable[list[int], _Params]):
    def _generate_payload(self, **untracked_payload_params: Any) -> list[int]:
        return list(range(self.params.n))


def _check() -> None:
    points = _Points("memory://typing", _Params(n=3))
    assert_type(points.payload, list[int])
    assert_type(points.params, _Params)
    assert_type(points.persist_hash, str)
    assert_type(points.params_tree, dict[str, Any])
    assert_type(NpyFileIO().suffix, str)
