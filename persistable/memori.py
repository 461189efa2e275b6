"""memori-compatible ``Stage``, ``Pipeline`` and ``hashable``, memoized as persistable artifacts.

``from persistable.memori import Stage, Pipeline, hashable`` runs memori code unchanged,
with memori's defects fixed (see :mod:`persistable.steps._stage`).
"""

from persistable.steps._pipeline import Pipeline, redefine_result_key
from persistable.steps._stage import Stage, hashable

__all__ = ["Pipeline", "Stage", "hashable", "redefine_result_key"]
