"""The errors mailer raises, one base class for all of them.

Every error a user can cause is a `MailerError`. Its string form is the one
line the command line prints: where the problem is (file and line when
known), what is wrong, and what to do about it. Only the CLI turns these into
exit statuses; the library never prints.
"""

from __future__ import annotations

from pathlib import Path


class MailerError(Exception):
    """Base class: a problem the user can act on, reported in one line."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.hint = hint

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        text = f"{where}{self.message}"
        if self.hint:
            text = f"{text} ({self.hint})"
        # One line, whatever the message carried in from a parser.
        return " ".join(text.split())


def os_reason(exc: BaseException) -> str:
    """What went wrong, in the system's words where it has some ('Permission denied')."""
    return getattr(exc, "strerror", None) or str(exc)


class WorkspaceNotFound(MailerError):
    """No newsletter.toml in the folder or any folder above it."""


class ConfigError(MailerError, ValueError):
    """newsletter.toml is unreadable or holds a value that is not allowed."""


class IssueError(MailerError, ValueError):
    """An issue file cannot be read or parsed (front matter, title, encoding)."""


class TemplateError(MailerError):
    """A template is missing, has a syntax error, or fails while rendering."""


class RenderError(MailerError):
    """MJML or CSS inlining failed on what the templates produced."""


class HeaderError(MailerError, ValueError):
    """A value cannot be put in a mail header safely (CR/LF, control characters)."""


class AddressError(MailerError, ValueError):
    """An email address or display name is not acceptable; permanent for that row."""


class SubscriberFileError(MailerError, ValueError):
    """A subscriber file cannot be read as a list (encoding, header, quoting)."""


class StoreError(MailerError):
    """The subscriber store cannot be opened or changed as asked."""


class StoreBusy(StoreError):
    """Another command holds the store's write lock; safe to retry once it ends."""


class SubscriberNotFound(StoreError, LookupError):
    """No subscriber with that address."""


class StatusError(StoreError, ValueError):
    """The change would undo an unsubscribe, bounce, complaint or erasure unasked."""


class InvalidToken(MailerError, ValueError):
    """A token that this workspace did not issue, or that was altered."""


class PortInUse(MailerError, OSError):
    """A server cannot listen on the port asked for: taken, or it needs privileges."""


class NotUnderstood(MailerError, ValueError):
    """A queue message that is not an SES notification mailer can act on; left in the queue."""


class QueueError(MailerError):
    """The feedback queue cannot be read or written; safe to retry once the cause is fixed."""


class SendError(MailerError):
    """A message could not be handed to the transport; the subclass says what follows."""


class RetryableSendError(SendError):
    """The provider did not take the message (throttled, 5xx, not connected): safe to retry."""


class Throttled(RetryableSendError):
    """The provider asks us to slow down (SES TooManyRequests, SMTP 454): back off, then retry."""


class PermanentSendError(SendError):
    """The provider refused this recipient or message for good: record it failed, go on."""


class UnknownOutcome(SendError):
    """The answer was lost after the request went out: the message may have been sent.

    Not safe to retry blindly, since the reader could get it twice.
    """


class AccountSendError(SendError):
    """The account cannot send at all (suspended, paused, unverified sender): stop the send."""


class QuotaExceeded(AccountSendError):
    """The 24-hour sending quota is used up: stop now, resume when it refills."""
