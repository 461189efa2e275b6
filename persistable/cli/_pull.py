"""``persistable pull REMOTE LOCAL``: copy the artifacts LOCAL lacks (complete, verified)."""

from __future__ import annotations

from persistable.cli._transfer import transfer_command

command = transfer_command("pull", remote="FROM", example="s3://lab/cache to ./cache")
