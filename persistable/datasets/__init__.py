"""Datasets: manifests of files committed with the files (``DatasetPersistable``, ``ManifestFileIO``)."""

from persistable.datasets._dataset import DatasetPersistable
from persistable.datasets._manifest import ManifestFileIO

__all__ = ["DatasetPersistable", "ManifestFileIO"]
