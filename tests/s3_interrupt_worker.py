"""A persistable used by the interrupted-commit test, and a script that dies mid-commit.

Run as ``python s3_interrupt_worker.py <url> <endpoint>``: it uploads every file of
the artifact through a real store transaction and is killed (SIGKILL) before
``metadata.json`` is written.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from persistable import Persistable, PersistableParams, make_store


@dataclass
class RampParams(PersistableParams):
    """Length of the ramp."""

    n: int


class Ramp(Persistable[list[int], RampParams]):
    """0, 1, ..., n-1."""

    def _generate_payload(self, **untracked_payload_params: Any) -> list[int]:
        return list(range(self.params.n))


def storage_options(endpoint: str) -> dict[str, Any]:
    """Dummy credentials for the loopback S3 server."""
    return {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": endpoint}}


def main(url: str, endpoint: str) -> None:
    """Upload the files of Ramp(n=400_000) (a payload over 1 MiB) to S3, then die before committing."""
    ramp = Ramp(url, RampParams(n=400_000), storage_options=storage_options(endpoint))
    store = make_store(url, storage_options=storage_options(endpoint))
    transaction = store.begin(ramp.artifact_dir)
    with transaction.open_write(ramp.payload_file) as stream:
        ramp.payload_io.save(ramp._generate_payload(), stream)
    transaction.write_bytes("params.json", b"{}")
    transaction.write_bytes("generation.log", b"")
    sys.stdout.write("uploaded\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
