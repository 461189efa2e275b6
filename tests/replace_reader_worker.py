"""A writer that replaces one key again and again, or a reader that loads it in a loop.

The payload is self-checking (a header and a body derived from it) and the writer logs
its header while generating, so a reader can tell a whole artifact from a mix of two:
the payload, and the generation log read through the same handle, must name the same
write. ``writer --stall`` stops after uploading part of the payload (for a kill).
Each outcome is one JSON line on stdout.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from persistable import BytesFileIO, Persistable, PersistableParams
from persistable.artifact import Artifact
from persistable.store import make_store

SIZE = 1 << 16  # small: the test is about which write a file comes from, not its size


@dataclass
class OneKeyParams(PersistableParams):
    """One key for every process."""

    name: str = "replaced"


class Replaced(Persistable[bytes, OneKeyParams]):
    """A payload whose body is derived from its header."""

    tag = "?"

    def _generate_payload(self, **untracked_payload_params: Any) -> bytes:
        header = f"{type(self).tag}:{time.time_ns()}".encode().ljust(64, b" ")
        self.logger.info("header %s", header.decode().strip())
        return header + hashlib.sha256(header).digest() * (SIZE // 32)


class StallingIO(BytesFileIO):
    """Writes half the payload, says so, then waits to be killed."""

    def save(self, payload: bytes, stream: IO[bytes]) -> None:
        stream.write(payload[: len(payload) // 2])
        stream.flush()
        print(json.dumps({"stalled": True}), flush=True)
        time.sleep(600)


def whole(payload: bytes) -> bool:
    header, body = payload[:64], payload[64:]
    return body == hashlib.sha256(header).digest() * (SIZE // 32)


def main() -> None:
    spec = json.loads(sys.argv[1])
    store = make_store(spec["url"], storage_options=spec.get("storage_options"))
    Replaced.tag = spec["tag"]
    if spec["role"] == "writer":
        payload_io = StallingIO() if spec.get("stall") else BytesFileIO()
        for step in range(spec["steps"]):
            item = Replaced(store, OneKeyParams(), payload_io=payload_io)
            item.lock_timeout = 240
            item.generate()
            header = item.payload[:64].decode().strip()
            print(json.dumps({"role": "writer", "step": step, "header": header}), flush=True)
        return
    stop = Path(spec["stop"])
    key = Replaced(store, OneKeyParams()).persist_hash
    while True:
        last = stop.exists()  # one more round after the writers are done
        outcome: dict[str, Any] = {"role": "reader"}
        try:
            # A plain load() of the user API: always one whole artifact, old or new.
            item = Replaced(store, OneKeyParams(), payload_io=BytesFileIO())
            item.load(verify=True)
            outcome["load_whole"] = whole(item.payload)
            outcome["header"] = item.payload[:64].decode().strip()
        except Exception as error:  # every failure is an outcome the test looks at
            outcome["load_error"] = f"{type(error).__name__}: {error}"
        try:
            # Payload, then log, through one handle: the same write, or an error saying
            # the artifact was replaced in between (never the log of another write).
            artifact = Artifact(store, "replaced", key)
            payload = artifact.load(BytesFileIO())
            log = artifact.read_log()
            header = payload[:64].decode().strip()
            outcome["handle_whole"] = whole(payload)
            outcome["log_matches"] = f"header {header}" in log
        except Exception as error:
            outcome["handle_error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(outcome), flush=True)
        if last:
            return
        # A short breath: six readers in a tight loop would starve the writers (and the
        # one S3 server) without reading at any more moments of a replace.
        time.sleep(spec.get("pause", 0.0))


if __name__ == "__main__":
    main()
