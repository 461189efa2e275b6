"""Code fingerprints: what they see (callees, constants, closures), what they ignore, and code_changes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _user_modules import import_user_module

from persistable import Persistable
from persistable._fingerprint import changed_entries, fingerprint
from persistable.exceptions import PersistableDefinitionError

_counter = iter(range(1_000_000))


def _module(folder: Path, source: str) -> ModuleType:
    return import_user_module(folder, source, "fp_user")


def _root(folder: Path, source: str) -> Callable[..., Any]:
    root: Callable[..., Any] = _module(folder, source).root
    return root


BASE = """
    SCALE = 3


    def inner(x):
        return x + 1


    def middle(x):
        return inner(x) * 2


    def root(x):
        return middle(x) * SCALE
"""


def test_comments_docstrings_formatting_and_annotations_do_not_count(module_dir: Path) -> None:
    """Reformatting, comments, docstrings and type annotations leave the fingerprint unchanged."""
    plain = fingerprint(_root(module_dir, BASE)).digest
    decorated = fingerprint(
        _root(
            module_dir,
            '''
            """A module docstring."""
            SCALE: int = 3  # the scale


            def inner(x: int) -> int:
                """Add one."""
                # a comment
                return (x
                        + 1)


            def middle(x: "int") -> int:
                return inner(x)*2


            def root(x: int) -> int:
                """The root."""
                return middle( x ) * SCALE
            ''',
        )
    ).digest
    assert decorated == plain


def test_a_callee_two_calls_deep_is_caught(module_dir: Path) -> None:
    """Changing a function two calls below the root changes the fingerprint and is named."""
    before = fingerprint(_root(module_dir, BASE))
    after = fingerprint(_root(module_dir, BASE.replace("x + 1", "x + 2")))
    assert after.digest != before.digest
    changed = changed_entries(before.functions, after)
    assert [name.rpartition(".")[2] for name in changed] == ["inner"]


def test_a_module_constant_is_caught(module_dir: Path) -> None:
    """Changing a module-level constant the code reads changes the fingerprint and is named."""
    before = fingerprint(_root(module_dir, BASE))
    after = fingerprint(_root(module_dir, BASE.replace("SCALE = 3", "SCALE = 4")))
    assert after.digest != before.digest
    assert [name.rpartition(".")[2] for name in changed_entries(before.functions, after)] == [
        "SCALE"
    ]


def test_closures_defaults_and_methods_are_followed(module_dir: Path) -> None:
    """Closure values, default values read from constants, and self.<method> callees are covered."""
    source = """
        LIMIT = 10


        def make(offset):
            def closure(x, limit=LIMIT):
                return min(x + offset, limit)
            return closure


        class Helper:
            def run(self, x):
                return self.twice(x)

            def twice(self, x):
                return 2 * x


        bound = make(1)


        def root(x):
            return bound(x) + Helper().run(x)
    """
    base = fingerprint(_root(module_dir, source))
    for old, new in [("make(1)", "make(2)"), ("LIMIT = 10", "LIMIT = 11"), ("2 * x", "3 * x")]:
        assert fingerprint(_root(module_dir, source.replace(old, new))).digest != base.digest, old


def test_library_code_is_not_walked(module_dir: Path) -> None:
    """Standard library and installed packages are left out: only the user's functions are entries."""
    root = _root(
        module_dir,
        """
        import json
        import numpy as np


        def root(x):
            return json.dumps(np.asarray(x).tolist())
        """,
    )
    assert [name.rpartition(".")[2] for name in fingerprint(root).functions] == ["root"]


def test_fingerprint_is_cached_per_function_object(module_dir: Path) -> None:
    """A second fingerprint of the same function object is the same object (no second parse)."""
    root = _root(module_dir, BASE)
    assert fingerprint(root) is fingerprint(root)


#: Frozen fingerprints: they must not change between Python versions or releases without
#: bumping FINGERPRINT_SCHEME in persistable/_fingerprint.py.
#: Checked on CPython 3.10.13, 3.11.7, 3.12.1 and 3.13.0.
GOLDEN = {
    "base": "1d07820a7f6434a0a9fcafbf9e35ac5e653d07b9e2fa3d8d0c24ea3dafab273c",
    "rich": "1bb296130abb087ea5c9093a98b1822714c0c81d9670a7b2399b413e03948564",
}

RICH = """
    import dataclasses

    WEIGHTS = (1, 2.5, "x", None, True)


    @dataclasses.dataclass
    class Config:
        size: int = 3
        name: str = "c"


    def root(values, *args, key=None, **kwargs):
        total = 0
        for index, value in enumerate(values):
            if value is None or index in {1, 2}:
                continue
            total += value ** 2 if value > 0 else -value
        squares = [v * v for v in values if v] + [w for w in WEIGHTS[:2]]
        with open(__file__) as stream:
            text = f"{total!r:>10} {stream.name}"
        try:
            lookup = {k: v for k, v in kwargs.items()}
        except (KeyError, ValueError) as error:
            raise RuntimeError("bad") from error
        finally:
            pass
        match key:
            case {"a": 1}:
                pass
            case [x, *rest]:
                total += x
        return lambda y: (y, squares, text, lookup, Config(), *args)
"""


def test_golden_fingerprints_never_change(module_dir: Path) -> None:
    """Fingerprints of representative code equal frozen digests (the same on Python 3.10 to 3.13)."""
    digests = {
        "base": fingerprint(_root(module_dir, BASE)).digest,
        "rich": fingerprint(_root(module_dir, RICH)).digest,
    }
    assert digests == GOLDEN


def test_unknown_code_changes_value_is_refused() -> None:
    """A code_changes value other than warn/rerun/ignore is refused when the class is defined."""
    with pytest.raises(PersistableDefinitionError, match=r"code_changes must be one of"):

        class Bad(Persistable[Any, Any]):
            code_changes = "sometimes"  # type: ignore[assignment]


_PIPELINE = """
    from dataclasses import dataclass
    from typing import Any

    from persistable import Persistable, PersistableParams

    FACTOR = 2


    def scale(x):
        return x * FACTOR


    @dataclass
    class P(PersistableParams):
        x: int = 5


    class Fit(Persistable[int, P]):
        code_changes = "{mode}"

        def _generate_payload(self, **untracked: Any) -> int:
            return scale(self.params.x)
"""

_DRIVER = """
import json, sys, warnings
warnings.simplefilter("always")
sys.path.insert(0, sys.argv[1])
from fitmod import Fit, P
fit = Fit(sys.argv[2], P())
with warnings.catch_warnings(record=True) as caught:
    fit.load_generate()
print(json.dumps({{"payload": fit.payload, "key": fit.key,
    "warnings": [f"{{w.category.__name__}}: {{w.message}}" for w in caught]}}))
"""


def _run(folder: Path, store: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER.format(), str(folder), str(store)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return output


@pytest.mark.parametrize("mode", ["warn", "rerun", "ignore"])
def test_edited_code_in_a_new_process(tmp_path: Path, mode: str) -> None:
    """An edited callee is caught in a new process: "warn" warns naming it, "rerun" regenerates, "ignore" is silent."""
    folder = tmp_path / "code"
    folder.mkdir()
    module = folder / "fitmod.py"
    module.write_text(textwrap.dedent(_PIPELINE.format(mode=mode)))
    store = tmp_path / "store"
    first = _run(folder, store)
    assert first == {"payload": 10, "key": first["key"], "warnings": []}
    module.write_text(module.read_text().replace("x * FACTOR", "x * FACTOR + 1"))
    second = _run(folder, store)
    if mode == "warn":
        assert second["payload"] == 10
        assert second["key"] == first["key"]
        (warning,) = second["warnings"]
        assert warning.startswith("CodeChangedWarning: Fit key ")
        assert "fitmod.scale changed since" in warning
    elif mode == "rerun":
        assert second["payload"] == 11
        assert second["key"] != first["key"]
        assert second["warnings"] == []
    else:
        assert second == {**first, "warnings": []}
    metadata = json.loads((store / "fit" / first["key"] / "metadata.json").read_text())
    assert set(metadata["code"]["functions"]) == {
        "fitmod.Fit._generate_payload",
        "fitmod.scale",
        "fitmod.FACTOR",
    }
