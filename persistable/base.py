"""1.x import path of the persistable class: ``from persistable.base import Persistable``.

``persistable.base.Persistable`` is ``persistable.Persistable``; see
docs/migrating-from-1.x.md for what changed on purpose (keys, artifact layout, logs).
"""

from persistable._persistable import Persistable, PersistableParamsT
from persistable.io import FileIO, PayloadTypeT, PickleFileIO
from persistable.params import PersistableParams

__all__ = [
    "FileIO",
    "PayloadTypeT",
    "Persistable",
    "PersistableParams",
    "PersistableParamsT",
    "PickleFileIO",
]
