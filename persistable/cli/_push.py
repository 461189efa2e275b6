"""``persistable push LOCAL REMOTE``: copy the artifacts REMOTE lacks (complete, verified)."""

from __future__ import annotations

from persistable.cli._transfer import transfer_command

command = transfer_command("push", remote="TO", example="./cache to s3://lab/cache")
