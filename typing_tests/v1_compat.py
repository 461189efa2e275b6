"""Checked by mypy, never run: the 1.x names keep static types 1.x code can rely on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing_extensions import assert_type

from persistable.base import Persistable
from persistable.data import PersistableParam, PersistableParams
from persistable.io import FileIO
from persistable.migration import V1MigrationReport, migrate_v1


class _TextIO(FileIO[str]):
    def _save(self, payload: str, filepath: Path, **kwargs: Any) -> None:
        filepath.write_text(payload)

    def _load(self, filepath: Path, **kwargs: Any) -> str:
        return filepath.read_text()


@dataclass
class _Params(PersistableParams):
    n: int
    n_jobs: PersistableParam[int] = PersistableParam(1, exclude_from_file_hash=True)  # noqa: RUF009


class _Text(Persistable[str, _Params]):
    def _generate_payload(self, **untracked_payload_params: Any) -> str:
        return "x" * self.params.n


def _check() -> None:
    text = _Text(Path("cache"), _Params(n=3), None, payload_io=_TextIO())
    assert_type(text.payload, str)
    assert_type(text.params.n_jobs.param, int)
    assert_type(text.params.get_str_repr(), str)
    assert_type(text.v1_persist_hash, str)
    assert_type(text.persist_filepath, Path | str)
    assert_type(migrate_v1("cache", [_Text]), V1MigrationReport)
