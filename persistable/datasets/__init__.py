"""Datasets: manifests of files committed with the files, and publish-ready versioned packages."""

from persistable.datasets._dataset import DatasetPersistable
from persistable.datasets._manifest import ManifestFileIO
from persistable.datasets._publish import Package, checkout, publish, publish_artifact, versions

__all__ = [
    "DatasetPersistable",
    "ManifestFileIO",
    "Package",
    "checkout",
    "publish",
    "publish_artifact",
    "versions",
]
