"""Any SMTP relay, SES's SMTP interface among them.

One connection per worker thread, opened on first use and reused for every
message after. The SMTP dialogue is driven step by step rather than through
``sendmail`` so that a failure can be placed: anything before DATA means the
server did not take the message (safe to retry); a connection lost during
DATA means it may have (unknown).
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import threading

from ...config import SmtpSettings
from ...errors import (
    AccountSendError,
    PermanentSendError,
    RetryableSendError,
    Throttled,
    UnknownOutcome,
)

# Answers that mean "slow down" rather than "not now".
_THROTTLE = {421, 450, 451, 454}


class SmtpTransport:
    """Sends through `settings.host`, one reused connection per thread."""

    name = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.password = os.environ.get(settings.password_env, "") if settings.username else ""
        if settings.username and not self.password:
            raise AccountSendError(
                f"no SMTP password: set the environment variable {settings.password_env}")
        self._local = threading.local()
        self._all: list[smtplib.SMTP] = []
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"smtp ({self.settings.host}:{self.settings.port})"

    def quota(self):
        return None

    def _connection(self) -> smtplib.SMTP:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        s = self.settings
        try:
            conn = connect(s)
            if s.security == "starttls":
                conn.ehlo()
                conn.starttls(context=ssl.create_default_context())
            if s.username:
                conn.login(s.username, self.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise AccountSendError(f"SMTP login refused: {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise AccountSendError(f"SMTP server {s.host}: {exc}",
                                   hint="check [smtp] security") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise RetryableSendError(f"cannot connect to {s.host}:{s.port}: {exc}") from None
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def send(self, raw: bytes, sender: str, recipient: str) -> str:
        conn = self._connection()
        try:
            conn.ehlo_or_helo_if_needed()
            code, answer = conn.mail(sender)
            if code != 250:
                conn.rset()
                raise _refused(code, answer, "sender", sender)
            code, answer = conn.rcpt(recipient)
            if code not in (250, 251):
                conn.rset()
                raise _refused(code, answer, "recipient", recipient)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise RetryableSendError(f"SMTP connection lost before the message was sent: {exc}") from None
        try:
            code, answer = conn.data(raw)
        except smtplib.SMTPDataError as exc:
            conn.rset()
            raise _refused(exc.smtp_code, exc.smtp_error, "message", recipient) from None
        except (smtplib.SMTPServerDisconnected, OSError, socket.timeout) as exc:
            self._drop()
            raise UnknownOutcome(f"SMTP connection lost while sending the message: {exc}") from None
        if code != 250:
            conn.rset()
            raise _refused(code, answer, "message", recipient)
        return _text(answer)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """A connection to the relay, TLS from the first byte when security is "tls"; no login yet."""
    if settings.security == "tls":
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                context=ssl.create_default_context())
    return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)


def _refused(code: int, answer: bytes | str, what: str, value: str):
    message = f"SMTP {code} {_text(answer)}"
    if code in _THROTTLE:
        return Throttled(message)
    if 400 <= code < 500:
        return RetryableSendError(message)
    if what == "sender":
        return AccountSendError(f"the SMTP server refused the sender {value}: {message}")
    return PermanentSendError(message)
