"""What came back from readers and mailbox providers: unsubscribes by token,
bounces, complaints and deliveries, applied once each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .connection import now
from .subscribers import STRENGTH, Subscriber, SubscriberQueries

# What became of a sent message, weakest first: a later, stronger report wins
# (a message can be delivered and then complained about, never the reverse).
FEEDBACK_KINDS = ("delivered", "transient", "unsubscribed", "bounced", "complained")
_FEEDBACK_RANK = {kind: rank for rank, kind in enumerate(("", *FEEDBACK_KINDS))}


class Feedback(NamedTuple):
    """One thing a reader or a mailbox provider told us, as mailer.feedback hands it over.

    The store finds whom it concerns: the ledger row of `message_id` (the SES
    MessageId), else the token's `subscriber_id` and `send_id`, else the
    subscriber with `email_key`.
    """

    key: str
    kind: str  # one of FEEDBACK_KINDS
    reason: str
    email_key: str = ""
    message_id: str = ""
    subscriber_id: int = 0
    send_id: int = 0


class FeedbackQueries(SubscriberQueries):
    """The feedback table, and the subscriber and delivery changes feedback makes."""

    def unsubscribe_by_id(
        self, subscriber_id: int, send_id: int, *, reason: str, actor: str,
    ) -> tuple[bool, Subscriber | None]:
        """Unsubscribe the reader a token names; (False, …) if they already were not active.

        Repeating it changes nothing, so a mail client that posts the
        one-click request twice, or a reader who clicks again, is harmless.
        A bounce or complaint is kept: it says more than an unsubscribe.
        """
        with self._write() as db:
            changed, current = self._switch_status(
                subscriber_id, "active", "unsubscribed", "unsubscribed", reason, actor)
            if changed:
                row = db.execute(
                    "SELECT id, feedback FROM deliveries WHERE send_id = ? AND subscriber_id = ?",
                    (send_id, subscriber_id)).fetchone()
                if row is not None:
                    self._mark_delivery(row[0], row[1], "unsubscribed")
            return changed, current

    def resubscribe_by_id(self, subscriber_id: int, *, reason: str, actor: str) -> tuple[bool, Subscriber | None]:
        """Undo an unsubscribe for the reader a token names; never a bounce or complaint."""
        with self._write():
            return self._switch_status(subscriber_id, "unsubscribed", "active", "resubscribed", reason, actor)

    def _switch_status(
        self, subscriber_id: int, was: str, becomes: str, event: str, reason: str, actor: str,
    ) -> tuple[bool, Subscriber | None]:
        """Inside a write: move `subscriber_id` from status `was` to `becomes`, recording
        `event`; (False, as they are) when they are not `was`."""
        current = self.subscriber_by_id(subscriber_id)
        if current is None or current.status != was:
            return False, current
        when = now()
        self._db.execute("UPDATE subscribers SET status = ?, updated_at = ? WHERE id = ?",
                         (becomes, when, subscriber_id))
        self._event(subscriber_id, event, when, reason, actor)
        return True, self.subscriber_by_id(subscriber_id)

    def apply_feedback(self, items: Iterable[Feedback], *, actor: str, transient_limit: int) -> list[str]:
        """Apply `items` in one transaction; say what each did.

        Outcomes: 'applied' (the subscriber's status changed), 'counted' (a
        transient bounce below `transient_limit`, or a report that changed no
        status), 'delivered', 'duplicate' (its key was applied before) and
        'nobody' (it concerns no subscriber of this list). Every item but a
        duplicate is remembered by its key, so applying the same items again
        does nothing.
        """
        when = now()
        outcomes = []
        with self._write() as db:
            for item in items:
                if item.kind not in FEEDBACK_KINDS:
                    raise ValueError(f"unknown feedback kind {item.kind!r}")
                if db.execute("SELECT 1 FROM feedback WHERE key = ?", (item.key,)).fetchone():
                    outcomes.append("duplicate")
                    continue
                delivery = self._feedback_delivery(item)
                subscriber_id = (delivery[1] if delivery else None) or item.subscriber_id or None
                if subscriber_id is None and item.email_key:
                    row = db.execute("SELECT id FROM subscribers WHERE email_key = ?",
                                     (item.email_key,)).fetchone()
                    subscriber_id = row[0] if row else None
                current = self.subscriber_by_id(subscriber_id) if subscriber_id else None
                db.execute(
                    "INSERT INTO feedback (key, kind, subscriber_id, delivery_id, at) VALUES (?, ?, ?, ?, ?)",
                    (item.key, item.kind, current.id if current else None,
                     delivery[0] if delivery else None, when),
                )
                if delivery is not None:
                    self._mark_delivery(delivery[0], delivery[2], item.kind)
                if current is None:
                    outcomes.append("nobody")
                    continue
                outcomes.append(self._feedback_status(current, item, when, actor, transient_limit))
        return outcomes

    def _feedback_delivery(self, item: Feedback) -> tuple[int, int | None, str] | None:
        """(id, subscriber_id, feedback) of the ledger row `item` is about, if any."""
        if item.message_id:
            row = self._db.execute(
                "SELECT id, subscriber_id, feedback FROM deliveries WHERE provider_id = ?",
                (item.message_id,)).fetchone()
            if row is not None:
                return row
        if item.send_id and item.subscriber_id:
            return self._db.execute(
                "SELECT id, subscriber_id, feedback FROM deliveries WHERE send_id = ? AND subscriber_id = ?",
                (item.send_id, item.subscriber_id)).fetchone()
        return None

    def _mark_delivery(self, delivery_id: int, current: str, kind: str) -> None:
        if _FEEDBACK_RANK[kind] > _FEEDBACK_RANK.get(current, 0):
            self._db.execute("UPDATE deliveries SET feedback = ? WHERE id = ?", (kind, delivery_id))

    def _feedback_status(self, current: Subscriber, item: Feedback, when: str, actor: str,
                         transient_limit: int) -> str:
        """Change `current`'s status as `item` asks, inside apply_feedback's transaction."""
        if item.kind == "delivered":
            return "delivered"
        status, reason = item.kind, item.reason
        if item.kind == "transient":
            self._event(current.id, "soft-bounced", when, item.reason, actor)
            count = self.transient_bounces(current.id)
            if count < transient_limit or current.status != "active":
                return "counted"
            status, reason = "bounced", f"{count} transient bounces in a row; last: {item.reason}"
        if STRENGTH[status] <= STRENGTH[current.status]:
            return "counted"
        self._db.execute("UPDATE subscribers SET status = ?, updated_at = ? WHERE id = ?",
                         (status, when, current.id))
        self._event(current.id, status, when, reason, actor)
        return "applied"

    def transient_bounces(self, subscriber_id: int) -> int:
        """Transient bounces of `subscriber_id` since their last delivery or resubscription."""
        return self._db.execute(
            "SELECT count(*) FROM feedback WHERE subscriber_id = :id AND kind = 'transient'"
            " AND id > coalesce((SELECT max(id) FROM feedback"
            "                    WHERE subscriber_id = :id AND kind = 'delivered'), 0)"
            " AND at >= coalesce((SELECT max(at) FROM events"
            "                     WHERE subscriber_id = :id AND kind = 'resubscribed'), '')",
            {"id": subscriber_id},
        ).fetchone()[0]

    def feedback_counts(self, send_id: int) -> dict[str, int]:
        """How many messages of a send were reported delivered, bounced, complained about …"""
        counts = dict.fromkeys(FEEDBACK_KINDS, 0)
        counts.update(self._db.execute(
            "SELECT feedback, count(*) FROM deliveries WHERE send_id = ? AND feedback != ''"
            " GROUP BY feedback", (send_id,)))
        return counts
