"""One member of a group sharing a store folder: started as root, it drops to a uid, then acts.

Everything the scenario needs is imported before the uid changes, because the
interpreter itself may live in a folder only root can read.
"""

from __future__ import annotations

import ctypes  # noqa: F401 - imported before dropping privileges
import datetime  # noqa: F401
import getpass  # noqa: F401
import grp  # noqa: F401
import hashlib  # noqa: F401
import importlib.metadata  # noqa: F401
import inspect  # noqa: F401
import json
import os
import pickle  # noqa: F401
import platform  # noqa: F401
import pwd  # noqa: F401
import shutil  # noqa: F401
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

# What `import persistable` leaves to first use (generating, loading, replacing).
import persistable._fingerprint
import persistable._pristine
import persistable._spool
import persistable.artifact._same
import persistable.io._folder  # noqa: F401
from persistable import Persistable, PersistableParams, untracked
from persistable._artifact import _environment
from persistable.exceptions import StoreAccessDeniedError


@dataclass
class SharedParams(PersistableParams):
    """Which artifact, and how long generating it takes."""

    n: int
    seconds: float = untracked(default=0.0)


class Shared(Persistable[dict[str, Any], SharedParams]):
    """A payload that says who made it."""

    def _generate_payload(self, **untracked_payload_params: Any) -> dict[str, Any]:
        time.sleep(self.params.seconds)
        return {"n": self.params.n, "by": os.getuid()}


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.environ["USER"] = os.environ["LOGNAME"] = spec["name"]
    _environment()  # platform and user looked up now, while the interpreter can still be read
    os.setgroups([spec["group"]])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    os.umask(int(spec["umask"], 8))
    result: dict[str, Any] = {"uid": os.getuid()}
    try:
        item = Shared(spec["store"], SharedParams(spec["n"], spec.get("seconds", 0.0)))
        action = spec["action"]
        if action == "load_generate":
            item.load_generate()
        elif action == "generate":
            item.generate()
        elif action == "delete":
            result["deleted"] = item.delete()
        result["payload"] = item.payload if action != "delete" else None
    except StoreAccessDeniedError as error:
        result["access_denied"] = str(error)
    except Exception as error:  # reported to the test, which fails on it
        result["error"] = f"{type(error).__name__}: {error}"
        result["traceback"] = traceback.format_exc()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
