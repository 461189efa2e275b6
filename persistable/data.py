"""1.x import path of the params classes: ``from persistable.data import PersistableParams``.

The names are the package's own (``persistable.PersistableParams`` is the same class);
see docs/migrating-from-1.x.md for what changed on purpose.
"""

from persistable._v1._encodable import PersistableParam
from persistable.params import PersistableParams

__all__ = ["PersistableParam", "PersistableParams"]
