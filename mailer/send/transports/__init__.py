"""The ways a message leaves: SES, SMTP, or .eml files in an outbox.

Each transport takes finished MIME bytes and one recipient, returns the
provider's message id, and raises the `SendError` subclass that tells the
sender what to do next (retry, give up on this recipient, stop the send,
or record the outcome as unknown). The `Transport` protocol they follow is
declared by `mailer.send.engine`, which uses them.
"""

from __future__ import annotations

from pathlib import Path

from ...config import Settings


def open_transport(settings: Settings, outbox: Path, concurrency: int):
    """The transport `settings` choose, sized for `concurrency` workers."""
    kind = settings.transport.kind
    if kind == "ses":
        from .ses import SesTransport

        return SesTransport(settings.ses, concurrency)
    if kind == "smtp":
        from .smtp import SmtpTransport

        return SmtpTransport(settings.smtp)
    from .outbox import OutboxTransport

    return OutboxTransport(outbox)
