"""A `RenderedIssue` and one recipient to the bytes of a MIME message.

Headers are written here by hand rather than through the ``email`` package's
header registry: Python's own folding has let encoded words smuggle line
breaks into headers (CVE-2024-6923, unfixed before 3.11.10), and a bulk
sender must be certain that nothing a subscriber typed into a name field
can add a header or a recipient. So every value is checked for control
characters, and any text that is not plain ASCII — or merely looks like an
encoded word — is itself encoded as base64 encoded words, which decode back
to exactly the text given and never further.

Building touches no network and no store: pure in, bytes out.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formatdate
from html import escape
from urllib.parse import parse_qs, quote, urlsplit

from ..compose.render import (
    PLACEHOLDER_KEYS,
    PLACEHOLDER_PATTERN,
    Recipient,
    RenderedIssue,
)
from ..config import Settings
from ..errors import HeaderError

CRLF = "\r\n"
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*$")
# An encoded word's payload: 75 characters at most, less "=?utf-8?b?" and "?=".
_WORD_BYTES = 45


@dataclass(frozen=True)
class Envelope:
    """What varies per message besides the recipient: its id and date."""

    message_id: str
    date: str


def new_envelope(settings: Settings, when: datetime | None = None) -> Envelope:
    """A fresh Message-ID on the sender's domain and the current date."""
    unique = f"{int(time.time() * 1000):x}.{secrets.token_hex(8)}"
    date = format_datetime(when) if when else formatdate(localtime=False, usegmt=True)
    return Envelope(f"<{unique}@{settings.sender_domain}>", date)


def check_header_value(value: str, what: str) -> str:
    """`value` unchanged, or HeaderError if it holds CR, LF or another control character."""
    if _CONTROL.search(value):
        raise HeaderError(f"{what} contains a line break or control character; refused")
    return value


def encode_text(value: str, what: str) -> str:
    """Header free text (Subject, a display name): ASCII as is, else encoded words."""
    check_header_value(value, what)
    if value.isascii() and "=?" not in value and len(value) < 900:
        return value
    return _encoded_words(value)


def _encoded_words(value: str) -> str:
    """Base64 encoded words, each within 75 characters, folded one per line."""
    words: list[str] = []
    chunk = b""
    for char in value:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return f"{CRLF} ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


def encode_address(address: str, what: str) -> str:
    """An addr-spec fit for a header: ASCII local part, IDN domain in punycode."""
    check_header_value(address, what)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or " " in address or "<" in address or ">" in address:
        raise HeaderError(f"{what} {address!r} is not an email address")
    if not local.isascii():
        raise HeaderError(f"{what} {address!r} has a non-ASCII local part, which needs SMTPUTF8")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise HeaderError(f"{what} {address!r} has an invalid domain") from None
    return f"{local}@{domain}"


def format_address(name: str, address: str, what: str) -> str:
    """``Display Name <addr>`` with the name quoted or encoded as needed."""
    addr = encode_address(address, what)
    name = check_header_value(name, what).strip()
    if not name:
        return addr
    if name.isascii() and "=?" not in name:
        phrase = name if _ATEXT.match(name) else '"' + re.sub(r'(["\\])', r"\\\1", name) + '"'
    else:
        phrase = _encoded_words(name)
    return f"{phrase} <{addr}>"


def _header(name: str, value: str) -> str:
    """One header field, folded at spaces when an ASCII value is long."""
    line = f"{name}: {value}"
    if len(line) <= 78 or CRLF in value:
        return line
    out, current = [], f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > 78 and current != f"{name}:":
            out.append(current)
            current = ""
        current += " " + word
    out.append(current)
    return CRLF.join(out)


def quoted_printable(text: str) -> bytes:
    """UTF-8 quoted-printable with CRLF line ends and lines of at most 76 octets."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    return b"\r\n".join(map(_fold, encoded.replace(b"\r\n", b"\n").split(b"\n")))


def _fold(line: bytes) -> bytes:
    """One encoded line cut to at most 76 octets with soft line breaks.

    binascii's encoder lets a line ending in whitespace grow past the limit
    (70 letters and five spaces become 77 octets, the last space as ``=20``);
    strict relays and signers reject such lines, so they are cut here, never
    inside an ``=XX`` escape.
    """
    if len(line) <= 76:
        return line
    soft = line.endswith(b"=")
    body = line[:-1] if soft else line
    pieces = []
    while len(body) > (75 if soft else 76):
        cut = 75
        while b"=" in body[cut - 2:cut]:
            cut -= 1
        pieces.append(body[:cut] + b"=")
        body = body[cut:]
    pieces.append(body + (b"=" if soft else b""))
    return b"\r\n".join(pieces)


def list_unsubscribe(settings: Settings, unsubscribe_url: str) -> str:
    """The List-Unsubscribe value: the https URL first, then mailto if configured.

    The mailto's subject carries the same token as the URL, so that `mailer
    sync` can tell whom a reply is from without trusting its From header.
    """
    check_header_value(unsubscribe_url, "unsubscribe URL")
    targets = [f"<{unsubscribe_url}>"]
    if settings.unsubscribe.mailto:
        token = parse_qs(urlsplit(unsubscribe_url).query).get("t", [""])[-1]
        subject = f"unsubscribe%20{quote(token, safe='')}" if token else "unsubscribe"
        targets.append(f"<mailto:{settings.unsubscribe.mailto}?subject={subject}>")
    return ", ".join(targets)


def feedback_id(settings: Settings, campaign: str) -> str:
    """Gmail's Feedback-ID: campaign:list:type:sender, each field a plain token."""
    fields = (campaign, settings.list_id.split(".")[0], "newsletter", settings.sender_domain)
    return ":".join(re.sub(r"[^A-Za-z0-9._-]+", "-", f).strip("-") or "x" for f in fields)


_SOFT_BREAK = b"=" + CRLF.encode("ascii")
_PLACEHOLDER_SPLIT = re.compile(f"({PLACEHOLDER_PATTERN.pattern})")


class _EncodedPart:
    """One body part, quoted-printable encoded once, with holes for the placeholders.

    Literal text between placeholders is encoded ahead of time, each piece
    ending in a soft line break; a value is encoded on its own and dropped
    into its hole, also ending in a soft line break. Soft line breaks vanish
    when decoded, so the result means exactly what encoding the whole
    personalised text would, while no placeholder can ever be split by a
    line break or turned into ``=3D`` by the encoder.
    """

    def __init__(self, content: str, escape_values: bool) -> None:
        self.escape_values = escape_values
        self.pieces: list[bytes | str] = []
        for n, piece in enumerate(_PLACEHOLDER_SPLIT.split(content)):
            if n % 2:
                self.pieces.append(PLACEHOLDER_KEYS[piece])
            elif piece:
                self.pieces.append(_with_soft_break(quoted_printable(piece)))

    def fill(self, values: dict[str, str]) -> list[bytes]:
        out: list[bytes] = []
        for piece in self.pieces:
            if isinstance(piece, bytes):
                out.append(piece)
            else:
                value = values[piece]
                if self.escape_values:
                    value = escape(value)
                if value:
                    out.append(_with_soft_break(quoted_printable(value)))
        return out


def _with_soft_break(encoded: bytes) -> bytes:
    """`encoded` ending in a line break: its own, or a soft one added.

    The encoder's last line may already be 76 octets, the most a line may
    hold, so the soft break then goes a few characters earlier — never
    inside an ``=XX`` escape — and once more at the end.
    """
    if encoded.endswith(b"\r\n"):
        return encoded
    head, crlf, last = encoded.rpartition(b"\r\n")
    if len(last) >= 76:
        cut = 73
        while b"=" in last[cut - 2:cut]:
            cut -= 1
        last = last[:cut] + _SOFT_BREAK + last[cut:]
    return head + crlf + last + _SOFT_BREAK


class MessageTemplate:
    """A rendered issue prepared for many recipients.

    Everything the messages of a send share — From, Subject, List-Id, the
    encoded bodies — is built once here; `build` only adds the recipient's
    own headers and values. This is the path every message takes: the
    ``email`` package's way (`build_message_stdlib`) is about a hundred
    times slower and is kept only as the reference it is tested against.
    """

    def __init__(self, rendered: RenderedIssue, settings: Settings, campaign: str | None = None) -> None:
        self.settings = settings
        self.default_name = settings.newsletter.default_name
        self.boundary = f"=_mailer_{secrets.token_hex(12)}"
        fixed = [_header("From", format_address(settings.from_name, settings.sender.address, "sender"))]
        if settings.sender.reply_to:
            fixed.append(_header("Reply-To", encode_address(settings.sender.reply_to, "reply-to")))
        fixed.append(_header("Subject", encode_text(rendered.subject, "subject")))
        self._fixed = (CRLF.join(fixed) + CRLF).encode("ascii")
        list_name = encode_text(settings.newsletter.name, "newsletter name")
        tail = [
            "MIME-Version: 1.0",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            _header("List-Id", f"{list_name} <{settings.list_id}>"),
            f"Feedback-ID: {feedback_id(settings, campaign or rendered.issue.stem)}",
            f'Content-Type: multipart/alternative; boundary="{self.boundary}"',
        ]
        part = ('Content-Type: {kind}; charset="utf-8"' + CRLF
                + "Content-Transfer-Encoding: quoted-printable" + CRLF + CRLF)
        dash = f"{CRLF}--{self.boundary}{CRLF}"
        self._tail = (CRLF.join(tail) + CRLF).encode("ascii")
        self._text_head = (CRLF + f"--{self.boundary}{CRLF}" + part.format(kind="text/plain")).encode("ascii")
        self._html_head = (dash + part.format(kind="text/html")).encode("ascii")
        self._end = f"{CRLF}--{self.boundary}--{CRLF}".encode("ascii")
        self._text = _EncodedPart(rendered.text, escape_values=False)
        self._html = _EncodedPart(rendered.html, escape_values=True)

    def build(self, recipient: Recipient, envelope: Envelope) -> bytes:
        """The complete message for `recipient`, as bytes ready for SMTP or SES."""
        own = CRLF.join([
            _header("To", format_address(recipient.name, recipient.email, "recipient")),
            f"Date: {envelope.date}",
            f"Message-ID: {envelope.message_id}",
            _header("List-Unsubscribe", list_unsubscribe(self.settings, recipient.unsubscribe_url)),
        ]) + CRLF
        values = recipient.values(self.default_name)
        return b"".join([
            self._fixed, own.encode("ascii"), self._tail, self._text_head,
            *self._text.fill(values), self._html_head, *self._html.fill(values), self._end,
        ])


def build_message_stdlib(
    rendered: RenderedIssue, settings: Settings, recipient: Recipient, envelope: Envelope,
    campaign: str | None = None,
) -> bytes:
    """The same message built with the ``email`` package: the slow reference.

    Never used to send (see the module docstring on header folding); tests
    parse both back and compare them, and bench/ measures the difference.
    """
    html, text = rendered.personalize(recipient, settings.newsletter.default_name)
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = Address(settings.from_name, addr_spec=settings.sender.address)
    if settings.sender.reply_to:
        msg["Reply-To"] = settings.sender.reply_to
    msg["Subject"] = rendered.subject
    msg["To"] = Address(recipient.name, addr_spec=recipient.email)
    msg["Date"] = envelope.date
    msg["Message-ID"] = envelope.message_id
    msg["List-Unsubscribe"] = list_unsubscribe(settings, recipient.unsubscribe_url)
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Id"] = f"{settings.newsletter.name} <{settings.list_id}>"
    msg["Feedback-ID"] = feedback_id(settings, campaign or rendered.issue.stem)
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg.as_bytes()
