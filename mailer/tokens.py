"""Signed unsubscribe tokens, and the secret that signs them.

A token names one subscriber and the send it came with, and carries an
HMAC-SHA256 tag, so nobody can make one for someone else. Subscriber ids
only mean someone within one store, and start again in a new one: a store
moved away and its export imported again, or a second workspace sharing
``MAILER_SECRET``, would otherwise take an old link for somebody else. So
the tag also covers the store's own random id (made with the store, see
`store.facts`) and the list's id (``settings.list_id``); a token of another
store or another list does not verify. Nothing of either is in the token:
the store and the settings supply them when it is checked.

Version 2, issued now: version byte, subscriber id (4 bytes), send id
(3 bytes), the first 16 bytes of the tag, in unpadded base64url: 32
characters, with no spare bits. The token of a test message names
subscriber 0 and is bound to the list alone (a test send needs no store),
since it names nobody.

Version 1, issued before stores had an id: version byte, subscriber id (8
bytes), send id (4 bytes), tag over those alone: 39 characters. Links in
mail already sent must keep working, but only where they were issued: a
store migrated from before version 2 records the last send it made then
(`Signer.v1_through_send`), and accepts a version-1 token of that send or
an earlier one. A store made since records none and refuses every
version-1 token, and so does a migrated store for a send made after its
migration. (A store replaced before this rule existed cannot be told
from the one it replaced.)

A token is accepted only if it is exactly the string this module would
issue for its contents: no padding, no stray characters, no non-zero spare
bits, so a mangled link never turns into a valid one. Tags are compared in
constant time.

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

from .errors import InvalidToken, MailerError, os_reason

VERSION = 2
_TAG_BYTES = 16
_DOMAIN = b"mailer-unsubscribe\x00"
# (version, subscriber id bytes, send id bytes) by the length of the token.
_LAYOUTS = {32: (2, 4, 3), 39: (1, 8, 4)}
TOKEN_LENGTH = 32
TOKEN_LENGTHS = tuple(sorted(_LAYOUTS))
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
SECRET_ENV = "MAILER_SECRET"
SECRET_FILE = "secret.key"
_MIN_SECRET_BYTES = 16


@dataclass(frozen=True)
class TokenClaims:
    """Who a valid token speaks for."""

    subscriber_id: int
    send_id: int


@dataclass(frozen=True)
class Signer:
    """Issues and checks the tokens of one store and one list.

    Make one with `Store.signer`, which reads the store's facts, and keep it
    no longer than the connection it came from: the file at the store's path
    may be another store by the next request (`mailer serve` makes a new
    connection, and signer, when the file changes).
    """

    secret: bytes
    store_id: str
    list_id: str
    # The last send whose version-1 tokens this store issued; None: it issued none.
    v1_through_send: int | None = None

    def issue(self, subscriber_id: int, send_id: int = 0) -> str:
        """The token for `subscriber_id` in send `send_id` (0 for none)."""
        _, id_bytes, send_bytes = _LAYOUTS[TOKEN_LENGTH]
        if not (0 <= subscriber_id < 1 << 8 * id_bytes and 0 <= send_id < 1 << 8 * send_bytes):
            raise MailerError(f"subscriber {subscriber_id} of send {send_id} does not fit in an "
                              "unsubscribe token", hint="report this: the store has outgrown the token")
        body = (bytes([VERSION]) + subscriber_id.to_bytes(id_bytes, "big")
                + send_id.to_bytes(send_bytes, "big"))
        return _encode(body + self._tag(body, subscriber_id))

    def verify(self, token: object) -> TokenClaims:
        """The claims of `token`, or InvalidToken if this store and list did not issue exactly it."""
        raw = _decode(token)
        version, id_bytes, send_bytes = _LAYOUTS[len(token)]  # type: ignore[arg-type]
        body, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        claims = TokenClaims(int.from_bytes(body[1:1 + id_bytes], "big"),
                             int.from_bytes(body[1 + id_bytes:], "big"))
        expected = self._tag(body, claims.subscriber_id) if version == VERSION else _v1_tag(self.secret, body)
        if not hmac.compare_digest(expected, tag) or body[0] != version:
            raise InvalidToken("unsubscribe token does not verify")
        if version == 1 and (self.v1_through_send is None or claims.send_id > self.v1_through_send):
            raise InvalidToken("unsubscribe token of an earlier store")
        return claims

    def _tag(self, body: bytes, subscriber_id: int) -> bytes:
        # A test token names nobody, so the store it came from does not matter.
        store_id = self.store_id if subscriber_id else ""
        bound = b"%s\x00%s\x00%s" % (body, store_id.encode("ascii"), self.list_id.encode("utf-8"))
        return hmac.new(self.secret, _DOMAIN + bound, hashlib.sha256).digest()[:_TAG_BYTES]


def issue_test_token(secret: bytes, list_id: str) -> str:
    """The token of a test message (`send-issue --to`): subscriber 0, no send, no store."""
    return Signer(secret, "", list_id).issue(0, 0)


def well_formed(token: object) -> bool:
    """Whether `token` has the shape of a token at all: checked before opening the store."""
    try:
        _decode(token)
    except InvalidToken:
        return False
    return True


def _v1_tag(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + body, hashlib.sha256).digest()[:_TAG_BYTES]


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(token: object) -> bytes:
    """The bytes of a token of a known length, written exactly as `_encode` writes them."""
    if (not isinstance(token, str) or len(token) not in _LAYOUTS or not token.isascii()
            or not _ALPHABET.fullmatch(token)):
        raise InvalidToken("malformed unsubscribe token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed unsubscribe token") from None
    if not hmac.compare_digest(_encode(raw), token):
        raise InvalidToken("malformed unsubscribe token")
    return raw


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
        raise MailerError(f"cannot create the signing secret: {os_reason(exc)}", path=path) from None
    finally:
        tmp.unlink(missing_ok=True)


def _read_secret(path: Path) -> bytes:
    try:
        secret = path.read_text(encoding="ascii").strip().encode("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else "not ASCII"
        raise MailerError(f"cannot read the signing secret: {reason}", path=path) from None
    if len(secret) < _MIN_SECRET_BYTES:
        raise MailerError("the signing secret is too short", path=path,
                          hint=f"delete it to have a new one made, or set {SECRET_ENV}")
    return secret


def unsubscribe_url(base: str, token: str) -> str:
    """`base` with the token as its ``t`` query parameter."""
    return f"{base}{'&' if '?' in base else '?'}t={token}"
