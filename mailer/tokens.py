"""Signed unsubscribe tokens, and the secret that signs them.

A token names one subscriber and the send it came with, and carries an
HMAC-SHA256 tag over both, so nobody can make one for someone else. The
format is fixed-length and canonical: version byte, subscriber id (8
bytes), send id (4 bytes) and the first 16 bytes of the tag, in unpadded
base64url — 39 characters. A token is accepted only if it is exactly the
string this module would issue for its contents: no padding, no stray
characters, no non-zero spare bits, so a mangled link never turns into a
valid one. Tags are compared in constant time.

The secret comes from ``MAILER_SECRET`` or from ``subscribers/secret.key``
in the workspace, generated on first use with mode 0600. It never appears in
a message, a page, a log line or an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidToken, MailerError

VERSION = 1
_TAG_BYTES = 16
_RAW_BYTES = 1 + 8 + 4 + _TAG_BYTES
TOKEN_LENGTH = 39
_ALPHABET = re.compile(r"^[A-Za-z0-9_-]{%d}$" % TOKEN_LENGTH)
SECRET_ENV = "MAILER_SECRET"
SECRET_FILE = "secret.key"
_MIN_SECRET_BYTES = 16



@dataclass(frozen=True)
class TokenClaims:
    """Who a valid token speaks for."""

    subscriber_id: int
    send_id: int


def _tag(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, b"mailer-unsubscribe\x00" + body, hashlib.sha256).digest()[:_TAG_BYTES]


def issue_token(secret: bytes, subscriber_id: int, send_id: int = 0) -> str:
    """The token for `subscriber_id` in send `send_id` (0 for none)."""
    body = bytes([VERSION]) + subscriber_id.to_bytes(8, "big") + send_id.to_bytes(4, "big")
    raw = body + _tag(secret, body)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def verify_token(secret: bytes, token: object) -> TokenClaims:
    """The claims of `token`, or InvalidToken if it is not exactly one we issued."""
    if not isinstance(token, str) or not token.isascii() or not _ALPHABET.match(token):
        raise InvalidToken("malformed unsubscribe token")
    try:
        raw = base64.urlsafe_b64decode(token + "=")
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed unsubscribe token") from None
    canonical = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    if len(raw) != _RAW_BYTES or not hmac.compare_digest(canonical, token):
        raise InvalidToken("malformed unsubscribe token")
    body, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    if not hmac.compare_digest(_tag(secret, body), tag) or body[0] != VERSION:
        raise InvalidToken("unsubscribe token does not verify")
    return TokenClaims(int.from_bytes(body[1:9], "big"), int.from_bytes(body[9:13], "big"))


def load_secret(folder: Path) -> bytes:
    """The signing secret: ``MAILER_SECRET``, else `folder`/secret.key, made once."""
    given = os.environ.get(SECRET_ENV)
    if given is not None:
        if len(given.encode("utf-8")) < _MIN_SECRET_BYTES:
            raise MailerError(f"{SECRET_ENV} is too short; use at least {_MIN_SECRET_BYTES} random characters")
        return given.encode("utf-8")
    path = folder / SECRET_FILE
    if not path.exists():
        _create_secret(path)
    return _read_secret(path)


def _create_secret(path: Path) -> None:
    """Write a new secret, atomically: a second process racing us keeps ours or its own."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        os.link(tmp, path)  # fails if another process got there first
    except FileExistsError:
        pass
    except OSError as exc:
        raise MailerError(f"cannot create the signing secret: {exc.strerror}", path=path) from None
    finally:
        tmp.unlink(missing_ok=True)


def _read_secret(path: Path) -> bytes:
    try:
        secret = path.read_text(encoding="ascii").strip().encode("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII"
        raise MailerError(f"cannot read the signing secret: {reason}", path=path) from None
    if len(secret) < _MIN_SECRET_BYTES:
        raise MailerError("the signing secret is too short", path=path,
                          hint=f"delete it to have a new one made, or set {SECRET_ENV}")
    return secret


def unsubscribe_url(base: str, token: str) -> str:
    """`base` with the token as its ``t`` query parameter."""
    return f"{base}{'&' if '?' in base else '?'}t={token}"
