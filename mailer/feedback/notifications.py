"""What SES reports about sent mail — bounces, complaints, deliveries, unsubscribes — into the store.

SES publishes its reports to an SNS topic, either as identity notifications
(``notificationType``) or through a configuration set's event publishing
(``eventType``); SNS hands them to an SQS queue, wrapped in its own JSON
envelope unless the subscription uses raw message delivery. `parse` reads
any of these four forms into `Feedback` items, and nothing else: it is pure.

`sync` is the loop around it. Each queue message is parsed, its items are
applied in one store transaction, and only after that commit is the message
deleted from the queue. A run killed in between leaves the message in the
queue; the next run applies it again, and the store, which keys every item
by SES's feedbackId (or messageId) and recipient, recognises it and changes
nothing. A message that cannot be understood is reported and left in the
queue, where the queue's redrive policy moves it to a dead-letter queue
after a few attempts; it never stops the run.

Replies to the ``mailto:`` address of List-Unsubscribe reach the same queue
when an SES receipt rule publishes them to the topic (``Received``
notifications). Their subject carries the reader's token, so they are
honoured exactly like the one-click POST; one without a valid token is kept
for a person to read.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import AddressError, NotUnderstood
from ..store import Feedback
from ..subscribers.addresses import parse_address
from ..tokens import TOKEN_LENGTHS, InvalidToken, Signer

# Events SES publishes that say nothing about whether to keep mailing someone.
IGNORED = frozenset({"Send", "Reject", "Open", "Click", "Rendering Failure", "DeliveryDelay"})
_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])(?:%s)(?![A-Za-z0-9_-])"
                    % "|".join(r"[A-Za-z0-9_-]{%d}" % length for length in TOKEN_LENGTHS))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")



@dataclass(frozen=True)
class Parsed:
    """One queue message read: what kind of report it was, and what it asks of the store."""

    kind: str
    items: list[Feedback]


def parse(body: str, signer: Signer) -> Parsed:
    """The feedback in one queue message body, SNS-wrapped or raw; NotUnderstood if none.

    `signer` checks the tokens of replies to the unsubscribe address: the
    store's (`Store.signer`), so that a token of another store or list is
    not taken for someone of this one.
    """
    data = _json(body, "the message")
    if isinstance(data, dict) and "Type" in data and "Message" in data:
        if data["Type"] == "SubscriptionConfirmation":
            raise NotUnderstood("an SNS subscription confirmation",
                                hint="confirm the subscription in the SNS console")
        if data["Type"] != "Notification" or not isinstance(data["Message"], str):
            raise NotUnderstood(f"an SNS message of type {str(data['Type'])[:40]!r}")
        data = _json(data["Message"], "the SNS Message")
    if not isinstance(data, dict):
        raise NotUnderstood("not a JSON object")
    kind = data.get("eventType") or data.get("notificationType")
    if not isinstance(kind, str):
        raise NotUnderstood("neither eventType nor notificationType: not an SES notification")
    mail = _object(data, "mail")
    message_id = _text(mail, "messageId")
    if kind == "Bounce":
        return Parsed(kind, _bounce(_object(data, "bounce"), message_id))
    if kind == "Complaint":
        return Parsed(kind, _complaint(_object(data, "complaint"), message_id))
    if kind == "Delivery":
        delivery = _object(data, "delivery")
        return Parsed(kind, [
            Feedback(_key("delivery", message_id, email), "delivered", "delivered",
                     _email_key(email), message_id)
            for email in _strings(delivery, "recipients")
        ])
    if kind == "Subscription":
        return Parsed(kind, _subscription(_object(data, "subscription"), mail, message_id))
    if kind == "Received":
        return Parsed(kind, [_reply(mail, message_id, signer)])
    if kind in IGNORED:
        return Parsed(kind, [])
    raise NotUnderstood(f"an SES {kind[:40]!r} notification, which mailer does not know")


def _bounce(bounce: dict, message_id: str) -> list[Feedback]:
    bounce_type = _text(bounce, "bounceType")
    feedback_id = _text(bounce, "feedbackId")
    subtype = str(bounce.get("bounceSubType", ""))
    items = []
    for recipient in _objects(bounce, "bouncedRecipients"):
        email = _text(recipient, "emailAddress")
        detail = recipient.get("diagnosticCode") or recipient.get("status") or ""
        reason = _reason(f"{bounce_type} bounce ({subtype})", detail)
        # Undetermined: SES could not tell; treated like a transient bounce.
        kind = "bounced" if bounce_type == "Permanent" else "transient"
        items.append(Feedback(_key("bounce", feedback_id, email), kind, reason, _email_key(email), message_id))
    return items


def _complaint(complaint: dict, message_id: str) -> list[Feedback]:
    feedback_id = _text(complaint, "feedbackId")
    feedback_type = str(complaint.get("complaintFeedbackType", ""))
    if feedback_type == "not-spam":
        return []  # the reader took it out of the spam folder: the opposite of a complaint
    reason = _reason("complaint", feedback_type or str(complaint.get("userAgent", "")))
    return [
        Feedback(_key("complaint", feedback_id, email), "complained", reason, _email_key(email), message_id)
        for email in (_text(r, "emailAddress") for r in _objects(complaint, "complainedRecipients"))
    ]


def _subscription(subscription: dict, mail: dict, message_id: str) -> list[Feedback]:
    """SES list management: a reader left through SES's own unsubscribe handling."""
    preferences = subscription.get("newTopicPreferences")
    if not isinstance(preferences, dict) or preferences.get("unsubscribeAll") is not True:
        return []  # topic preferences only; mailer has no topics
    when = str(subscription.get("timestamp", ""))
    reason = _reason("unsubscribed through SES", str(subscription.get("source", "")))
    return [
        Feedback(_key("subscription", message_id, when, email), "unsubscribed", reason,
                 _email_key(email), message_id)
        for email in _strings(mail, "destination")
    ]


def _reply(mail: dict, message_id: str, signer: Signer) -> Feedback:
    """A mail to the List-Unsubscribe mailto address: its subject names the reader."""
    headers = mail.get("commonHeaders")
    subject = str(headers.get("subject", "")) if isinstance(headers, dict) else ""
    sender = ", ".join(map(str, headers.get("from", []))) if isinstance(headers, dict) else ""
    for candidate in _TOKEN.findall(subject):
        try:
            claims = signer.verify(candidate)
        except InvalidToken:
            continue
        if claims.subscriber_id:
            return Feedback(_key("received", message_id), "unsubscribed", "reply to the List-Unsubscribe address",
                            subscriber_id=claims.subscriber_id, send_id=claims.send_id)
    raise NotUnderstood(f"a mail to the unsubscribe address without a valid token, from {_clean(sender)[:80]}",
                        hint="read it and unsubscribe the sender by hand if they ask to be")


def _key(*parts: str) -> str:
    """What makes a report the same report when SQS delivers it twice; a hash, so no address is kept."""
    return hashlib.sha256("\0".join(p.lower() for p in parts).encode("utf-8")).hexdigest()


def _email_key(email: str) -> str:
    try:
        return parse_address(email).key
    except AddressError:
        return email.strip().lower()


def _reason(what: str, detail: str) -> str:
    detail = _clean(detail)[:200]
    return f"{what}: {detail}" if detail else what


def _clean(text: str) -> str:
    """Remote servers' words, fit for one line of history."""
    return " ".join(_CONTROL.sub(" ", str(text)).split())


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise NotUnderstood(f"{what} is not JSON") from None


def _object(data: dict, name: str) -> dict:
    value = data.get(name)
    if not isinstance(value, dict):
        raise NotUnderstood(f"no {name!r} object")
    return value


def _objects(data: dict, name: str) -> list[dict]:
    value = data.get(name)
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise NotUnderstood(f"no {name!r} list")
    return value


def _strings(data: dict, name: str) -> list[str]:
    value = data.get(name)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise NotUnderstood(f"no {name!r} list")
    return value


def _text(data: dict, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise NotUnderstood(f"no {name!r}")
    return value
