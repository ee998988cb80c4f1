"""The outbox transport: each message becomes an .eml file on disk.

The embedded default, so that a send can be tried end to end with no
account anywhere; the files open in any mail program.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from ...errors import AccountSendError


class OutboxTransport:
    """Writes messages into `folder`, one file each, atomically."""

    name = "outbox"
    max_rate = None

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return f"outbox ({self.folder})"

    def send(self, raw: bytes, sender: str, recipient: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9@._+-]+", "_", recipient)[:80]
        message_id = uuid.uuid4().hex
        path = self.folder / f"{safe}-{message_id[:12]}.eml"
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                out.write(raw)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            # A full disk leaves the start of a message behind; it must not look sent.
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            # A full or read-only disk fails every message alike: stop the send.
            raise AccountSendError(f"cannot write to the outbox: {exc.strerror}", path=self.folder) from None
        return path.name

    def quota(self):
        return None

    def close(self) -> None:
        """Nothing to close."""
