"""Mailboxes: an email address made canonical, and a display name made safe.

Addresses are checked for syntax by email-validator, without DNS: an import
of a list must not depend on the network, and a domain that does not resolve
today may tomorrow. What we keep, and what we compare:

- ``Address.email`` is the address to send to, as email-validator normalises
  it: the domain in lower case and, when internationalised, in its Unicode
  form (``bücher.example``, also when given as ``xn--bcher-kva.example``);
  the local part keeps the case it was given in, because RFC 5321 lets a
  mail server treat ``Ann`` and ``ann`` as different mailboxes.
- ``Address.key`` is what makes two addresses the same subscriber: the local
  part lower-cased and the domain in its ASCII (IDNA) form. No real mail
  system hands ``Ann@`` and ``ann@`` to different people, and a list that
  holds both mails one person twice. So comparisons ignore case, and the
  first spelling seen is the one kept.

Names come from CSV files and web forms and end up in a From/To header and
in HTML, so they are cleaned of line breaks, control characters and the
invisible formatting characters (bidi overrides, zero-width spaces) that
make one name display as another.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from ..errors import AddressError

NAME_MAX_LENGTH = 200

# An ASCII address that email-validator accepts and hands back with only its
# domain lower-cased. Importing a million rows spends most of its time in
# email-validator (about 25 µs an address), so these common addresses take a
# short cut; tests check that the short cut agrees with email-validator.
_ATEXT = r"A-Za-z0-9_!#$%&'*+\-/=?^`{|}~"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z])?"
_PLAIN = re.compile(
    rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@((?:{_LABEL}\.)+{_TLD})"
)
_SPECIAL_SUFFIXES = tuple(f".{name}" for name in SPECIAL_USE_DOMAIN_NAMES)
_SPECIAL_LOCAL = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)

# "Ann Lee <ann@example.com>", as mail clients copy an address.
_NAME_ADDR = re.compile(r"\s*(.*?)\s*<([^<>]*)>\s*")

# Format characters that only steer display; kept: ZWNJ and ZWJ, which
# Persian, Indic scripts and emoji sequences need.
_KEEP_FORMAT = frozenset("\u200c\u200d")


@dataclass(frozen=True)
class Address:
    """A valid address: `email` to send to, `key` to compare by."""

    email: str
    key: str

    @property
    def ascii_email(self) -> str:
        """The address with its domain in IDNA form, for transports without SMTPUTF8."""
        return f"{self.email.rpartition('@')[0]}@{self.key.rpartition('@')[2]}"


# Why an address no transport of mailer can deliver to is skipped. A
# non-ASCII local part ("josé@…") is only deliverable with SMTPUTF8, which
# SES does not offer and the message headers mailer writes do not use.
SMTPUTF8_REASON = "the part before @ is not ASCII, which needs SMTPUTF8 (SES and mailer cannot send it)"


def unsendable_reason(email: str) -> str:
    """Why mail cannot be sent to `email` although it is a valid address; '' if it can."""
    if email.isascii() or email.rpartition("@")[0].isascii():
        return ""
    return SMTPUTF8_REASON


def parse_address(text: str) -> Address:
    """Validate and normalise one address, or raise `AddressError` saying why.

    Surrounding spaces are ignored; anything else that is not part of a valid
    address (a display name, an invisible character) is an error, because
    guessing what someone meant sends mail to the wrong person.
    """
    return Address(*email_and_key(text))


def email_and_key(text: str) -> tuple[str, str]:
    """What `parse_address` gives, as the pair (email, key) without building an `Address`.

    For imports, which check a million addresses and only store the two strings.
    """
    text = text.strip()
    match = _PLAIN.fullmatch(text)
    if match is not None and len(text) <= 254:
        local, domain = match.groups()
        lowered = local.lower()
        if len(local) <= 64 and "--" not in domain and lowered not in _SPECIAL_LOCAL:
            domain = domain.lower()
            if not domain.endswith(_SPECIAL_SUFFIXES):
                return f"{local}@{domain}", f"{lowered}@{domain}"
    if not text:
        raise AddressError("no address")
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise AddressError(f"{_show(text)} is not a valid address: {exc}") from None
    return valid.normalized, f"{valid.local_part.lower()}@{valid.ascii_domain.lower()}"


def split_name_address(text: str) -> tuple[str, str]:
    """Split ``Ann Lee <ann@example.com>`` into name and address; else ('', text)."""
    match = _NAME_ADDR.fullmatch(text) if "<" in text else None
    if match is None:
        return "", text
    return match.group(1).strip('"').strip(), match.group(2)


def clean_name(text: str) -> str:
    """A display name fit for a header and a page, or `AddressError` if too long.

    Line breaks, tabs and other control characters become spaces; bidi
    overrides, zero-width spaces, byte-order marks and soft hyphens are
    dropped; runs of spaces become one.
    """
    # isprintable() is false for every character _name_char changes (controls,
    # format characters, separators other than space), so most names skip it.
    if not text.isprintable():
        text = "".join(_name_char(ch) for ch in text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    text = " ".join(text.split())
    if len(text) > NAME_MAX_LENGTH:
        raise AddressError(f"name is longer than {NAME_MAX_LENGTH} characters")
    return text


def join_name(first: str, last: str) -> str:
    """First and last name as one; family name first and no space for CJK names."""
    first, last = first.strip(), last.strip()
    if not (first and last):
        return first or last
    if _is_cjk(first) and _is_cjk(last):
        return f"{last}{first}"
    return f"{first} {last}"


def _name_char(ch: str) -> str:
    category = unicodedata.category(ch)
    if category in ("Cc", "Zl", "Zp"):
        return " "
    if category in ("Cf", "Co", "Cs", "Cn") and ch not in _KEEP_FORMAT:
        return ""
    return ch


_CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]+")


def _is_cjk(text: str) -> bool:
    return not text.isascii() and _CJK.fullmatch(text) is not None


def _show(text: str) -> str:
    """Quote `text` for a message, with invisible characters spelt out."""
    shown = "".join(
        ch if ch.isprintable() and unicodedata.category(ch) != "Cf" else f"\\u{ord(ch):04x}"
        for ch in text[:80]
    )
    return f"'{shown}{'…' if len(text) > 80 else ''}'"
