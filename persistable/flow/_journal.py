"""The resume journal: the effects of every finished loop step, one file per step.

Rank 0 writes ``step-<n>.pkl`` (the writes the stages made in step ``n``, gathered
from every rank, and the slice each rank's generator gave). The file is written as the
step goes: ``begin`` opens it under a temporary name, ``add`` appends each effect the
moment the data manager makes it (its rows go to the file from the stage's own array,
before the stage can change that array, so nothing is copied first), and ``commit``
appends the slices and renames it, so a step file exists only whole and only for a
finished step. A rerun replays the finished steps' effects into a fresh replica instead
of running their stages, then continues with the first unfinished step; unless
``stateful.txt`` says a stage or resource changed its attributes during the recorded
steps (``_state``): then the loop starts over. The files are
written and read by this package only, inside the flow's private work folder.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path
from typing import IO, Any

from persistable.flow._data_manager import Effect

__all__ = ["Journal"]

logger = logging.getLogger(__name__)

#: The journal's format: a journal of another format is not replayed.
FORMAT = 3
#: The file naming the object whose state changed during the recorded steps.
STATEFUL = "stateful.txt"


class Journal:
    """The finished steps of one config's loop, in ``folder``, for a run on ``size`` ranks."""

    def __init__(self, folder: Path, size: int) -> None:
        self.folder = folder
        self.size = size
        self._open: tuple[Path, IO[bytes]] | None = None

    def _step_file(self, step: int) -> Path:
        return self.folder / f"step-{step:09d}.pkl"

    def open(self) -> int:
        """Prepare the folder (rank 0 only); return how many steps are already finished.

        A journal written by a run on another number of ranks cannot be replayed (its
        steps cover other chunks): it is cleared and the loop starts over.
        """
        header = self.folder / "journal.json"
        self.folder.mkdir(parents=True, exist_ok=True)
        if header.exists():
            recorded = json.loads(header.read_text(encoding="utf-8"))
            if recorded.get("format") != FORMAT:
                logger.warning(
                    "The journal in %s was written by another version: starting over", self.folder
                )
                self.clear()
            elif recorded.get("size") != self.size:
                logger.warning(
                    "The journal in %s was written by %s ranks, this run has %s: starting over",
                    self.folder,
                    recorded.get("size"),
                    self.size,
                )
                self.clear()
        tmp = header.with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "size": self.size}), encoding="utf-8")
        os.replace(tmp, header)
        done = 0
        while self._step_file(done).exists():
            done += 1
        return done

    def clear(self) -> None:
        """Forget the finished steps (the loop starts over)."""
        for file in self.folder.glob("step-*.pkl"):
            file.unlink()
        (self.folder / STATEFUL).unlink(missing_ok=True)

    def stateful(self) -> str | None:
        """Why the finished steps cannot be resumed (an object kept state across them), or None."""
        try:
            return (self.folder / STATEFUL).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def mark_stateful(self, reason: str) -> None:
        """Record that an object's state changed during the recorded steps (rank 0)."""
        tmp = self.folder / f"{STATEFUL}.tmp"
        tmp.write_text(reason, encoding="utf-8")
        os.replace(tmp, self.folder / STATEFUL)

    def begin(self, step: int) -> None:
        """Start the file of ``step`` (rank 0), under a temporary name until ``commit``."""
        self.abandon()
        target = self._step_file(step)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        self._open = (target, tmp.open("wb"))

    def add(self, effect: Effect) -> None:
        """Append one effect of the step begun (its arrays are written as they are now)."""
        if self._open is None:  # pragma: no cover - the loop begins every journaled step
            raise RuntimeError("Journal.add outside a step")
        pickle.dump(effect, self._open[1], protocol=5)

    def commit(self, slices: list[Any]) -> None:
        """End the step begun: append the slice each rank looped over, and make the file whole."""
        if self._open is None:  # pragma: no cover - the loop begins every journaled step
            raise RuntimeError("Journal.commit outside a step")
        target, stream = self._open
        self._open = None
        with stream:
            pickle.dump(_End(slices), stream, protocol=5)
        os.replace(stream.name, target)

    def abandon(self) -> None:
        """Drop the step begun and not committed (its stage failed): no file is left for it."""
        if self._open is not None:
            _, stream = self._open
            self._open = None
            stream.close()
            Path(stream.name).unlink(missing_ok=True)

    def load(self, step: int) -> tuple[list[Any], list[Effect]]:
        """The slices (one per rank) and the effects of a finished step."""
        effects: list[Effect] = []
        with self._step_file(step).open("rb") as stream:
            while True:
                item = pickle.load(stream)  # noqa: S301 - written by this package in its own work folder
                if isinstance(item, _End):
                    return item.slices, effects
                effects.append(item)


class _End:
    """The last record of a step file: the slice each rank's generator gave."""

    __slots__ = ("slices",)

    def __init__(self, slices: list[Any]) -> None:
        self.slices = slices

    def __reduce__(self) -> tuple[type[_End], tuple[list[Any]]]:
        return _End, (self.slices,)
