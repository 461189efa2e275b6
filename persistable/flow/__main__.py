"""``python -m persistable.flow``: the flow command line."""

from __future__ import annotations

import sys

from persistable.flow._cli import main

if __name__ == "__main__":
    sys.exit(main())
