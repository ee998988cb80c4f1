"""Typed settings read from a workspace's ``newsletter.toml``.

Each table of the file is a frozen dataclass below, and each field carries
the sentence that documents it. Loading is strict: an unknown key or table is
an error that lists the allowed ones, because a misspelt setting silently
falling back to its default is how a newsletter goes out with the wrong
sender.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_NAME = "newsletter.toml"

_ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def doc(text: str, default: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    """A dataclass field whose documentation travels with it."""
    if default is dataclasses.MISSING and "default_factory" not in kwargs:
        return field(metadata={"doc": text}, **kwargs)
    return field(default=default, metadata={"doc": text}, **kwargs)


@dataclass(frozen=True)
class NewsletterSettings:
    """[newsletter]: what the list is called and who stands behind it."""

    name: str = doc("The newsletter's name: footer, List-Id and the default sender name.")
    language: str = doc("BCP 47 language of the issues, e.g. 'zh-CN'; sets <html lang>.", "en")
    site_url: str = doc("The newsletter's web home, linked from the footer.", "")
    postal_address: str = doc("Postal address of the sender, required in the footer by CAN-SPAM.", "")
    list_id: str = doc("List-Id identifier; defaults to a slug of the name at the sender's domain.", "")
    default_name: str = doc("What {{ recipient.name }} becomes for a subscriber with no name.", "")


@dataclass(frozen=True)
class SenderSettings:
    """[sender]: the From and Reply-To of every message."""

    address: str = doc("Sender address; SES must have it (or its domain) verified.")
    name: str = doc("Display name in From; defaults to the newsletter's name.", "")
    reply_to: str = doc("Reply-To address, if replies should go elsewhere.", "")


@dataclass(frozen=True)
class UnsubscribeSettings:
    """[unsubscribe]: where readers leave the list."""

    url: str = doc("https URL of the unsubscribe page; each message appends its own token.")
    mailto: str = doc("Address for mail-based unsubscribes in List-Unsubscribe, if any.", "")


@dataclass(frozen=True)
class ComposeSettings:
    """[compose]: how issues become email."""

    issues: str = doc("Folder of the issue files, relative to the workspace.", "issues")
    templates: str = doc("Folder of the templates, relative to the workspace.", "templates")
    text_width: int = doc("Columns of the plain-text part (CJK characters count two).", 72)


TRANSPORT_KINDS = ("outbox", "ses", "smtp")
SMTP_SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True)
class TransportSettings:
    """[transport]: how messages leave, and how fast."""

    kind: str = doc("One of outbox (write .eml files), ses, smtp.", "outbox")
    rate: float = doc("Messages per second; 0 means SES's MaxSendRate on ses, 10 otherwise.", 0.0)
    concurrency: int = doc("Messages in flight at once (threads, connections).", 4)
    max_failures: int = doc("Failures in a row that pause a send, so a broken setup stops early.", 50)


@dataclass(frozen=True)
class SesSettings:
    """[ses]: Amazon SES, through boto3 and the standard AWS credential chain."""

    region: str = doc("AWS region, e.g. eu-west-1; default: the AWS configuration's.", "")
    profile: str = doc("AWS profile name; default: the standard credential chain.", "")
    configuration_set: str = doc("SES configuration set for event publishing (bounces, complaints).", "")


@dataclass(frozen=True)
class SmtpSettings:
    """[smtp]: any SMTP relay, SES's SMTP interface included."""

    host: str = doc("SMTP server name.", "localhost")
    port: int = doc("SMTP port: 587 for STARTTLS, 465 for TLS, 25 for neither.", 587)
    security: str = doc("starttls, tls, or none.", "starttls")
    username: str = doc("Login name; empty for no login.", "")
    password_env: str = doc("Environment variable holding the password.", "MAILER_SMTP_PASSWORD")
    timeout: float = doc("Seconds to wait for the server before giving up on a message.", 30.0)


@dataclass(frozen=True)
class FeedbackSettings:
    """[feedback]: bounces, complaints and unsubscribes coming back from SES (`mailer sync`)."""

    queue_url: str = doc("URL of the SQS queue SES's notifications reach through SNS.", "")
    transient_bounce_limit: int = doc(
        "Transient (soft) bounces in a row, with no delivery between, that mark an address bounced.", 3)


@dataclass(frozen=True)
class Settings:
    """Everything in newsletter.toml."""

    newsletter: NewsletterSettings
    sender: SenderSettings
    unsubscribe: UnsubscribeSettings
    compose: ComposeSettings = doc("", default_factory=ComposeSettings)
    transport: TransportSettings = doc("", default_factory=TransportSettings)
    ses: SesSettings = doc("", default_factory=SesSettings)
    smtp: SmtpSettings = doc("", default_factory=SmtpSettings)
    feedback: FeedbackSettings = doc("", default_factory=FeedbackSettings)
    vars: dict = doc("[vars]: free values handed to the templates as `vars`.", default_factory=dict)

    @property
    def sender_domain(self) -> str:
        """The domain part of the sender address: Message-IDs and List-Id live there."""
        return self.sender.address.rpartition("@")[2].lower()

    @property
    def from_name(self) -> str:
        return self.sender.name or self.newsletter.name

    @property
    def list_id(self) -> str:
        """The List-Id identifier (RFC 2919): explicit, or slug.sender-domain."""
        if self.newsletter.list_id:
            return self.newsletter.list_id
        slug = re.sub(r"[^a-z0-9]+", "-", self.newsletter.name.lower()).strip("-")
        return f"{slug or 'newsletter'}.{self.sender_domain}"


def load_settings(path: Path) -> Settings:
    """Read and validate ``newsletter.toml`` at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=path) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=path, hint="save it as UTF-8") from None
    return parse_settings(text, path)


def parse_settings(text: str, path: Path | None = None) -> Settings:
    """Validate the text of a ``newsletter.toml``; errors name `path` when given.

    Also what `mailer init` checks its answers with, so that a bad answer
    gets the very error the file would.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        raise ConfigError(f"invalid TOML: {exc}", path=path, line=line) from None
    settings = _build(Settings, raw, "", path)
    _validate(settings, path)
    return settings


def _toml_error_line(message: str) -> int | None:
    match = re.search(r"at line (\d+)", message)
    return int(match.group(1)) if match else None


def _build(cls: type, table: Any, where: str, path: Path) -> Any:
    """Turn one TOML table into `cls`, refusing unknown keys and wrong types."""
    label = f"[{where}]" if where else "the top level"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table like [{where}]", path=path)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in {label}; expected one of {sorted(fields)}",
            path=path,
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                if dataclasses.is_dataclass(hints[name]):
                    values[name] = _build(hints[name], {}, key, path)
                    continue
                raise ConfigError(f"missing required setting {key}", path=path)
            continue
        values[name] = _convert(hints[name], table[name], key, path)
    return cls(**values)


def _convert(kind: Any, value: Any, key: str, path: Path) -> Any:
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, key, path)
    origin = typing.get_origin(kind) or kind
    if origin is types.UnionType:
        origin = typing.get_args(kind)[0]
    if origin in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {value!r}", path=path)
    if origin is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, origin):
        expected = {str: "a string", int: "a whole number", float: "a number", dict: "a table",
                    bool: "true or false"}
        raise ConfigError(
            f"{key} must be {expected.get(origin, origin.__name__)}, got {value!r}", path=path
        )
    return value


def _validate(settings: Settings, path: Path) -> None:
    """Checks across fields, each naming the setting and what is allowed."""
    if not settings.newsletter.name.strip():
        raise ConfigError("newsletter.name must not be empty", path=path)
    if not _LANGUAGE.match(settings.newsletter.language):
        raise ConfigError(
            f"newsletter.language must be a language tag like 'en' or 'zh-CN', "
            f"got {settings.newsletter.language!r}",
            path=path,
        )
    for key, value in (
        ("sender.address", settings.sender.address),
        ("sender.reply_to", settings.sender.reply_to),
        ("unsubscribe.mailto", settings.unsubscribe.mailto),
    ):
        if value and not _ADDRESS.match(value):
            raise ConfigError(f"{key} must be an email address, got {value!r}", path=path)
    if not settings.unsubscribe.url.startswith("https://"):
        raise ConfigError(
            f"unsubscribe.url must be an https:// URL (mailbox providers require it), "
            f"got {settings.unsubscribe.url!r}",
            path=path,
        )
    if settings.transport.kind not in TRANSPORT_KINDS:
        raise ConfigError(
            f"transport.kind must be one of {list(TRANSPORT_KINDS)}, got {settings.transport.kind!r}",
            path=path,
        )
    if settings.transport.rate < 0:
        raise ConfigError(f"transport.rate must be 0 (automatic) or more, got {settings.transport.rate}",
                          path=path)
    if not 1 <= settings.transport.concurrency <= 64:
        raise ConfigError(
            f"transport.concurrency must be between 1 and 64, got {settings.transport.concurrency}",
            path=path)
    if settings.transport.max_failures < 1:
        raise ConfigError(f"transport.max_failures must be at least 1, got {settings.transport.max_failures}",
                          path=path)
    if settings.feedback.transient_bounce_limit < 1:
        raise ConfigError(
            f"feedback.transient_bounce_limit must be at least 1, got {settings.feedback.transient_bounce_limit}",
            path=path)
    if settings.feedback.queue_url and not re.match(r"^https?://[^/\s]+/[^\s]+$", settings.feedback.queue_url):
        raise ConfigError(
            "feedback.queue_url must be an SQS queue URL like "
            f"https://sqs.eu-west-1.amazonaws.com/123456789012/ses-feedback, got {settings.feedback.queue_url!r}",
            path=path)
    if settings.smtp.security not in SMTP_SECURITY:
        raise ConfigError(
            f"smtp.security must be one of {list(SMTP_SECURITY)}, got {settings.smtp.security!r}", path=path)
    if not 40 <= settings.compose.text_width <= 200:
        raise ConfigError(
            f"compose.text_width must be between 40 and 200, got {settings.compose.text_width}",
            path=path,
        )
    for key, value in vars(settings.newsletter).items():
        if isinstance(value, str) and ("\r" in value or "\n" in value) and key != "postal_address":
            raise ConfigError(f"newsletter.{key} must be on one line", path=path)
    for key, value in vars(settings.sender).items():
        if "\r" in value or "\n" in value:
            raise ConfigError(f"sender.{key} must be on one line", path=path)
