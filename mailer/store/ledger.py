"""The send ledger: one row per send of an issue, one per recipient of it.

The ledger speaks of its own states only. A delivery is pending, in
flight, sent, failed, suppressed or unknown; whoever sends the messages
says, with a `Settlement`, which of these an attempt ended in. What a
transport's error means for the next attempt is the sender's business, not
the store's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..errors import StoreError
from .connection import StoreConnection, now

DELIVERY_STATUSES = ("pending", "inflight", "sent", "failed", "suppressed", "unknown")
# Where an attempt can leave a delivery that was in flight. Pending means it
# is tried again once `Settlement.retry_at` has passed.
SETTLED_STATUSES = frozenset({"sent", "failed", "unknown", "pending"})
_SEND_COLUMNS = "id, issue, content_hash, subject, started_at, finished_at"  # SendRecord's fields


@dataclass(frozen=True)
class SendRecord:
    """One send of an issue, as the ledger has it."""

    id: int
    issue: str
    content_hash: str
    subject: str
    started_at: str
    finished_at: str


@dataclass(frozen=True)
class SendCounts:
    """Where the recipients of one send stand, with the failure reasons grouped."""

    counts: dict
    failed_reasons: list
    # Failures whose cause passes (`Settlement.temporary`), and their reasons.
    temporary_failed: int = 0
    temporary_reasons: frozenset = frozenset()
    suppressed_reasons: list = ()

    def __getitem__(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Delivery:
    """One row of the ledger: a recipient of one send, as `Store.settle` hands it out."""

    id: int
    subscriber_id: int
    email: str
    name: str
    attempts: int = 0


@dataclass(frozen=True)
class Settlement:
    """What to record of one delivery that was in flight.

    `status` is one of `SETTLED_STATUSES`. A pending settlement puts the
    delivery back in the queue, due at `retry_at` (a Unix time); with
    `attempted` false the message never reached the transport (the send
    stopped first), so the attempt is not counted against it. A failure
    that is `temporary` came from a cause that passes (an outage), so a
    later run may be asked to try it again.
    """

    delivery_id: int
    status: str
    provider_id: str = ""
    reason: str = ""
    retry_at: float = 0.0
    attempted: bool = True
    temporary: bool = False


class LedgerQueries(StoreConnection):
    """The sends and deliveries tables."""

    def find_send(self, issue: str) -> SendRecord | None:
        return self._send_where("issue", issue)

    def send_by_id(self, send_id: int) -> SendRecord | None:
        return self._send_where("id", send_id)

    def _send_where(self, column: str, value: object) -> SendRecord | None:
        row = self._db.execute(
            f"SELECT {_SEND_COLUMNS} FROM sends WHERE {column} = ?", (value,)).fetchone()
        return SendRecord(*row) if row else None

    def sends(self) -> list[SendRecord]:
        """Every send, oldest first."""
        rows = self._db.execute(
            f"SELECT {_SEND_COLUMNS} FROM sends ORDER BY id")
        return [SendRecord(*row) for row in rows]

    def begin_send(self, issue: str, content_hash: str, subject: str,
                   refused: Mapping[str, str] | None = None) -> SendRecord:
        """Start the send of `issue`, fixing its recipients: every active subscriber
        is pending, everybody else suppressed with their status as the reason.

        `refused` maps the addresses of active subscribers the sender cannot send
        to onto why; they are suppressed with that reason.
        """
        when = now()
        with self._write() as db:
            if self.find_send(issue) is not None:
                raise StoreError(f"{issue} has already been started")
            send_id = db.execute(
                "INSERT INTO sends (issue, content_hash, subject, started_at) VALUES (?, ?, ?, ?)",
                (issue, content_hash, subject, when),
            ).lastrowid
            db.execute(
                "INSERT INTO deliveries (send_id, subscriber_id, email, status, reason, updated_at)"
                " SELECT ?, id, email,"
                " CASE status WHEN 'active' THEN 'pending' ELSE 'suppressed' END,"
                " CASE status WHEN 'active' THEN '' ELSE status END, ?"
                " FROM subscribers ORDER BY id",
                (send_id, when),
            )
            db.executemany(
                "UPDATE deliveries SET status = 'suppressed', reason = ?"
                " WHERE send_id = ? AND email = ? AND status = 'pending'",
                [(reason, send_id, email) for email, reason in (refused or {}).items()])
        return self.find_send(issue)

    def resume_send(self, send: SendRecord, *, retry_unknown: bool, content_hash: str,
                    retry_failed: bool = False) -> int:
        """Make `send` ready to go on; return how many in-flight rows became unknown.

        A row still in flight was handed to the transport by a run that never
        recorded the answer: it may have been delivered, so it becomes
        unknown, and is only tried again with `retry_unknown`. With
        `retry_failed`, failures whose cause passes are pending again, with
        their attempts counted afresh; refusals for good stay failed.
        """
        when = now()
        with self._write() as db:
            interrupted = db.execute(
                "UPDATE deliveries SET status = 'unknown', updated_at = ?,"
                " reason = 'the run sending it stopped before recording the answer'"
                " WHERE send_id = ? AND status = 'inflight'",
                (when, send.id),
            ).rowcount
            if retry_unknown:
                db.execute(
                    "UPDATE deliveries SET status = 'pending', retry_at = 0, updated_at = ?"
                    " WHERE send_id = ? AND status = 'unknown'",
                    (when, send.id),
                )
            if retry_failed:
                db.execute(
                    "UPDATE deliveries SET status = 'pending', retry_at = 0, attempts = 0, temporary = 0,"
                    " reason = '', updated_at = ? WHERE send_id = ? AND status = 'failed' AND temporary = 1",
                    (when, send.id),
                )
            db.execute("UPDATE sends SET content_hash = ?, finished_at = '' WHERE id = ?",
                       (content_hash, send.id))
        return interrupted

    def settle(
        self, settlements: Iterable[Settlement], send_id: int, now_ts: float, limit: int,
    ) -> list[Delivery]:
        """Record `settlements`, then claim up to `limit` recipients due by `now_ts`,
        marked in flight — one transaction for both.

        Whoever left the list since the send began (unsubscribed, bounced,
        complained, erased) is suppressed here instead, right before their turn.
        """
        when = now()
        claimed: list[Delivery] = []
        with self._write() as db:
            for settled in settlements:
                if settled.status not in SETTLED_STATUSES:
                    raise ValueError(f"a delivery settles as one of {sorted(SETTLED_STATUSES)},"
                                     f" not {settled.status!r}")
                db.execute(
                    "UPDATE deliveries SET status = ?, provider_id = ?, reason = ?, retry_at = ?,"
                    " attempts = attempts + ?, temporary = ?, updated_at = ?"
                    " WHERE id = ? AND status = 'inflight'",
                    (settled.status, settled.provider_id, settled.reason, settled.retry_at,
                     int(settled.attempted), int(settled.temporary), when, settled.delivery_id),
                )
            while len(claimed) < limit:
                rows = db.execute(
                    "SELECT d.id, d.subscriber_id, d.email, d.attempts, s.status, s.name"
                    " FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id"
                    " WHERE d.send_id = ? AND d.status = 'pending' AND d.retry_at <= ?"
                    " ORDER BY d.id LIMIT ?",
                    (send_id, now_ts, limit - len(claimed)),
                ).fetchall()
                if not rows:
                    break
                for delivery_id, subscriber_id, email, attempts, status, name in rows:
                    if status == "active":
                        claimed.append(Delivery(delivery_id, subscriber_id, email, name or "", attempts))
                        db.execute("UPDATE deliveries SET status = 'inflight', updated_at = ? WHERE id = ?",
                                   (when, delivery_id))
                    else:
                        db.execute(
                            "UPDATE deliveries SET status = 'suppressed', reason = ?, updated_at = ?"
                            " WHERE id = ?",
                            (f"{status or 'erased'} before their turn", when, delivery_id),
                        )
        return claimed

    def mark_temporary(self, send_id: int, delivery_ids: Iterable[int]) -> None:
        """Record that these failures came from one cause that passes, seen only when
        they ran together (a run of failures that paused the send)."""
        with self._write() as db:
            db.executemany(
                "UPDATE deliveries SET temporary = 1 WHERE send_id = ? AND id = ? AND status = 'failed'",
                [(send_id, delivery_id) for delivery_id in delivery_ids])

    def next_retry_at(self, send_id: int) -> float | None:
        """When the earliest pending row falls due, or None when none is pending."""
        row = self._db.execute(
            "SELECT min(retry_at) FROM deliveries WHERE send_id = ? AND status = 'pending'",
            (send_id,),
        ).fetchone()
        return row[0]

    def finish_send(self, send_id: int) -> None:
        """Mark the send finished if nobody is left pending or in flight."""
        with self._write() as db:
            db.execute(
                "UPDATE sends SET finished_at = ? WHERE id = ? AND finished_at = '' AND NOT EXISTS"
                " (SELECT 1 FROM deliveries WHERE send_id = ? AND status IN ('pending', 'inflight'))",
                (now(), send_id, send_id),
            )

    def active_addresses(self) -> Iterator[str]:
        """The address of every active subscriber, in the order a send reaches them."""
        for (email,) in self._db.execute("SELECT email FROM subscribers WHERE status = 'active' ORDER BY id"):
            yield email

    def skipped_subscribers(self) -> Iterator[tuple[str, str]]:
        """(address, status) of everyone a new send would skip."""
        yield from self._db.execute(
            "SELECT email, status FROM subscribers WHERE status != 'active' ORDER BY id")

    def send_counts(self, send_id: int) -> SendCounts:
        counts = dict.fromkeys(DELIVERY_STATUSES, 0)
        counts.update(self._db.execute(
            "SELECT status, count(*) FROM deliveries WHERE send_id = ? GROUP BY status", (send_id,)))
        reasons = self._db.execute(
            "SELECT reason, count(*), sum(temporary) FROM deliveries WHERE send_id = ? AND status = 'failed'"
            " GROUP BY reason ORDER BY count(*) DESC, reason", (send_id,)).fetchall()
        suppressed = self._db.execute(
            "SELECT reason, count(*) FROM deliveries WHERE send_id = ? AND status = 'suppressed'"
            " GROUP BY reason ORDER BY count(*) DESC, reason", (send_id,)).fetchall()
        return SendCounts(
            counts, [(reason, n) for reason, n, _ in reasons],
            temporary_failed=sum(temporary for _, _, temporary in reasons),
            temporary_reasons=frozenset(reason for reason, _, temporary in reasons if temporary),
            suppressed_reasons=suppressed)
