"""The resume journal's step files: written as the step goes, present only once it finished."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from persistable.flow._journal import Journal


def test_a_step_file_appears_only_when_the_step_is_committed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", 1)
    assert journal.open() == 0
    rows = np.arange(5.0)
    journal.begin(0)
    journal.add(("write", "a/data", slice(0, 5), rows))
    rows[:] = -1.0  # a stage reusing its buffer after write_data: the journal has what was written
    assert journal.open() == 0  # not finished yet: nothing to resume from
    journal.add(("resize", "a/data", 5))
    journal.commit([slice(0, 5)])
    assert journal.open() == 1
    slices, effects = journal.load(0)
    assert slices == [slice(0, 5)]
    assert [e[0] for e in effects] == ["write", "resize"]
    assert np.array_equal(effects[0][3], np.arange(5.0))


def test_an_abandoned_step_leaves_no_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", 1)
    journal.open()
    journal.begin(0)
    journal.add(("write", "a/data", slice(0, 2), np.ones(2)))
    journal.commit([slice(0, 2)])
    journal.begin(1)
    journal.add(("write", "a/data", slice(2, 4), np.ones(2)))
    journal.abandon()  # the stage failed in step 1
    assert sorted(p.name for p in (tmp_path / "journal").iterdir()) == [
        "journal.json",
        "step-000000000.pkl",
    ]
    assert journal.open() == 1
