"""One of several processes that replace, delete and load one key at the same time.

Every payload is self-checking (a header naming its writer and a body derived from
it), so a reader can tell a whole payload from a mix of two. Each outcome is printed
as one JSON line for the test to check.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

from persistable import BytesFileIO, Persistable, PersistableParams
from persistable.exceptions import ArtifactNotFoundError, QuarantineWarning
from persistable.store import make_store


@dataclass
class OneKeyParams(PersistableParams):
    """The same for every process: one key."""

    name: str = "contended"


class Contended(Persistable[bytes, OneKeyParams]):
    """A payload whose body is derived from its header: mixed payloads do not check out."""

    writer = "?"
    size = 1 << 20

    def _generate_payload(self, **untracked_payload_params: Any) -> bytes:
        header = f"{type(self).writer}:{time.time_ns()}".encode().ljust(64, b" ")
        body = hashlib.sha256(header).digest() * (type(self).size // 32)
        return header + body


def whole(payload: bytes) -> bool:
    """Whether the payload is one writer's payload, not a mix or a truncation."""
    header, body = payload[:64], payload[64:]
    return body == hashlib.sha256(header).digest() * (Contended.size // 32)


def main() -> None:
    spec = json.loads(sys.argv[1])
    Contended.writer = spec["writer"]
    store = make_store(spec["url"], storage_options=spec.get("storage_options"))
    rng = random.Random(spec["seed"])
    warnings.simplefilter("error", QuarantineWarning)
    for step in range(spec["steps"]):
        item = Contended(store, OneKeyParams(), payload_io=BytesFileIO())
        item.lock_timeout = 240
        action = rng.choice(["generate", "delete", "load_generate", "load"])
        outcome: dict[str, Any] = {"writer": spec["writer"], "step": step, "action": action}
        try:
            if action == "generate":
                item.generate()
            elif action == "delete":
                outcome["deleted"] = item.delete()
            elif action == "load_generate":
                item.load_generate()
            else:
                item.load(verify=True)
            if action != "delete":
                outcome["whole"] = whole(item.payload)
                outcome["header"] = item.payload[:64].decode().strip()
        except ArtifactNotFoundError:
            outcome["missing"] = True
        except Exception as error:
            outcome["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
