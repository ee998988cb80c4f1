"""The unsubscribe URL: https, on a name readers can reach, and (with --online) answering.

Mailbox providers show one-click unsubscribe only for an https URL, and a
reader whose link goes nowhere marks the mail as spam instead.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from ..tokens import unsubscribe_url
from .report import Check, ok, problem, warning

# Names that never reach a reader (RFC 2606, RFC 6761), and this machine.
_PLACEHOLDERS = ("example.com", "example.org", "example.net", "example", "test", "invalid", "localhost")
_LOCAL = ("127.0.0.1", "::1")
DUMMY_TOKEN = "doctor-check"


def url(address: str, *, delivering: bool) -> Check:
    """Not a placeholder host; a placeholder is a problem only where mail is delivered.

    That it is https, the settings already refuse to load otherwise.
    """
    host = (urlsplit(address).hostname or "").lower()
    if host in _LOCAL or any(host == p or host.endswith("." + p) for p in _PLACEHOLDERS):
        found = problem if delivering else warning
        return found("unsubscribe", f"{address} is a placeholder no reader can reach",
                     "set [unsubscribe] url to your unsubscribe page")
    return ok("unsubscribe", f"{address} is https")


def online(address: str, timeout: float = 10) -> Check:
    """A GET with a dummy token gets an HTTP answer (a 400 for the token is an answer)."""
    probe = unsubscribe_url(address, DUMMY_TOKEN)
    try:
        with urllib.request.urlopen(probe, timeout=timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return problem("unsubscribe-online", f"{address} does not answer: {reason}",
                       "start `mailer serve` behind the https proxy that URL names")
    if status >= 500:
        return problem("unsubscribe-online", f"{address} answers HTTP {status}", "see the server's log")
    return ok("unsubscribe-online", f"{address} answers (HTTP {status} for a dummy token)")
