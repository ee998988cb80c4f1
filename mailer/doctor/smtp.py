"""SMTP: the relay answers, TLS starts as `[smtp] security` says, and the login works.

Connects with the SMTP transport's own `connect` (the system's trusted
certificates, the same timeout), then takes each step itself so that each
gets its line; says QUIT and sends nothing.
"""

from __future__ import annotations

import os
import smtplib
import ssl

from ..config import SmtpSettings
from ..send.transports.smtp import connect
from .report import Check, ok, problem, warning


def _text(answer: bytes | str) -> str:
    return " ".join((answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer).split())


def checks(settings: SmtpSettings) -> list[Check]:
    """Connection, TLS and login, each its own line; a failure stops the ones after it."""
    where = f"{settings.host}:{settings.port}"
    try:
        conn = connect(settings)
    except ssl.SSLError as exc:
        return [problem("smtp", f"TLS to {where} failed: {exc.reason or exc}",
                        "port 465 speaks TLS; for 587 set [smtp] security = \"starttls\"")]
    except (OSError, smtplib.SMTPException) as exc:
        return [problem("smtp", f"cannot connect to {where}: {_text(str(exc))}",
                        "check [smtp] host and port, and that the network allows it")]
    try:
        return [ok("smtp", f"connected to {where}"), *_secure_and_login(conn, settings)]
    finally:
        try:
            conn.quit()
        except (OSError, smtplib.SMTPException):
            conn.close()


def _secure_and_login(conn: smtplib.SMTP, settings: SmtpSettings) -> list[Check]:
    found: list[Check] = []
    try:
        conn.ehlo()
        if settings.security == "starttls":
            if not conn.has_extn("starttls"):
                return [problem("smtp-tls", f"{settings.host} does not offer STARTTLS",
                                "use port 465 with security = \"tls\", or a relay that encrypts")]
            conn.starttls(context=ssl.create_default_context())
            conn.ehlo()
            found.append(ok("smtp-tls", "STARTTLS: the connection is encrypted"))
        elif settings.security == "tls":
            found.append(ok("smtp-tls", "TLS from the first byte"))
        else:
            found.append(warning("smtp-tls", "security = \"none\": the password and every message cross "
                                             "the network unencrypted", "use starttls or tls"))
    except ssl.SSLError as exc:
        return [problem("smtp-tls", f"STARTTLS failed: {exc.reason or exc}",
                        "the server's certificate must be valid for [smtp] host")]
    except (OSError, smtplib.SMTPException) as exc:
        return [problem("smtp-tls", f"the server broke off: {_text(str(exc))}")]
    found.append(_login(conn, settings))
    return found


def _login(conn: smtplib.SMTP, settings: SmtpSettings) -> Check:
    if not settings.username:
        return ok("smtp-login", "no [smtp] username: sending without a login")
    password = os.environ.get(settings.password_env, "")
    if not password:
        return problem("smtp-login", f"the environment variable {settings.password_env} is not set",
                       f"export {settings.password_env} with the SMTP password")
    try:
        conn.login(settings.username, password)
    except smtplib.SMTPAuthenticationError as exc:
        return problem("smtp-login", f"the server refused the login of {settings.username!r}: "
                                     f"{exc.smtp_code} {_text(exc.smtp_error)}",
                       f"check [smtp] username and {settings.password_env}")
    except smtplib.SMTPNotSupportedError:
        return problem("smtp-login", "the server offers no login (AUTH) here",
                       "most servers offer it only after STARTTLS")
    except (OSError, smtplib.SMTPException) as exc:
        return problem("smtp-login", f"login failed: {_text(str(exc))}")
    return ok("smtp-login", f"logged in as {settings.username!r}")
