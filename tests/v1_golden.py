"""Params and persistables whose 1.x md5 the tests pin (importable under 1.3.1 and this package).

Run under 1.3.1 (``python v1_golden.py DATA_DIR``) it prints ``name md5`` per case:
that output is how the golden values of ``tests/test_v1_md5.py`` were made.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persistable.base import Persistable
from persistable.data import PersistableParams


class Color(enum.Enum):
    RED = 1
    GREEN = 2


@dataclass
class Inner(PersistableParams):
    depth: int = 3
    name: str = "leaf"


@dataclass
class Everything(PersistableParams):
    integer: int = 7
    real: float = 0.1
    flag: bool = True
    nothing: None = None
    text: str = "héllo 'quoted'"
    path: Path = Path("data") / "in.csv"
    color: Color = Color.GREEN
    items: list[int] = field(default_factory=lambda: [1, 2, 3])
    pair: tuple[float, str] = (1.5, "x")
    mapping: dict[str, Any] = field(default_factory=lambda: {"b": 2, "a": [1.0, None]})
    inner: Inner = field(default_factory=Inner)


@dataclass
class Encoded(PersistableParams):
    """1.x's custom type encoders: a path is known by its file name only."""

    source: Path = Path("a") / "data.csv"
    scale: float = 2.0

    @property
    def _custom_type_encoder_map(self) -> dict[type[Any], Callable[[Any], Any]]:
        return {Path: lambda path: path.name}


class EncodedP(Persistable[Any, Encoded]):
    pass


@dataclass
class Small(PersistableParams):
    n: int


class Source(Persistable[Any, Small]):
    pass


class Everything_(Persistable[Any, Everything]):
    pass


class Derived(Persistable[Any, Small]):
    pass


def cases(data_dir: Any) -> dict[str, Persistable[Any, Any]]:
    """The persistables whose 1.x md5 is pinned, by case name."""
    source = Source(data_dir, Small(n=1), None)
    other = Source(data_dir, Small(n=2), None, payload_name="other_source")
    return {
        "small": Source(data_dir, Small(n=10), None),
        "small_float": Source(data_dir, Small(n=10.0), None),  # type: ignore[arg-type]
        "renamed": Source(data_dir, Small(n=10), None, payload_name="custom.name"),
        "everything": Everything_(data_dir, Everything(), None),
        "everything_changed": Everything_(
            data_dir, Everything(real=1e-20, color=Color.RED, inner=Inner(depth=4)), None
        ),
        "custom_encoder": EncodedP(data_dir, Encoded(), None),
        "one_dependency": Derived(data_dir, Small(n=3), [source]),
        "two_dependencies": Derived(data_dir, Small(n=3), [source, other]),
        "chain": Derived(
            data_dir, Small(n=4), [Derived(data_dir, Small(n=3), [source], payload_name="mid")]
        ),
    }


if __name__ == "__main__":
    for name, persistable in cases(Path(sys.argv[1])).items():
        print(name, persistable.persist_hash)
