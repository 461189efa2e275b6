"""Publish-ready packages: a dataset's manifest, files, params and lineage, versioned by a content hash.

A package lives in any store under its name, one folder per version::

    <destination>/<name>/<top_hash>/manifest.parquet   paths relative to this folder
                                   /files.parquet      per-file size, checksum, metadata
                                   /files/...          the dataset's files
                                   /params.json        the dataset's params tree
                                   /lineage.json       payload names and keys upstream
                                   /README.md          provenance: repository, branch, commit, author, top_hash
                                   /package.json       the same, machine-readable
                                   /metadata.json      sizes and checksums of every file: written last

``top_hash`` is the SHA-256 over the sorted (path, size, checksum) of every file except
README.md, package.json and metadata.json, so equal contents give one version.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persistable._artifact import HashingWriter, check_file, dump_json, is_artifact_file_path
from persistable._hashing import BULK_ALGORITHM, BulkHasher, hash_stream
from persistable.datasets._associates import associates, linked_rows
from persistable.datasets._git import GitProvenance, git_provenance
from persistable.exceptions import PackageNotFoundError, PublishError
from persistable.store import METADATA_FILE, Store, StoreLike, make_store

if TYPE_CHECKING:
    import pandas as pd

    from persistable.datasets._dataset import DatasetPersistable

__all__ = ["Package", "checkout", "publish", "publish_artifact", "versions"]

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*")
_UNHASHED = {"README.md", "package.json", METADATA_FILE}
_CHUNK = 1 << 22


@dataclass
class Package:
    """One checked-out version of a package."""

    name: str
    version: str
    manifest: pd.DataFrame
    info: dict[str, Any]
    readme: str
    location: str
    #: The manifest's file columns and the column naming each row's sample.
    filepath_columns: tuple[str, ...] = ()
    sample_column: str | None = None

    @property
    def top_hash(self) -> str:
        """The package version's content hash (the same as :attr:`version`)."""
        return self.version

    def linked_rows(self, row: int) -> list[int]:
        """Positions of the manifest rows that came from the same sample as ``row``."""
        return linked_rows(self.manifest, row, self.sample_column)

    def associates(self, row: int) -> dict[str, list[str]]:
        """The files of ``row``'s sample by file column, as paths in :attr:`location`."""
        return associates(self.manifest, row, self.sample_column, self.filepath_columns)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise PublishError(
            f"A package name is '/'-separated parts of letters, digits, '_', '-' and '.' "
            f"(not starting with '.' or '-'), e.g. 'lab/cell-dataset' (got {name!r})."
        )
    return name


def _top_hash(records: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{path}\t{record['size']}\t{record[BULK_ALGORITHM]}"
        for path, record in sorted(records.items())
        if path not in _UNHASHED
    ]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _provenance(repository: Path, allow_dirty: bool) -> GitProvenance | None:
    provenance = git_provenance(repository)
    if provenance is None:
        if allow_dirty:
            return None
        raise PublishError(
            f"{str(repository)!r} is not inside a git repository, so the package could not "
            "name the code that made it; publish from your project's repository "
            "(`git init`, commit and push), or pass allow_dirty=True (the README will say so)."
        )
    if allow_dirty:
        return provenance
    if provenance.commit is None:
        raise PublishError(
            f"The git repository at {str(repository)!r} has no commit yet; commit your code "
            "(`git add -A && git commit`), push it, or pass allow_dirty=True."
        )
    if provenance.dirty:
        shown = ", ".join(provenance.dirty[:5]) + (" ..." if len(provenance.dirty) > 5 else "")
        raise PublishError(
            f"The git work tree at {str(repository)!r} has uncommitted changes ({shown}); "
            "commit them (`git add -A && git commit`) and push, or pass allow_dirty=True "
            "(the README will say the code was not committed)."
        )
    if provenance.unpushed is None:
        raise PublishError(
            f"Branch {provenance.branch!r} at {str(repository)!r} has no upstream, so commit "
            f"{provenance.commit} may exist nowhere else; push it (`git push -u origin "
            f"{provenance.branch}`), or pass allow_dirty=True."
        )
    if provenance.unpushed:
        raise PublishError(
            f"Branch {provenance.branch!r} at {str(repository)!r} has {provenance.unpushed} "
            "commit(s) that are not pushed; `git push` them, or pass allow_dirty=True."
        )
    return provenance


def _readme(
    name: str,
    top_hash: str,
    info: dict[str, Any],
    provenance: GitProvenance | None,
    allow_dirty: bool,
    text: str | None,
) -> str:
    lines = [f"# {name}", "", f"Version (top_hash): `{top_hash}`", ""]
    if text:
        lines += [text.rstrip(), ""]
    lines += ["## Provenance", ""]
    if provenance is None:
        lines.append("- Code: not in a git repository (published with allow_dirty=True).")
    else:
        lines += [
            f"- Repository: {provenance.repository or '(no remote)'}",
            f"- Branch: {provenance.branch}",
            f"- Commit: {provenance.commit}",
            f"- Author: {provenance.author}",
        ]
        if allow_dirty and (provenance.dirty or provenance.unpushed != 0):
            lines.append(
                "- **Published with allow_dirty=True**: the work tree had uncommitted changes "
                f"({len(provenance.dirty)} paths) or commits not pushed; the commit above does "
                "not fully describe the code."
            )
    lines += [
        f"- Dataset: {info['dataset']['class'] or 'a dataset'} `{info['dataset']['payload_name']}` key "
        f"`{info['dataset']['key']}`",
        f"- Files: {info['files']} ({info['bytes']} bytes); created {info['created']}",
        "",
        "Load it with `persistable.checkout(destination, name)`.",
    ]
    return "\n".join(lines) + "\n"


def publish(
    dataset: DatasetPersistable[Any],
    destination: StoreLike,
    name: str,
    *,
    allow_dirty: bool = False,
    readme: str | None = None,
    repository: str | Path = ".",
    storage_options: dict[str, Any] | None = None,
) -> Package:
    """Write a versioned package of ``dataset`` (generated first if needed) to ``destination``.

    Parameters
    ----------
    dataset
        A :class:`~persistable.datasets.DatasetPersistable`.
    destination
        Any store (a folder, an fsspec URL, a Store).
    name
        The package name, e.g. ``"lab/cell-dataset"``.
    allow_dirty
        Publish although the git work tree has uncommitted or unpushed changes, or no
        repository; the README says so.
    readme
        Text added to the package's README.
    repository
        A folder inside the git repository of the publishing code (default: here).

    Raises
    ------
    PublishError
        No git repository, uncommitted changes or unpushed commits (the message says
        what to commit, push or pass), or a bad package name.
    """
    from persistable.datasets._dataset import DatasetPersistable

    if not isinstance(dataset, DatasetPersistable):
        raise PublishError(
            f"publish() takes a DatasetPersistable (got {type(dataset).__qualname__}); "
            "declare the dataset as a DatasetPersistable subclass with filepath_columns."
        )
    _check_name(name)
    provenance = _provenance(Path(repository), allow_dirty)
    dataset.load_generate()
    return _publish_committed(
        dataset.store,
        dataset.payload_name,
        dataset.persist_hash,
        destination,
        name,
        provenance=provenance,
        allow_dirty=allow_dirty,
        readme=readme,
        storage_options=storage_options,
    )


def publish_artifact(
    source: StoreLike,
    payload_name: str,
    key: str,
    destination: StoreLike,
    name: str,
    *,
    allow_dirty: bool = False,
    readme: str | None = None,
    repository: str | Path = ".",
    source_storage_options: dict[str, Any] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Package:
    """Publish a committed dataset artifact by store, payload name and key (what the CLI does).

    Raises
    ------
    PublishError
        As :func:`publish`, or the artifact is not a dataset (its payload is no manifest).
    """
    _check_name(name)
    provenance = _provenance(Path(repository), allow_dirty)
    store = make_store(source, storage_options=source_storage_options)
    return _publish_committed(
        store,
        payload_name,
        key,
        destination,
        name,
        provenance=provenance,
        allow_dirty=allow_dirty,
        readme=readme,
        storage_options=storage_options,
    )


def _publish_committed(
    source: Store,
    payload_name: str,
    key: str,
    destination: StoreLike,
    name: str,
    *,
    provenance: GitProvenance | None,
    allow_dirty: bool,
    readme: str | None,
    storage_options: dict[str, Any] | None,
) -> Package:
    metadata = source.read_metadata(payload_name, key)
    if metadata.get("payload_io") != "manifest":
        raise PublishError(
            f"{payload_name} key {key} in {source.url!r} is not a dataset (its payload_io is "
            f"{metadata.get('payload_io')!r}, not 'manifest'); publish a DatasetPersistable."
        )
    payload_file = str(metadata.get("payload_file", "payload.dataset"))
    prefix = f"{payload_file}/"
    members = {
        path[len(prefix) :]: record
        for path, record in metadata.get("files", {}).items()
        if path.startswith(prefix)
    }
    files_dir = f"{payload_name}/{key}"
    if metadata.get("files_folder"):  # replaced on an object store (see Artifact.files_dir)
        files_dir = f"{files_dir}/{metadata['files_folder']}"
    params = source.read_bytes(f"{files_dir}/params.json")
    lineage = dump_json(
        {
            "payload_name": payload_name,
            "key": key,
            "dependencies": metadata.get("dependencies", {}),
        }
    )
    extra = {"params.json": params, "lineage.json": lineage}
    records: dict[str, dict[str, Any]] = dict(members)
    for file_name, data in extra.items():
        hasher = BulkHasher()
        hasher.update(data)
        records[file_name] = {"size": hasher.size, BULK_ALGORITHM: hasher.hexdigest()}
    top_hash = _top_hash(records)
    target = make_store(destination, storage_options=storage_options)
    version_dir = f"{name}/{top_hash}"
    if target.exists(f"{version_dir}/{METADATA_FILE}"):
        return checkout(target, name, top_hash)
    import datetime as _dt  # here: `import persistable` must not import datetime

    info: dict[str, Any] = {
        "name": name,
        "top_hash": top_hash,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"),
        "provenance": None if provenance is None else provenance.to_dict(),
        "allow_dirty": allow_dirty,
        "dataset": {
            "class": str((metadata.get("code") or {}).get("class", "")),
            "payload_name": payload_name,
            "key": key,
        },
        "files": sum(1 for path in members if path.startswith("files/")),
        "bytes": sum(int(r["size"]) for p, r in members.items() if p.startswith("files/")),
    }
    text = _readme(name, top_hash, info, provenance, allow_dirty, readme).encode("utf-8")
    written: dict[str, dict[str, Any]] = {}
    with target.begin(version_dir) as transaction:
        for relative, record in sorted(members.items()):
            hasher = BulkHasher()
            path = f"{files_dir}/{prefix}{relative}"
            with (
                source.open_read(path) as reader,
                HashingWriter(transaction.open_write(relative)) as writer,
            ):
                while chunk := reader.read(_CHUNK):
                    hasher.update(chunk)
                    writer.write(chunk)
            check_file(f"{source.url}/{path}", hasher, record, "the dataset changed")
            written[relative] = writer.record
        for file_name, data in (
            *extra.items(),
            ("package.json", dump_json(info)),
            ("README.md", text),
        ):
            with HashingWriter(transaction.open_write(file_name)) as writer:
                writer.write(data)
            written[file_name] = writer.record
        transaction.commit(dump_json({"package": info, "files": written}))
    return checkout(target, name, top_hash)


def versions(
    destination: StoreLike, name: str, storage_options: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The committed versions of a package, oldest first (each its ``package.json``)."""
    store = make_store(destination, storage_options=storage_options)
    return _versions(store, _check_name(name))


def _versions(store: Store, name: str) -> list[dict[str, Any]]:
    found = []
    for entry in store.list_dir(name):
        marker = f"{name}/{entry}/{METADATA_FILE}"
        if len(entry) == 64 and store.exists(marker):
            info = json.loads(store.read_bytes(marker))["package"]
            found.append(info)
    return sorted(found, key=lambda info: (info["created"], info["top_hash"]))


def checkout(
    destination: StoreLike,
    name: str,
    version: str | None = None,
    *,
    to: str | Path | None = None,
    verify: bool = True,
    storage_options: dict[str, Any] | None = None,
) -> Package:
    """One version of a package (the latest by default), its manifest's paths resolved.

    Without ``to`` the paths point into the destination store (local paths or URLs);
    with ``to`` every file is copied into that local folder first. Checksums are checked
    against the package's ``metadata.json`` (``verify``).

    Raises
    ------
    PackageNotFoundError
        The package, or that version of it, does not exist in ``destination``.
    """
    import posixpath

    pandas: Any = __import__("pandas")
    store = make_store(destination, storage_options=storage_options)
    _check_name(name)
    if version is None:
        known = _versions(store, name)
        if not known:
            raise PackageNotFoundError(
                f"No package {name!r} in {store.url!r}; publish one with persistable.publish()."
            )
        version = str(known[-1]["top_hash"])
    version_dir = f"{name}/{version}"
    try:
        metadata = json.loads(store.read_bytes(f"{version_dir}/{METADATA_FILE}"))
    except FileNotFoundError as error:
        raise PackageNotFoundError(
            f"Package {name!r} has no version {version!r} in {store.url!r} (known: "
            f"{[info['top_hash'] for info in _versions(store, name)]})."
        ) from error
    files: dict[str, dict[str, Any]] = metadata["files"]
    if verify:
        for relative, record in sorted(files.items()):
            if not is_artifact_file_path(relative):
                raise PublishError(f"{store.url}/{version_dir} lists the bad path {relative!r}.")
            with store.open_read(f"{version_dir}/{relative}") as stream:
                check_file(f"{store.url}/{version_dir}/{relative}", hash_stream(stream), record)
    if _top_hash(files) != version:
        raise PublishError(
            f"The files of {store.url}/{version_dir} hash to {_top_hash(files)}, not to the "
            "version's top_hash; the package was changed after it was published."
        )
    base: str
    if to is not None:
        root = Path(to)
        for relative in sorted(files):
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with store.open_read(f"{version_dir}/{relative}") as reader, target.open("wb") as out:
                while chunk := reader.read(_CHUNK):
                    out.write(chunk)
        base = str(root.resolve())
        join = __import__("os").path.join
    else:
        local = store.local_path(version_dir)
        if local is not None:
            base, join = str(local), __import__("os").path.join
        else:
            base, join = f"{store.url.rstrip('/')}/{version_dir}", posixpath.join
    manifest = pandas.read_parquet(
        io.BytesIO(store.read_bytes(f"{version_dir}/manifest.parquet")), engine="pyarrow"
    )
    description = json.loads(store.read_bytes(f"{version_dir}/package.json"))
    dataset_info = json.loads(store.read_bytes(f"{version_dir}/lineage.json"))
    declared = json.loads(store.read_bytes(f"{version_dir}/dataset.json"))
    columns: list[str] = declared["filepath_columns"]
    for column in columns:
        manifest[column] = [
            value if value is None or value != value else join(base, value)
            for value in manifest[column].tolist()
        ]
    description["lineage"] = dataset_info
    return Package(
        name=name,
        version=version,
        manifest=manifest,
        info=description,
        readme=store.read_bytes(f"{version_dir}/README.md").decode("utf-8"),
        location=base,
        filepath_columns=tuple(columns),
        sample_column=declared.get("sample_column"),
    )
