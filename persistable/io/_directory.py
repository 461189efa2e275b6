"""Payloads that are folders a tool wrote: ``DirectoryFileIO`` and ``FilesPersistable.output_dir``.

For tools that only write files: ``_generate_payload`` writes into ``self.output_dir`` (a
fresh folder the library hands it) and returns it; the folder's files become the
artifact's payload folder, each checksummed, and the payload is then the committed
folder's path (a local ``Path``, or a URL on object stores).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, ClassVar

from persistable._persistable import Persistable, PersistableParamsT
from persistable.exceptions import PayloadSerializationError
from persistable.io._folder import FolderFileIO, FolderLocation

__all__ = ["DirectoryFileIO", "FilesPersistable"]

#: Output folders handed out by FilesPersistable: their files are moved, not copied.
_owned: set[str] = set()
_owned_lock = threading.Lock()


def _files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        found.extend(Path(root, name) for name in sorted(names))
    return found


class DirectoryFileIO(FolderFileIO["Path | str"]):
    """A folder of files as the payload; it loads as the committed folder's path (or URL)."""

    name: ClassVar[str] = "directory"
    suffix: ClassVar[str] = ".dir"

    def check(self, payload: Any) -> None:
        if not isinstance(payload, (str, os.PathLike)) or not Path(payload).is_dir():
            raise PayloadSerializationError(
                f"DirectoryFileIO expected the path of an existing local folder, got "
                f"{payload!r:.80}; return self.output_dir (or another folder) from "
                "_generate_payload."
            )
        for path in _files(Path(payload)):
            relative = path.relative_to(payload)
            if any(part.startswith(".") for part in relative.parts):
                raise PayloadSerializationError(
                    f"DirectoryFileIO cannot store the hidden file {relative.as_posix()!r} of "
                    f"{str(payload)!r} (artifact files never start with '.'); rename or remove it."
                )

    def save_folder(self, payload: Path | str, folder: Path) -> None:
        import shutil

        self.check(payload)
        source = Path(payload)
        with _owned_lock:
            owned = str(source.resolve()) in _owned
        for path in _files(source):
            target = folder / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            if owned:
                try:
                    os.replace(path, target)  # our own scratch folder: move, no copy
                    continue
                except OSError:
                    pass
            shutil.copy2(path, target)

    def load_folder(self, location: FolderLocation) -> Path | str:
        if location.temporary:
            raise PayloadSerializationError(
                "DirectoryFileIO payloads load as a path: use a local folder or an fsspec "
                "object store (a memory store has no lasting path)."
            )
        if location.local is not None:
            return location.local
        fs = location.fs
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        return f"{protocol}://{location.url}"


class FilesPersistable(Persistable["Path | str", PersistableParamsT]):
    """A persistable whose generator writes files into :attr:`output_dir` and returns it.

    ::

        class Segmentation(FilesPersistable[SegParams]):
            def _generate_payload(self, **untracked) -> Path:
                subprocess.run(["segment", "--out", str(self.output_dir)], check=True)
                return self.output_dir

    After ``load_generate()`` the payload is the committed folder (a ``Path`` on a local
    store, a URL on object stores), every file listed with its checksum.
    """

    default_payload_io = DirectoryFileIO()

    @property
    def output_dir(self) -> Path:
        """A fresh empty folder for this generation's files (on the store's disk when local)."""
        import tempfile

        current: Path | None = getattr(self, "_output_dir", None)
        if current is not None and current.exists():
            return current
        root = self.store.local_path(".persistable/staging")
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        made = Path(tempfile.mkdtemp(prefix="output-", dir=root))
        with _owned_lock:
            _owned.add(str(made.resolve()))
        self._output_dir: Path | None = made
        return made

    def _generate(
        self, untracked_payload_params: dict[str, Any], *, persist: bool, replace: bool
    ) -> None:
        """Generate into :attr:`output_dir`, persist, then point the payload at the committed folder.

        The one generation step behind both :meth:`generate` and :meth:`load_generate`.
        """
        import shutil

        try:
            super()._generate(untracked_payload_params, persist=persist, replace=replace)
            if persist:
                self.reset_payload()  # the scratch folder goes; the artifact's folder stays
        finally:
            made = getattr(self, "_output_dir", None)
            if made is not None and persist:
                with _owned_lock:
                    _owned.discard(str(made.resolve()))
                shutil.rmtree(made, ignore_errors=True)
                self._output_dir = None
