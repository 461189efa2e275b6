"""The notebook views, written to an HTML file and read back as markup."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from persistable import Persistable, PersistableParams
from persistable.artifact import list_artifacts
from persistable.artifact._lineage import lineage

_VOID = {"br", "hr", "img", "input", "meta", "link"}


class _Checker(HTMLParser):
    """Records the tags and checks that every opened tag is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1]}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(markup: str) -> _Checker:
    checker = _Checker()
    checker.feed(markup)
    checker.close()
    assert checker.stack == [], f"unclosed: {checker.stack}"
    return checker


@dataclass
class _Params(PersistableParams):
    n: int = 3
    label: str = "<b>bold</b> & <script>x()</script>"


class _Points(Persistable[list[int], _Params]):
    def _generate_payload(self, **untracked_payload_params: Any) -> list[int]:
        return list(range(self.params.n))


class _Total(Persistable[int, _Params]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        (points,) = self.tracked_persistable_dependencies
        return int(sum(points.payload))


def test_views_written_to_a_file_are_well_formed_and_escaped(tmp_path: Path) -> None:
    """A persistable, a listing, an artifact and a lineage graph make balanced, escaped markup."""
    store = tmp_path / "store"
    long_name = "a_rather_long_payload_name_for_points_" + "x" * 20
    points = _Points(store, _Params(), payload_name=long_name)
    total = _Total(store, _Params(), tracked_persistable_dependencies=[points])
    missing = _Total(store, _Params(n=9), tracked_persistable_dependencies=[points])
    total.load_generate()
    views = {
        "committed": total._repr_html_(),
        "missing": missing._repr_html_(),
        "listing": list_artifacts(total.store)._repr_html_(),
        "artifact": total.artifact._repr_html_(),
        "lineage": lineage([total.artifact])._repr_html_(),
        "lineage_points": lineage([points.artifact])._repr_html_(),
    }
    page = tmp_path / "views.html"
    page.write_text("".join(f"<section id='{k}'>{v}</section>" for k, v in views.items()))
    for name, markup in views.items():
        parsed = _parse(markup)
        assert not any(tag == "script" for tag, _ in parsed.tags), name
        assert "<script>" not in markup, name
        assert "<b>bold" not in markup, name
    whole = _parse(page.read_text())
    # Key-value views have no empty header row: the names are row headers.
    for name in ("committed", "missing", "artifact"):
        assert "<thead>" not in views[name].split("<details>")[0], name
        assert '<th scope="row"' in views[name], name
    assert "committed" in "".join(_parse(views["committed"]).text)
    assert "missing" in "".join(_parse(views["missing"]).text)
    assert "&lt;script&gt;" in views["artifact"]
    listing_headers = re.findall(r"<th [^>]*>([^<]*)</th>", views["listing"])
    assert listing_headers == ["payload_name", "artifacts", "size", "newest", "by", "damaged"]
    # Lineage: every label fits its box, and each graph's arrow has an id of its own.
    svg = _parse(views["lineage"])
    rects = [attrs for tag, attrs in svg.tags if tag == "rect"]
    labels = [text for text in svg.text if "/" in text]
    assert len(rects) == len(labels) == 2
    assert any(label.startswith(long_name) for label in labels)
    for rect in rects:
        assert int(str(rect["width"])) >= 16 + 6.7 * max(len(label) for label in labels)
    markers = [
        str(attrs["id"])
        for _, markup in views.items()
        for tag, attrs in _parse(markup).tags
        if tag == "marker"
    ]
    assert len(markers) == len(set(markers)) >= 1
    assert all(
        f"url(#{attrs['id']!s})" in views["lineage"] for tag, attrs in svg.tags if tag == "marker"
    )
    assert len([tag for tag, _ in whole.tags if tag == "svg"]) == 2
