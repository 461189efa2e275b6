"""1.x's md5 (its file name hash) is computed exactly as persistable 1.3.1 computes it."""

from __future__ import annotations

from pathlib import Path

import pytest
import v1_golden

#: Printed by ``python tests/v1_golden.py DIR`` under persistable==1.3.1 (numpy 2.4).
GOLDEN_V1_MD5 = {
    "small": "30d9d62694eaa7985f2c67cebd0fe1e3",
    "small_float": "ac2496a92d03b66c561192b33fbcca61",
    "renamed": "a0aa2efe41fc4f050b6b258509b04a15",
    "everything": "e18eaeb0da20ed6d9e74429e4b2abac8",
    "everything_changed": "6ccb2ce4131dd9b57fba188b870f7359",
    "custom_encoder": "0e7cc13bb1945090e618d44f5ab36657",
    "one_dependency": "b43bf528a698dd3ac418d7900e62bf0c",
    "two_dependencies": "82c1f5b9e511ee100b79d5247cd0471d",
    "chain": "fc02efc8eae97ec2a8662bb5eefd344b",
}


@pytest.mark.parametrize("case", sorted(GOLDEN_V1_MD5))
def test_v1_md5_matches_1_3_1(case: str, tmp_path: Path) -> None:
    """v1_persist_hash equals 1.3.1's persist_hash for params of every kind and for dependency trees."""
    persistable = v1_golden.cases(tmp_path)[case]
    assert persistable.v1_persist_hash == GOLDEN_V1_MD5[case]
    assert list(tmp_path.iterdir()) == []  # computing it writes nothing


def test_v1_md5_is_not_the_key(tmp_path: Path) -> None:
    """1.x told 10 and 10.0 apart only by spelling; the key tells them apart by type."""
    cases = v1_golden.cases(tmp_path)
    assert cases["small"].key != cases["small_float"].key
    assert cases["small"].v1_persist_hash != cases["small_float"].v1_persist_hash
