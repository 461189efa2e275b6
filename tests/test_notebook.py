"""The example notebook runs top to bottom in a real kernel and shows the HTML views."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

#: nbformat.read has no annotations.
_read: Callable[..., Any] = nbformat.read
NOTEBOOK = Path(__file__).parents[1] / "examples" / "look_at_artifacts.ipynb"


def test_example_notebook_executes_and_renders_html(tmp_path: Path) -> None:
    """Executed with nbclient: no errors, the persistable, the listing and the artifact as HTML tables, the lineage as SVG."""
    notebook = _read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    assert not [output for output in outputs if output.output_type == "error"]
    html = [
        output["data"]["text/html"] for output in outputs if "text/html" in output.get("data", {})
    ]
    assert any("committed" in page and "<table" in page for page in html)
    assert any("mean" in page and "points" in page and "artifacts" in page for page in html)
    assert any("<svg" in page for page in html)
    assert (tmp_path / "notebook-cache" / "mean").is_dir()
