"""Fingerprints are the same on CPython 3.10 to 3.13, whose parsers build some trees differently.

Checked by hand on 3.10.13, 3.11.7, 3.12.1 and 3.13.0 (docs/architecture.md, "Code
fingerprints"); these tests need no other interpreter: they build the other versions'
trees here.
"""

from __future__ import annotations

import ast
import copy
import itertools
import textwrap
from pathlib import Path

import pytest
from _user_modules import import_user_module

from persistable._fingerprint import _dump, _strip, fingerprint

_names = itertools.count()


def _tree(source: str) -> ast.AST:
    return ast.parse(textwrap.dedent(source)).body[0]


def _normalised(node: ast.AST) -> object:
    return _dump(_strip(copy.deepcopy(node)))


def _format_specs(node: ast.AST) -> list[ast.JoinedStr]:
    return [
        item.format_spec
        for item in ast.walk(node)
        if isinstance(item, ast.FormattedValue) and isinstance(item.format_spec, ast.JoinedStr)
    ]


@pytest.mark.parametrize(
    "expression",
    ['f"{x:{width}.{prec}}"', 'f"{x:>{width}}"', 'f"{x:{{}}>10}"', 'f"{x!r:{w}}"'],
)
def test_empty_text_parts_of_python_3_12_format_specs_do_not_count(expression: str) -> None:
    """CPython 3.12 adds ``Constant('')`` parts to nested format specs; they leave the fingerprint alone."""
    plain = _tree(f"def f(x, width, prec, w):\n    return {expression}\n")
    as_312 = copy.deepcopy(plain)
    for spec in _format_specs(as_312):
        spec.values = [ast.Constant(value=""), *spec.values, ast.Constant(value="")]
    assert _normalised(as_312) == _normalised(plain)


def test_text_parts_split_differently_fingerprint_alike() -> None:
    """Adjacent text parts of an f-string are one text, however the parser cut them."""
    plain = _tree('def f(x):\n    return f"ab{x}cd"\n')
    split = copy.deepcopy(plain)
    for node in ast.walk(split):
        if isinstance(node, ast.JoinedStr):
            node.values = [ast.Constant("a"), ast.Constant("b"), *node.values[1:]]
    assert _normalised(split) == _normalised(plain)


def test_a_changed_format_spec_still_counts() -> None:
    """Only empty texts are dropped: a different spec is different code."""
    assert _normalised(_tree('def f(x, w):\n    return f"{x:{w}.2}"\n')) != _normalised(
        _tree('def f(x, w):\n    return f"{x:{w}.3}"\n')
    )


FSTRINGS = """
    def root(x, width=5, prec=2):
        a = f"{x:{width}.{prec}}"
        b = f"{x=}"
        c = f"{x!r:>10}" f"tail" "plain"
        d = f"{x:}"
        e = f"{'q'}{x}{{}}"
        g = f"{x:>{width}}{x!s}{x!a}"
        h = rf"\\d{x}"
        return a, b, c, d, e, g, h
"""

#: Frozen: the same on CPython 3.10.13, 3.11.7, 3.12.1 and 3.13.0 (3.12.1 differed before
#: its empty format-spec parts were dropped).
GOLDEN_FSTRINGS = "6ede941859737b3345868b88ad308180a281bd10ae5211885156e94130ed4ac6"


def test_golden_fingerprint_of_f_strings(module_dir: Path) -> None:
    root = import_user_module(module_dir, FSTRINGS, "fp_versions").root
    assert fingerprint(root).digest == GOLDEN_FSTRINGS
