"""``@step`` with its artifacts on S3 (a real moto_server on loopback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _step_funcs import square, total

import persistable


def test_steps_on_s3_compute_once_and_load_in_a_new_step_object(
    s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Calls, a bound chain run by persistable.run, and a fresh step object that only loads."""
    url, options = s3_bucket
    journal = tmp_path / "journal.txt"
    journal.touch()
    j = str(journal)
    sq = square.replace(data_dir=url, storage_options=options)
    tot = total.replace(data_dir=url, storage_options=options)
    assert sq(4, journal=j) == 16
    assert sq(4, journal=j) == 16
    lazy = tot.bind([sq.bind(2, journal=j), sq.bind(3, journal=j)], offset=1, journal=j)
    persistable.run([lazy])
    assert lazy.payload == 14
    again = square.replace(data_dir=url, storage_options=options)  # another store object
    assert again.exists(4)
    assert again(4, journal=j) == 16
    assert "exists at s3://" in str(again.explain(4))
    computed = [line.rsplit(" ", 1)[0] for line in journal.read_text().splitlines()]
    assert sorted(computed) == ["square 2", "square 3", "square 4", "total [4, 9]"]
    assert again.delete(4) is True
    assert not again.exists(4)
