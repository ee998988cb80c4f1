"""The ledger of each send as `mailer status` reports it, built without a terminal."""

from __future__ import annotations

import sqlite3

import pytest

from mailer.errors import MailerError
from mailer.send.status import FailedReason, sends_status, summary, unfinished
from mailer.store import SendCounts, Store
from mailer.subscribers.addresses import parse_address


@pytest.fixture
def send_to(store):
    """Start a send of 2024-26 to `count` new subscribers; returns `mark` to shape its ledger."""
    connections = []

    def start(count: int):
        for n in range(count):
            store.add(parse_address(f"reader{n}@example.com"), "", actor="test")
        store.begin_send("2024-26", "hash", "第二十六期")
        db = sqlite3.connect(store.path, isolation_level=None)
        connections.append(db)
        return lambda rows: set_deliveries(db, rows)

    yield start
    for db in connections:
        db.close()


def set_deliveries(db: sqlite3.Connection, rows: list[tuple[str, str, str]]) -> None:
    """Give the deliveries, in order, each a (status, reason, feedback)."""
    ids = [row[0] for row in db.execute("SELECT id FROM deliveries ORDER BY id")]
    for delivery_id, (status, reason, feedback) in zip(ids, rows):
        db.execute("UPDATE deliveries SET status = ?, reason = ?, feedback = ? WHERE id = ?",
                   (status, reason, feedback, delivery_id))


def test_a_send_reports_its_counts_failure_reasons_and_feedback(store, send_to):
    mark = send_to(20)
    mark([("sent", "", "delivered")] * 7 + [("sent", "", "bounced"), ("sent", "", "complained"),
              ("sent", "", "unsubscribed")]
         + [("failed", "550 rejected", "")] * 2 + [("failed", "no such domain", ""), ("unknown", "", "")]
         + [("inflight", "", "")])
    [status] = sends_status(store)
    assert (status.issue, status.subject, status.finished) == ("2024-26", "第二十六期", False)
    assert (status.sent, status.failed, status.unknown, status.pending, status.in_flight) == (10, 3, 1, 5, 1)
    assert status.failed_reasons == [FailedReason("550 rejected", 2), FailedReason("no such domain", 1)]
    assert (status.delivered, status.bounced, status.complained, status.unsubscribed) == (7, 1, 1, 1)
    bounces, complaints = status.review_rates
    assert (bounces.kind, bounces.rate, bounces.threshold, bounces.above_threshold) == ("bounced", 0.1, 0.05, True)
    assert (complaints.kind, complaints.rate, complaints.above_threshold) == ("complained", 0.1, True)


def test_bounces_at_sess_review_rate_are_above_it_and_below_are_not(store, send_to):
    mark = send_to(40)
    mark([("sent", "", "bounced")] + [("sent", "", "delivered")] * 39)
    [under] = sends_status(store)
    assert under.bounced_rate == 0.025 and not under.review_rates[0].above_threshold
    mark([("sent", "", "bounced")] * 2 + [("sent", "", "delivered")] * 38)
    [at] = sends_status(store)
    assert at.bounced_rate == 0.05 and at.review_rates[0].above_threshold


def test_a_send_with_nothing_sent_has_rates_of_zero(store, send_to):
    send_to(3)
    [status] = sends_status(store)
    assert (status.pending, status.bounced_rate, status.complained_rate) == (3, 0.0, 0.0)
    assert not any(rate.above_threshold for rate in status.review_rates)


def test_the_json_of_a_send_keeps_its_fields_in_order(store, send_to):
    send_to(1)
    [status] = sends_status(store)
    assert list(status.as_dict()) == [
        "issue", "subject", "started_at", "finished_at", "sent", "failed", "unknown", "suppressed",
        "pending", "in_flight", "failed_reasons", "suppressed_reasons", "delivered", "unsubscribed", "bounced", "complained",
        "bounced_rate", "complained_rate"]


def test_one_issue_or_an_error_naming_the_command_that_sends_it(store, send_to):
    send_to(1)
    assert [s.issue for s in sends_status(store, "2024-26")] == ["2024-26"]
    with pytest.raises(MailerError, match="2024-27 has not been sent"):
        sends_status(store, "2024-27")
    with Store.open(store.path.parent / "empty.db") as empty:
        assert sends_status(empty) == []


def test_the_summary_tells_sent_always_and_the_rest_when_not_zero():
    assert summary(SendCounts({"sent": 5, "suppressed": 1, "failed": 0}, [])) == {"sent": 5, "suppressed": 1}
    assert summary(SendCounts({"failed": 2, "pending": 1, "inflight": 1}, [])) == {
        "sent": 0, "failed": 2, "pending": 1, "in flight": 1}


def test_a_send_is_unfinished_while_anyone_failed_is_unknown_or_pending():
    assert unfinished(SendCounts({"sent": 5, "suppressed": 1}, [])) == {}
    assert unfinished(SendCounts({"sent": 1, "failed": 2, "unknown": 1, "inflight": 3}, [])) == {
        "failed": 2, "unknown": 1, "in flight": 3}


def test_status_says_which_failures_retry_failed_sends_to_again(store, send_to, run_mailer, workspace_dir):
    mark = send_to(4)
    mark([("sent", "", ""), ("failed", "gave up after 8 attempts: SES answered 500: try again", ""),
          ("failed", "gave up after 8 attempts: SES answered 500: try again", ""),
          ("failed", "SES refused the recipient: not verified", "")])
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE deliveries SET temporary = 1 WHERE reason LIKE 'gave up%'")
    [status] = sends_status(store)
    assert status.failed_reasons == [
        FailedReason("gave up after 8 attempts: SES answered 500: try again", 2, temporary=True),
        FailedReason("SES refused the recipient: not verified", 1, temporary=False)]
    (workspace_dir / "subscribers").mkdir(exist_ok=True)
    with sqlite3.connect(store.path) as source, \
            sqlite3.connect(workspace_dir / "subscribers" / "mailer.db") as copy:
        source.backup(copy)
    result = run_mailer("status", "2024-26")
    assert ("  2 × gave up after 8 attempts: SES answered 500: try again"
            "  (temporary: --retry-failed sends to them again)\n") in result.output
    assert "  1 × SES refused the recipient: not verified\n" in result.output
