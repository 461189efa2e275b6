"""Moving a persistable 1.x cache folder: report what can be adopted, and adopt it.

``migrate_v1(data_dir, classes)`` is what ``persistable migrate-v1`` runs; see
docs/migrating-from-1.x.md. Not imported by ``import persistable``.
"""

from persistable._v1._classes import classes_in_modules
from persistable._v1._migrate import V1Entry, V1MigrationReport, migrate_v1

__all__ = ["V1Entry", "V1MigrationReport", "classes_in_modules", "migrate_v1"]
