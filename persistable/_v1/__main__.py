"""``python -m persistable._v1 DATA_DIR --module M [--adopt]``: the migrate-v1 report without the CLI."""

from __future__ import annotations

import argparse
import sys

from persistable._v1._classes import classes_in_modules
from persistable._v1._migrate import migrate_v1


def main(argv: list[str] | None = None) -> int:
    """Print what of a 1.x cache can be adopted (and adopt it with ``--adopt``); 0 on success."""
    parser = argparse.ArgumentParser(
        prog="python -m persistable._v1",
        description="Report, and with --adopt adopt, the persistable 1.x files of DATA_DIR.",
    )
    parser.add_argument("data_dir", metavar="DATA_DIR")
    parser.add_argument(
        "--module",
        "-m",
        action="append",
        default=[],
        help="module (dotted name or .py file) defining the persistable classes; repeatable",
    )
    parser.add_argument("--adopt", action="store_true", help="commit every adoptable file")
    args = parser.parse_args(argv)
    report = migrate_v1(args.data_dir, classes_in_modules(args.module), adopt=args.adopt)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
