"""One lock around Python's parser for every part of persistable that parses source.

CPython 3.11's ``ast.parse`` (which ``inspect.getsource`` of a class also runs) is not
safe in two threads at once ("AST constructor recursion depth mismatch"). The code
fingerprint and the class source record both parse; sharing this lock keeps a thread
in one from racing a thread in the other.
"""

from __future__ import annotations

import threading

__all__ = ["PARSE_LOCK"]

PARSE_LOCK = threading.Lock()
