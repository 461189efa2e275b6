"""h5flow YAML configs: loading (with ``!include``), validation and ``requires`` forms.

A config has a ``flow`` block (``source``, ``stages``, ``drop``), one block per stage
(and optionally for the source generator) with ``classname``, ``path``, ``dset_name``,
``params`` and ``requires``, and a ``resources`` list. Every mistake is reported as one
sentence naming the file, the key and the fix.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from persistable.exceptions import MissingDependencyError
from persistable.flow._errors import FlowConfigError

__all__ = ["BlockConfig", "FlowConfig", "Requirement", "drop_name_problem", "load_config"]

FLOW_KEYS = frozenset({"source", "stages", "drop"})
BLOCK_KEYS = frozenset({"classname", "path", "dset_name", "params", "requires"})
RESOURCE_KEYS = frozenset({"classname", "path", "params"})
REQUIREMENT_KEYS = frozenset({"name", "path", "index_only"})


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One ``requires`` entry: load ``path`` (a chain of datasets) into ``cache[name]``."""

    name: str
    path: tuple[str, ...]
    index_only: bool = False


@dataclasses.dataclass(frozen=True)
class BlockConfig:
    """A stage, generator or resource block."""

    name: str
    classname: str
    path: str | None
    dset_name: str | None
    params: dict[str, Any]
    requires: tuple[Requirement, ...]


@dataclasses.dataclass(frozen=True)
class FlowConfig:
    """A validated config: what the loop runs, and the raw tree that enters the key."""

    file: Path
    source: str
    generator: BlockConfig | None
    stages: tuple[BlockConfig, ...]
    resources: tuple[BlockConfig, ...]
    drop: tuple[str, ...]
    tree: dict[str, Any]


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as error:  # pragma: no cover - pyyaml is in the hdf5 extra
        raise MissingDependencyError(
            "Flows read YAML configs with PyYAML; install it with: pip install 'persistable[hdf5]'."
        ) from error
    return yaml


def _load_yaml(path: Path, stack: tuple[Path, ...]) -> Any:
    yaml = _yaml()
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in (*stack, resolved))
        raise FlowConfigError(f"!include loops back on itself ({chain}); remove the cycle.")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        where = f" (included from {stack[-1]})" if stack else ""
        raise FlowConfigError(
            f"Config file {str(path)!r} does not exist{where}; check the path."
        ) from error

    # libyaml's parser when PyYAML has it (several times faster), the same safe constructors
    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    def include(loader: Any, node: Any) -> Any:
        target = Path(loader.construct_scalar(node))
        if not target.is_absolute():
            target = path.parent / target
        return _load_yaml(target, (*stack, resolved))

    Loader.add_constructor("!include", include)
    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError as error:
        raise FlowConfigError(
            f"Config file {str(path)!r} is not valid YAML ({error}); fix the syntax."
        ) from error


def _fail(file: Path, key: str, problem: str, fix: str) -> FlowConfigError:
    return FlowConfigError(f"Config {str(file)!r}, key {key!r}: {problem}; {fix}.")


def _check_keys(file: Path, where: str, block: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise _fail(
            file, where, f"expected a mapping, got {block!r}", "write it as 'key: value' lines"
        )
    unknown = sorted(set(block) - allowed)
    if unknown:
        raise _fail(
            file,
            f"{where}.{unknown[0]}",
            "unknown key",
            f"use only {', '.join(sorted(allowed))}",
        )
    return block


def _requirements(file: Path, where: str, raw: Any) -> tuple[Requirement, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(file, where, f"expected a list, got {raw!r}", "write requires: [name, ...]")
    out: list[Requirement] = []
    for i, entry in enumerate(raw):
        if isinstance(entry, str):
            out.append(Requirement(entry, (entry,)))
            continue
        entry = _check_keys(file, f"{where}[{i}]", entry, REQUIREMENT_KEYS)
        name = entry.get("name")
        if not isinstance(name, str):
            raise _fail(
                file,
                f"{where}[{i}].name",
                f"expected a dataset name, got {name!r}",
                "add name: <cache key>",
            )
        path = entry.get("path", name)
        if isinstance(path, str):
            path = [path]
        if not isinstance(path, list) or not path or not all(isinstance(p, str) for p in path):
            raise _fail(
                file,
                f"{where}[{i}].path",
                f"expected a dataset name or a list of them, got {path!r}",
                "write path: [a, b]",
            )
        index_only = entry.get("index_only", False)
        if not isinstance(index_only, bool):
            raise _fail(
                file,
                f"{where}[{i}].index_only",
                f"expected true or false, got {index_only!r}",
                "write index_only: true",
            )
        out.append(Requirement(name, tuple(path), index_only))
    return tuple(out)


def _optional_str(file: Path, where: str, value: Any, expected: str, fix: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _fail(file, where, f"expected {expected}, got {value!r}", fix)
    return value


def _names(file: Path, where: str, raw: Any, kind: str, fix: str) -> list[str]:
    names = raw or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _fail(file, where, f"expected a list of {kind} names, got {raw!r}", fix)
    return names


#: How to write a drop name (the end of every drop-name error).
DROP_FIX = "write the exact path of a dataset or group, such as hits/tmp"


def drop_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a drop entry (drop matches exact object paths), or None."""
    parts = name.strip("/").split("/")
    if not name.strip("/"):
        return "is empty"
    if name != name.strip():
        return "has spaces at its ends"
    if any(c in name for c in "*?[]"):
        return "is a pattern (drop matches exact object paths, not patterns or substrings)"
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' part"
    return None


def _block(file: Path, name: str, raw: Any, allowed: frozenset[str]) -> BlockConfig:
    block = _check_keys(file, name, raw, allowed)
    classname = block.get("classname")
    if not isinstance(classname, str) or not classname:
        raise _fail(
            file,
            f"{name}.classname",
            f"expected a class name, got {classname!r}",
            "add classname: <YourStage>",
        )
    params = block.get("params") or {}
    if not isinstance(params, dict):
        raise _fail(
            file,
            f"{name}.params",
            f"expected a mapping, got {params!r}",
            "write params as 'key: value' lines",
        )
    return BlockConfig(
        name=name,
        classname=classname,
        path=_optional_str(
            file, f"{name}.path", block.get("path"), "an import path", "write path: package.module"
        ),
        dset_name=_optional_str(
            file,
            f"{name}.dset_name",
            block.get("dset_name"),
            "a dataset name",
            "write dset_name: group/name",
        ),
        params=dict(params),
        requires=_requirements(file, f"{name}.requires", block.get("requires")),
    )


def load_config(path: str | Path) -> FlowConfig:
    """Read and validate one flow config (``!include`` paths are relative to the including file)."""
    file = Path(path)
    tree = _load_yaml(file, ())
    if not isinstance(tree, dict) or "flow" not in tree:
        raise _fail(file, "flow", "missing", "add a flow: {source: ..., stages: [...]} block")
    flow = _check_keys(file, "flow", tree["flow"], FLOW_KEYS)
    source = flow.get("source")
    if not isinstance(source, str) or not source:
        raise _fail(
            file,
            "flow.source",
            f"expected a dataset path or a generator block name, got {source!r}",
            "write source: <dataset>",
        )
    stage_names = _names(file, "flow.stages", flow.get("stages"), "block", "write stages: [a, b]")
    seen: set[str] = set()
    for stage in stage_names:
        if stage in seen:
            raise _fail(
                file,
                "flow.stages",
                f"stage {stage!r} is listed twice",
                "list each stage once (use a second block name for a second instance)",
            )
        seen.add(stage)
        if stage not in tree:
            raise _fail(
                file,
                stage,
                f"stage {stage!r} of flow.stages has no block",
                f"add a top-level '{stage}:' block with a classname",
            )
    drop = _names(file, "flow.drop", flow.get("drop"), "dataset", "write drop: [group/name]")
    for i, name in enumerate(drop):
        problem = drop_name_problem(name)
        if problem is not None:
            raise _fail(file, f"flow.drop[{i}]", f"{name!r} {problem}", DROP_FIX)
    generator = _block(file, source, tree[source], BLOCK_KEYS) if source in tree else None
    if generator is not None and generator.dset_name is None:
        raise _fail(
            file,
            f"{source}.dset_name",
            "missing for the source generator",
            "add dset_name: <dataset the stages loop over>",
        )
    resources_raw = tree.get("resources") or []
    if not isinstance(resources_raw, list):
        raise _fail(
            file,
            "resources",
            f"expected a list, got {resources_raw!r}",
            "write resources: [{classname: ...}]",
        )
    resources = tuple(
        _block(file, f"resources[{i}]", r, RESOURCE_KEYS) for i, r in enumerate(resources_raw)
    )
    referenced = {"flow", "resources", source, *stage_names}
    for key, value in tree.items():
        if key in referenced:
            continue
        if not isinstance(value, dict) or "classname" not in value:
            raise _fail(
                file,
                str(key),
                "unknown key (neither flow, resources nor a block with a classname)",
                "remove it or add it to flow.stages",
            )
    return FlowConfig(
        file=file,
        source=source,
        generator=generator,
        stages=tuple(_block(file, s, tree[s], BLOCK_KEYS) for s in stage_names),
        resources=resources,
        drop=tuple(drop),
        tree=tree,
    )
