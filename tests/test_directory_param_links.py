"""A ``Directory`` param is keyed by what a reader of the tree reaches, symlinked folders included.

Before, ``os.walk`` did not enter a symlinked folder, so a change to a file under it (read
by ``glob("**")`` or ``os.walk(followlinks=True)``) kept the key and silently loaded the
payload made from the old file.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persistable import Directory, Persistable, PersistableParams
from persistable.params import encode_value

#: The digest of the plain tree below as Directory params have always been keyed.
PLAIN_TREE_DIGEST = "c9dd6000aaf29a7180a3b8514f4f841a"


@dataclass
class TreeParams(PersistableParams):
    tree: Directory


class Concatenate(Persistable[str, TreeParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> str:
        names = sorted(glob.glob(os.path.join(self.params.tree, "**", "*.txt"), recursive=True))
        return ",".join(Path(name).read_text().strip() for name in names)


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "shared.txt").write_text("one")
    tree = tmp_path / "tree"
    (tree / "own").mkdir(parents=True)
    (tree / "own" / "a.txt").write_text("a")
    (tree / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    return tree


def test_a_file_under_a_symlinked_folder_is_part_of_the_key(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    store = tmp_path / "store"
    first = Concatenate(store, TreeParams(Directory(tree)))
    first.load_generate()
    assert first.payload == "one,a"
    first_key = first.key
    (tmp_path / "outside" / "shared.txt").write_text("two")
    second = Concatenate(store, TreeParams(Directory(tree)))
    second.load_generate()
    assert second.payload == "two,a"
    assert second.key != first_key


def test_a_link_back_up_the_tree_is_not_followed_forever(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    (tree / "own" / "up").symlink_to(tree, target_is_directory=True)
    (tmp_path / "outside" / "back").symlink_to(tmp_path / "outside", target_is_directory=True)
    encoded = encode_value(Directory(tree))
    assert encoded["files"] == 2  # own/a.txt and linked/shared.txt, each once


def test_a_tree_without_links_keeps_its_digest(tmp_path: Path) -> None:
    """Following links changes nothing for a tree that has none (keys made before stay)."""
    tree = tmp_path / "plain"
    (tree / "b").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha")
    (tree / "b" / "c.txt").write_bytes(b"gamma")
    assert encode_value(Directory(tree)) == {
        "__type__": "directory",
        "files": 2,
        "size": 10,
        "xxh3_128": PLAIN_TREE_DIGEST,
    }
