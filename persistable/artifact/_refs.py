"""Artifact references as users type them: ``payload_name/key-prefix`` (a key prefix is enough)."""

from __future__ import annotations

from persistable.artifact._handle import Artifact
from persistable.exceptions import AmbiguousArtifactError, ArtifactNotFoundError
from persistable.store._base import Store

__all__ = ["find_artifact"]


def find_artifact(store: Store, ref: str) -> Artifact:
    """The one committed artifact that ``ref`` (``payload_name/key`` or a key prefix) names.

    Raises
    ------
    ArtifactNotFoundError
        Nothing matches.
    AmbiguousArtifactError
        Several artifacts match; the message lists them.
    """
    payload_name, slash, prefix = ref.strip().strip("/").partition("/")
    if not slash or not payload_name or not prefix or "/" in prefix:
        raise ArtifactNotFoundError(
            f"{ref!r} is not an artifact reference; write payload_name/key-prefix, e.g. "
            "gaussian_points/k1-3f9c (see `persistable ls STORE --artifacts`)."
        )
    if store.has_artifact(payload_name, prefix):
        return Artifact(store, payload_name, prefix)
    keys = store.list_keys(payload_name)
    matches = [key for key in keys if key.startswith(prefix)]
    if not matches and not prefix.startswith("k1-"):
        matches = [key for key in keys if key.partition("-")[2].startswith(prefix)]
    if len(matches) == 1:
        return Artifact(store, payload_name, matches[0])
    if not matches:
        where = (
            f"{payload_name!r} has {len(keys)} artifacts there"
            if keys
            else f"there is no artifact of {payload_name!r} there"
            + (
                f" (payload names: {', '.join(store.list_payload_names())})"
                if store.list_payload_names()
                else ""
            )
        )
        raise ArtifactNotFoundError(
            f"No artifact matches {ref!r} in {store.url!r}: {where}; list them with "
            f"`persistable ls {store.url} {payload_name}`."
        )
    shown = ", ".join(f"{payload_name}/{key[:16]}" for key in matches[:5])
    more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
    raise AmbiguousArtifactError(
        f"{ref!r} matches {len(matches)} artifacts in {store.url!r} ({shown}{more}); give more "
        "characters of the key."
    )
