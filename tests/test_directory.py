"""Payloads written as files by the generator itself: FilesPersistable.output_dir and DirectoryFileIO."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from persistable import PersistableParams
from persistable.exceptions import PayloadSerializationError
from persistable.io import DirectoryFileIO, FilesPersistable


@dataclass
class ToolParams(PersistableParams):
    """What the tool is asked to write."""

    lines: int
    hidden: bool = False


class Tool(FilesPersistable[ToolParams]):
    """Stands in for a tool that only writes files into a folder it is given."""

    def _generate_payload(self, **untracked_payload_params: Any) -> Path:
        out = self.output_dir
        (out / "report.txt").write_text("\n".join(f"line {i}" for i in range(self.params.lines)))
        (out / "tables").mkdir()
        (out / "tables" / "counts.csv").write_text("a,b\n1,2\n")
        if self.params.hidden:
            (out / ".cache").write_text("x")
        return out


def test_files_written_into_output_dir_become_the_artifact(tmp_path: Path) -> None:
    """The tool's files are committed, checksummed, and the payload is the committed folder."""
    made = Tool(tmp_path, ToolParams(3))
    made.load_generate()
    folder = Path(made.payload)
    assert folder.is_relative_to(tmp_path / "tool")
    assert (folder / "report.txt").read_text() == "line 0\nline 1\nline 2"
    assert (folder / "tables" / "counts.csv").exists()
    assert sorted(n for n in made.metadata["files"] if n.startswith("payload.dir/")) == [
        "payload.dir/report.txt",
        "payload.dir/tables/counts.csv",
    ]
    made.verify()
    assert not any((tmp_path / ".persistable" / "staging").glob("output-*"))  # scratch removed
    again = Tool(tmp_path, ToolParams(3))
    again.load(verify=True)
    assert Path(again.payload) == folder


def test_hidden_files_and_non_folders_are_refused(tmp_path: Path) -> None:
    """A hidden file in the output folder is named, and nothing is committed."""
    with pytest.raises(PayloadSerializationError, match=r"hidden file '\.cache'"):
        Tool(tmp_path, ToolParams(1, hidden=True)).load_generate()
    assert not Tool(tmp_path, ToolParams(1, hidden=True)).exists()
    with pytest.raises(PayloadSerializationError, match="existing local folder"):
        DirectoryFileIO().check(tmp_path / "missing")


@pytest.mark.s3
def test_output_dir_on_s3(s3_bucket: tuple[str, dict[str, Any]]) -> None:
    """On S3 the files are uploaded and the payload is the folder's URL."""
    import s3fs

    url, options = s3_bucket
    made = Tool(url, ToolParams(2), storage_options=options)
    made.load_generate()
    location = str(made.payload)
    assert location.startswith(f"{url}/tool/")
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    assert fs.cat_file(f"{location}/report.txt") == b"line 0\nline 1"


def test_folder_payload_ios_are_registered_by_name() -> None:
    """Artifacts of DirectoryFileIO and ManifestFileIO load by the name in their metadata."""
    from persistable.datasets import ManifestFileIO
    from persistable.io import file_io_for

    assert isinstance(file_io_for("directory"), DirectoryFileIO)
    assert isinstance(file_io_for("manifest"), ManifestFileIO)
