"""Where the sends stand: each send's ledger, and what came back against SES's limits.

Plain data for `mailer status` and the end of `mailer send-issue` to print;
nothing here writes or formats.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import MailerError
from ..store import SendCounts, SendRecord

# The bounce and complaint rates at which SES puts an account under review.
SES_REVIEW_RATES = {"bounced": 0.05, "complained": 0.001}


@dataclass(frozen=True)
class FailedReason:
    """One reason recipients of a send failed (or were suppressed), how many, and for a
    failure whether its cause passes (then `send-issue --retry-failed` sends to them again)."""

    reason: str
    count: int
    temporary: bool = False


@dataclass(frozen=True)
class ReviewRate:
    """Bounces or complaints of a send, as a share of the messages sent."""

    kind: str  # "bounced" or "complained"
    count: int
    rate: float
    threshold: float  # where SES reviews the account

    @property
    def above_threshold(self) -> bool:
        return self.rate >= self.threshold


@dataclass(frozen=True)
class SendStatus:
    """One send: the ledger's counts, why messages failed, and the feedback on them."""

    issue: str
    subject: str
    started_at: str
    finished_at: str | None
    sent: int
    failed: int
    unknown: int
    suppressed: int
    pending: int
    in_flight: int  # handed to the transport and not yet recorded: now, or by a run that was killed
    failed_reasons: list[FailedReason]
    suppressed_reasons: list[FailedReason]
    delivered: int
    unsubscribed: int
    bounced: int
    complained: int
    bounced_rate: float
    complained_rate: float

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def review_rates(self) -> list[ReviewRate]:
        """Bounces, then complaints, each against SES's review threshold."""
        return [ReviewRate(kind, getattr(self, kind), getattr(self, f"{kind}_rate"), threshold)
                for kind, threshold in SES_REVIEW_RATES.items()]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def feedback_rates(sent: int, feedback: dict[str, int]) -> dict:
    """What came back for a send, and its bounce and complaint rates over the messages sent."""
    return {
        "delivered": feedback["delivered"], "unsubscribed": feedback["unsubscribed"],
        "bounced": feedback["bounced"], "complained": feedback["complained"],
        "bounced_rate": feedback["bounced"] / sent if sent else 0.0,
        "complained_rate": feedback["complained"] / sent if sent else 0.0,
    }


def send_status(store, record: SendRecord) -> SendStatus:
    """Where the send `record` stands now."""
    counts = store.send_counts(record.id)
    return SendStatus(
        issue=record.issue, subject=record.subject, started_at=record.started_at,
        finished_at=record.finished_at or None,
        sent=counts["sent"], failed=counts["failed"], unknown=counts["unknown"],
        suppressed=counts["suppressed"], pending=counts["pending"], in_flight=counts["inflight"],
        failed_reasons=[FailedReason(reason, count, reason in counts.temporary_reasons)
                        for reason, count in counts.failed_reasons],
        suppressed_reasons=[FailedReason(reason, count) for reason, count in counts.suppressed_reasons],
        **feedback_rates(counts["sent"], store.feedback_counts(record.id)),
    )


def sends_status(store, issue: str | None = None) -> list[SendStatus]:
    """Every send in the ledger, oldest first, or only that of the issue with stem `issue`."""
    found = [send_status(store, r) for r in store.sends() if issue is None or r.issue == issue]
    if issue and not found:
        raise MailerError(f"{issue} has not been sent", hint=f"mailer send-issue {issue}")
    return found


def summary(counts: SendCounts) -> dict[str, int]:
    """The counts worth telling, in order: sent always, the rest when not zero."""
    told = {s: counts[s] for s in ("sent", "failed", "unknown", "suppressed") if counts[s] or s == "sent"}
    return told | _left(counts)


def unfinished(counts: SendCounts) -> dict[str, int]:
    """Recipients neither sent nor suppressed, by why (failed, unknown, pending, in flight);
    empty when done."""
    left = {"failed": counts["failed"], "unknown": counts["unknown"]} | _left(counts)
    return {why: count for why, count in left.items() if count}


def _left(counts: SendCounts) -> dict[str, int]:
    """Pending, and in flight apart: a killed run leaves rows in flight, and the next
    run counts those as unknown rather than sending them again."""
    left = {"pending": counts["pending"], "in flight": counts["inflight"]}
    return {why: count for why, count in left.items() if count}
