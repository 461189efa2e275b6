"""``python -m persistable.flow ARGS``: the same as ``persistable flow ARGS``."""

from __future__ import annotations

import sys

from persistable.cli import main

if __name__ == "__main__":
    main(["flow", *sys.argv[1:]])
