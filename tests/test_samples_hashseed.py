"""Samples, keys and stored bytes do not depend on the process's ``PYTHONHASHSEED``.

Each run is a real subprocess with its own seed: string hashes (and so the order a set
of strings pickles in) differ between them, as between two runs of a user's script.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from persistable.samples import BaseSample, SampleArtifact
from persistable.samples._pickling import canonical_payload

PIPELINE = textwrap.dedent(
    """
    import dataclasses, hashlib, json, logging, pickle, sys
    from typing import Any

    import numpy as np
    from pydantic import BaseModel

    from persistable.samples import BaseSample, Cache, Compose, Processor, Save
    from persistable.samples._run import plan

    STAINS = {"dapi", "gfp", "rfp", "cy5", "brightfield", "phase"}


    class Optics(BaseModel):
        magnification: int = 40
        filters: set[str] = set()


    class Cell(BaseSample):
        image: Any
        tags: set[str] = set()
        channels: frozenset[str] = frozenset()
        optics: Optics | None = None
        label: str = ""
        score: float = 0.0


    class Scale(Processor):
        factor: float = 1.0
        keep: set[str] = set()

        def process(self, sample: Cell) -> Cell:
            sample.image = sample.image * self.factor
            sample.tags = sample.tags | (STAINS & self.keep)
            sample.score = float(sample.image.sum())
            return sample


    @dataclasses.dataclass
    class Well:
        name: str
        stains: set[str]


    @dataclasses.dataclass
    class Plate:  # a dataclass sample: pickled by Save's own FileIO, not by BaseSample
        id: str
        wells: list[Well]
        labels: frozenset[str]
        optics: Optics
        processing_history: list = dataclasses.field(default_factory=list)


    def plate(index: int) -> Plate:
        return Plate(
            id=f"plate-{index}",
            wells=[Well("A1", {"dapi", "gfp", "rfp", "cy5"}), Well("B2", {"phase", "dapi"})],
            labels=frozenset({"control", "treated", "day3", "batch7"}),
            optics=Optics(filters={"ex405", "em450", "ex640", "em670"}),
        )


    def cell(index: int) -> Cell:
        return Cell(
            id=f"cell-{index}",
            image=np.arange(16.0).reshape(4, 4) + index,
            tags={"nucleus", "membrane", "mitochondria", "golgi", f"t{index}"},
            channels=frozenset({"c0", "c1", "c2", "c3"}),
            optics=Optics(filters={"ex488", "em525", "ex561", "em600"}),
            label="neuron",
        )


    if __name__ == "__main__":
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        steps = [Cache(Scale(factor=2.0, keep={"gfp", "dapi", "cy5"})), Save()]
        pipeline = Compose(steps)
        report = {}
        for index in range(4):
            sample = cell(index)
            out = pipeline(sample, store=sys.argv[1])
            report[sample.id] = {
                "keys": [(step.key_in, step.key_out) for step in plan(steps, sample)],
                "pickle": hashlib.sha256(pickle.dumps(out, protocol=5)).hexdigest(),
                "history": out.processing_history[-1][2],
            }
        saving = Compose([Save()])
        for index in range(2):
            saved = saving(plate(index), store=sys.argv[1])
            report[saved.id] = {"history": saved.processing_history}
        print(json.dumps(report))
    """
)


def _run(script: Path, store: Path, seed: int) -> tuple[dict[str, Any], str]:
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    done = subprocess.run(
        [sys.executable, str(script), str(store)],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def _stored(store: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime in ns) of every file in the store's artifacts, by relative path."""
    found = {}
    for path in sorted(store.rglob("*")):
        if path.is_file() and ".persistable" not in path.parts:
            info = path.stat()
            found[str(path.relative_to(store))] = (info.st_ino, info.st_mtime_ns)
    return found


def test_save_keeps_identical_samples_when_rerun_under_another_hash_seed(tmp_path: Path) -> None:
    """A rerun with another PYTHONHASHSEED has the same keys and bytes: nothing is rewritten.

    The samples hold sets (a field, a frozenset, a nested model's field, the fields-set
    pydantic keeps; in BaseSamples and in dataclass samples), whose iteration order
    follows the seed.
    """
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    store = tmp_path / "store"
    first, _ = _run(script, store, seed=1)
    written = _stored(store)
    assert any(name.startswith("saved_samples") for name in written)
    second, log = _run(script, store, seed=2)
    assert second == first  # keys, history and the pickled sample
    assert "Replaced the stored artifact" not in log
    assert log.count("is stored with the same bytes already; kept it") == 6  # 4 cells, 2 plates
    assert _stored(store) == written  # same files, same inodes, untouched


def test_sample_pickles_to_the_same_bytes_under_every_hash_seed(tmp_path: Path) -> None:
    """The pickled bytes of one sample agree across three seeds, and load into equal sets."""
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    dump = tmp_path / "dump.py"
    dump.write_text(
        "import sys, pipeline\n"
        "sys.stdout.buffer.write(__import__('pickle').dumps(pipeline.cell(7), protocol=5))\n"
    )
    outputs = [
        subprocess.run(
            [sys.executable, str(dump)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            timeout=240,
            check=True,
        ).stdout
        for seed in (1, 2, 3)
    ]
    assert outputs[0] == outputs[1] == outputs[2]
    sys.path.insert(0, str(tmp_path))
    try:
        loaded = pickle.loads(outputs[0])
        import pipeline  # type: ignore[import-not-found]

        expected = pipeline.cell(7)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("pipeline", None)
    assert type(loaded.tags) is set
    assert loaded.tags == expected.tags
    assert type(loaded.channels) is frozenset
    assert loaded.channels == expected.channels
    assert type(loaded.optics.filters) is set
    assert loaded.optics.filters == expected.optics.filters
    assert type(loaded.model_fields_set) is set
    assert loaded.model_fields_set == expected.model_fields_set
    assert loaded.optics.model_fields_set == expected.optics.model_fields_set


class _Part(BaseModel):
    names: set[str] = set()


class _Holder(BaseSample):
    first: list[Any] = Field(default_factory=list)
    second: list[Any] = Field(default_factory=list)
    part: _Part | None = None
    nested: dict[str, Any] = Field(default_factory=dict)


def test_canonical_pickling_keeps_shared_references_and_values() -> None:
    """One list reached from two fields stays one list; nested sets and models come back equal."""
    shared = [{"b", "a", "c"}, frozenset({3, 1, 2}), ("x", {"q", "p"})]
    sample = _Holder(
        id="h",
        part=_Part(names={"n1", "n2", "n3"}),
        nested={"inner": {"deep": {frozenset({"u", "v"}), frozenset({"w"})}}},
    )
    sample.first = sample.second = shared  # (validation would copy the list into each field)
    loaded = pickle.loads(pickle.dumps(sample, protocol=pickle.HIGHEST_PROTOCOL))
    assert loaded.first is loaded.second
    assert loaded.first == shared
    assert type(loaded.first[0]) is set
    assert type(loaded.first[1]) is frozenset
    assert loaded.part == sample.part
    assert type(loaded.part) is _Part
    assert loaded.nested == sample.nested
    assert loaded.model_fields_set == sample.model_fields_set
    assert loaded.processing_history == []
    # The bytes load without persistable's helper classes: only builtins and the models.
    data = pickle.dumps(sample, protocol=pickle.HIGHEST_PROTOCOL)
    assert b"_pickling" not in data
    assert b"_OrderedSet" not in data


@dataclasses.dataclass(frozen=True)
class _Tag:
    names: frozenset[str]


@dataclasses.dataclass
class _Slotted:
    __slots__ = ("names",)
    names: set[str]


@dataclasses.dataclass
class _PlateSample:
    id: str
    tags: list[_Tag]
    part: _Part
    kept: _Slotted
    wells: set[str] = dataclasses.field(default_factory=set)
    processing_history: list[Any] = dataclasses.field(default_factory=list)


def test_a_dataclass_sample_pickles_canonically_through_saves_file_io() -> None:
    """Save's FileIO writes a dataclass sample with sorted sets; plain pickle loads it back equal."""
    shared = _Tag(frozenset({"z", "y", "x"}))
    sample = _PlateSample(
        id="p",
        tags=[shared, shared],
        part=_Part(names={"n2", "n1"}),
        kept=_Slotted({"s2", "s1"}),
        wells={"B2", "A1", "C3"},
    )
    stream = io.BytesIO()
    SampleArtifact.default_payload_io.save(sample, stream)
    data = stream.getvalue()
    assert b"_pickling" not in data
    assert b"_ModelState" not in data
    loaded = pickle.loads(data)
    assert loaded == sample
    assert type(loaded.wells) is set
    assert loaded.tags[0] is loaded.tags[1]  # one object, as in the sample
    assert type(loaded.part) is _Part
    assert loaded.part.model_fields_set == sample.part.model_fields_set
    assert canonical_payload(sample.kept) is sample.kept  # slots: pickled as Python does
    assert canonical_payload(sample.processing_history) is sample.processing_history
