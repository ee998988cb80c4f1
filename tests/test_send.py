"""Sending an issue: every active subscriber once, through real transports."""

from __future__ import annotations

import email
import re
from email import policy

import pytest

from mailer.compose.build import render_issue
from mailer.config import SesSettings, SmtpSettings
from mailer.send.campaign import run_send
from mailer.send.engine import RateLimiter, Sender
from mailer.send.transports.outbox import OutboxTransport
from mailer.send.transports.ses import SesTransport
from mailer.send.transports.smtp import SmtpTransport
from mailer.store import Store
from mailer.subscribers.addresses import parse_address

from .conftest import EXAMPLE_ISSUE
from .servers import SENDER, FaultyProxy

SECRET = b"k" * 32


def fill(store: Store, count: int, *, left: dict[int, str] | None = None) -> list[str]:
    """`count` subscribers r0…; those in `left` get that status. Returns the active addresses."""
    active = []
    for n in range(count):
        address = parse_address(f"r{n}@example.com")
        store.add(address, f"Reader {n}" if n % 3 else "", actor="test")
        if left and n in left:
            store.set_status(address, left[n], actor="test", reason="test")
        else:
            active.append(address.email)
    return active


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def unsubscribe_token(msg) -> str:
    return re.search(r"[?&]t=([A-Za-z0-9_-]+)>", str(msg["List-Unsubscribe"])).group(1)


@pytest.fixture
def rendered(workspace):
    return render_issue(workspace, EXAMPLE_ISSUE)


def sender_for(store, transport, rendered, settings, **kw) -> Sender:
    from mailer.send.message import MessageTemplate

    record = store.find_send(rendered.issue.stem) or store.begin_send(rendered.issue.stem, "h", rendered.subject)
    options = dict(send_id=record.id, signer=store.signer(SECRET, settings.list_id), rate=10_000, concurrency=4, max_failures=50,
                   jitter=lambda low, high: 0.0)
    options.update(kw)
    return Sender(store, transport, MessageTemplate(rendered, settings), **options)


def test_rate_limiter_spaces_messages_and_recovers_after_throttling():
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    limiter = RateLimiter(10.0, clock=lambda: now[0], sleep=sleep, burst=4)
    for _ in range(11):
        limiter.acquire()
    assert now[0] == pytest.approx(1.0)
    limiter.slow_down()
    limiter.slow_down()
    assert limiter.rate == 2.5
    start = now[0]
    limiter.acquire()
    limiter.acquire()
    assert now[0] - start == pytest.approx(0.8)
    for _ in range(40):
        limiter.recover()
    assert limiter.rate == 10.0
    now[0] += 60  # idle: the bucket fills up to its burst, no further
    assert limiter.take(10) == 4
    assert limiter.take(10) == 1 and now[0] - 60 - start - 0.8 == pytest.approx(0.1)


def test_outbox_send_reaches_each_active_subscriber_once_with_their_own_token(
        store, rendered, workspace, tmp_path):
    active = fill(store, 30, left={3: "unsubscribed", 7: "bounced", 11: "complained"})
    outbox = tmp_path / "outbox"
    report = run_send(store, OutboxTransport(outbox), rendered, workspace.settings, secret=SECRET,
                      rate=10_000, concurrency=4, quota_left=float("inf"))
    assert (report.counts["sent"], report.counts["suppressed"],
            report.counts["pending"] + report.counts["inflight"]) == (27, 3, 0)
    messages = [parse(p.read_bytes()) for p in outbox.iterdir()]
    recipients = sorted(m["To"].addresses[0].addr_spec for m in messages)
    assert recipients == sorted(active)
    ids = {}
    for msg in messages:
        address = msg["To"].addresses[0].addr_spec
        token = unsubscribe_token(msg)
        claims = store.signer(SECRET, workspace.settings.list_id).verify(token)
        ids[claims.subscriber_id] = address
        url = str(msg["List-Unsubscribe"]).split(">")[0][1:]
        text, html = (p.get_content() for p in msg.iter_parts())
        assert url in text and f'href="{url}"' in html, "the footer carries the same URL"
    assert len(ids) == 27
    for subscriber_id, address in ids.items():
        assert store.require(parse_address(address)).id == subscriber_id


def test_a_finished_send_sends_nothing_more(store, rendered, workspace, tmp_path):
    fill(store, 5)
    outbox = OutboxTransport(tmp_path / "outbox")
    for _ in range(2):
        report = run_send(store, outbox, rendered, workspace.settings, secret=SECRET, rate=10_000,
                          concurrency=2, quota_left=float("inf"))
    assert report.counts["sent"] == 5 and report.run.progress.sent == 0
    assert len(list((tmp_path / "outbox").iterdir())) == 5


def test_who_leaves_during_a_send_is_suppressed_before_their_turn(store, rendered, workspace, tmp_path):
    fill(store, 6)
    store.begin_send(rendered.issue.stem, "h", rendered.subject)
    store.set_status(parse_address("r4@example.com"), "unsubscribed", actor="page", reason="one-click")
    sender = sender_for(store, OutboxTransport(tmp_path / "outbox"), rendered, workspace.settings)
    sender.run()
    counts = store.send_counts(store.find_send(rendered.issue.stem).id)
    assert (counts["sent"], counts["suppressed"]) == (5, 1)
    sent_to = {parse(p.read_bytes())["To"].addresses[0].addr_spec for p in (tmp_path / "outbox").iterdir()}
    assert "r4@example.com" not in sent_to


def test_a_hostile_name_reaches_no_header_and_does_not_stop_the_send(store, rendered, workspace, tmp_path):
    fill(store, 3)
    store.add(parse_address("eve@example.com"), "=?utf-8?q?=0D=0ABcc:_victim@evil.example?=", actor="test")
    report = run_send(store, OutboxTransport(tmp_path / "outbox"), rendered, workspace.settings,
                      secret=SECRET, rate=10_000, concurrency=2, quota_left=float("inf"))
    assert report.counts["sent"] == 4
    for path in (tmp_path / "outbox").iterdir():
        raw = path.read_bytes()
        head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        fields = [line.split(":", 1)[0].lower() for line in re.split(r"\r\n(?![ \t])", head)]
        assert "bcc" not in fields and "cc" not in fields
        assert len(parse(raw)["To"].addresses) == 1


def test_ses_send_delivers_each_message_once_through_moto(store, rendered, workspace, ses):
    active = fill(store, 12, left={5: "bounced"})
    report = run_send(store, SesTransport(SesSettings(), concurrency=4), rendered, workspace.settings,
                      secret=SECRET, rate=10_000, concurrency=4, quota_left=float("inf"))
    assert report.counts["sent"] == 11
    stored = ses.raw_messages()
    assert sorted(m["destinations"][0] for m in stored) == sorted(active)
    ids = {m["id"] for m in stored}
    assert len(ids) == 11
    for raw in stored:
        msg = parse(raw["raw_data"].encode())
        assert msg["From"].addresses[0].addr_spec == SENDER
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Feedback-ID"].startswith("2024-26:")
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        store.signer(SECRET, workspace.settings.list_id).verify(unsubscribe_token(msg))
    counts = store.send_counts(store.find_send("2024-26").id)
    assert counts["sent"] == 11


def test_throttling_and_dropped_answers_never_send_twice(store, rendered, workspace, ses, monkeypatch):
    """SES's real 429 on every third call, a lost answer on every seventh."""
    fill(store, 40)
    with FaultyProxy(ses.url, throttle_every=3, drop_every=7) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        transport = SesTransport(SesSettings(), concurrency=4)
        sender_for(store, transport, rendered, workspace.settings).run()
    counts = store.send_counts(store.find_send("2024-26").id)
    delivered: dict[str, int] = {}
    for message in ses.raw_messages():
        delivered[message["destinations"][0]] = delivered.get(message["destinations"][0], 0) + 1
    assert proxy.throttled > 0 and proxy.dropped > 0
    assert max(delivered.values()) == 1, "nobody gets the issue twice"
    assert counts["unknown"] == proxy.dropped
    assert counts["sent"] + counts["unknown"] == 40
    assert len(delivered) == 40, "throttled messages were retried until SES took them"


def test_an_account_level_error_stops_the_send_resumably(store, rendered, workspace, aws_env):
    fill(store, 8)
    transport = SesTransport(SesSettings(), concurrency=2)
    result = sender_for(store, transport, rendered, workspace.settings, concurrency=2).run()
    assert "SES may not send from this sender" in result.stopped
    counts = store.send_counts(store.find_send("2024-26").id)
    assert (counts["sent"], counts["pending"], counts["failed"]) == (0, 8, 0)
    import boto3

    boto3.client("ses", endpoint_url=aws_env.url).verify_email_identity(EmailAddress=SENDER)
    report = run_send(store, transport, rendered, workspace.settings, secret=SECRET, rate=10_000,
                      concurrency=2, quota_left=float("inf"), force=True)
    assert report.counts["sent"] == 8
    assert len(aws_env.raw_messages()) == 8


def test_the_daily_quota_stops_the_send_and_a_later_run_resumes(store, rendered, workspace, tmp_path):
    fill(store, 10)
    outbox = OutboxTransport(tmp_path / "outbox")
    report = run_send(store, outbox, rendered, workspace.settings, secret=SECRET, rate=10_000,
                      concurrency=3, quota_left=4)
    assert report.counts["sent"] == 4 and report.counts["pending"] + report.counts["inflight"] == 6
    assert "24-hour sending quota is used up" in report.run.stopped
    report = run_send(store, outbox, rendered, workspace.settings, secret=SECRET, rate=10_000,
                      concurrency=3, quota_left=100)
    assert report.counts["sent"] == 10
    assert len(list((tmp_path / "outbox").iterdir())) == 10


def test_a_run_of_failures_pauses_the_send(store, rendered, workspace, smtp_server):
    fill(store, 10)
    for n in range(10):
        smtp_server.refuse[f"r{n}@example.com"] = (550, "5.7.1 relaying denied")
    transport = SmtpTransport(SmtpSettings(host=smtp_server.host, port=smtp_server.port,
                                           security="none", timeout=5))
    result = sender_for(store, transport, rendered, workspace.settings, concurrency=1,
                        max_failures=3).run()
    assert result.stopped.startswith("paused after 3 failures in a row (last: SMTP 550 5.7.1 relaying denied")
    counts = store.send_counts(store.find_send("2024-26").id)
    assert counts["failed"] == 3 and counts["pending"] == 7
    assert counts.failed_reasons == [("SMTP 550 5.7.1 relaying denied", 3)]


def test_smtp_send_delivers_to_each_recipient_once(store, rendered, workspace, smtp_server):
    active = fill(store, 9, left={2: "unsubscribed"})
    transport = SmtpTransport(SmtpSettings(host=smtp_server.host, port=smtp_server.port,
                                           security="none", timeout=5))
    report = run_send(store, transport, rendered, workspace.settings, secret=SECRET, rate=10_000,
                      concurrency=3, quota_left=float("inf"))
    transport.close()
    assert report.counts["sent"] == 8
    assert sorted(m[1][0] for m in smtp_server.messages) == sorted(active)
    assert smtp_server.connections <= 3


def test_a_changed_issue_is_refused_unless_forced(store, rendered, workspace, tmp_path):
    from mailer.compose.render import RenderedIssue
    from mailer.errors import MailerError

    fill(store, 4)
    outbox = OutboxTransport(tmp_path / "outbox")
    run_send(store, outbox, rendered, workspace.settings, secret=SECRET, rate=10_000, concurrency=1,
             quota_left=2)
    edited = RenderedIssue(rendered.issue, rendered.subject, rendered.preheader,
                           rendered.html.replace("摘要", "概要"), rendered.text)
    with pytest.raises(MailerError, match="changed since its send began"):
        run_send(store, outbox, edited, workspace.settings, secret=SECRET, rate=10_000, concurrency=1,
                 quota_left=10)
    report = run_send(store, outbox, edited, workspace.settings, secret=SECRET, rate=10_000,
                      concurrency=1, quota_left=10, force=True)
    assert report.counts["sent"] == 4


def test_erasing_someone_scrubs_them_from_the_ledger_too(store, rendered, workspace, tmp_path):
    import sqlite3

    fill(store, 3)
    store.begin_send(rendered.issue.stem, "h", rendered.subject)
    store.erase(parse_address("r1@example.com"), actor="dpo")
    sender_for(store, OutboxTransport(tmp_path / "outbox"), rendered, workspace.settings).run()
    counts = store.send_counts(store.find_send(rendered.issue.stem).id)
    assert (counts["sent"], counts["suppressed"]) == (2, 1)
    with sqlite3.connect(store.path) as db:
        emails = [row[0] for row in db.execute("SELECT email FROM deliveries")]
    assert "r1@example.com" not in emails and emails.count("") == 1


class _BrokenTransport:
    """A transport with a bug: raises something that is not a SendError."""

    name = "broken"

    def __init__(self):
        self.calls = 0

    def describe(self):
        return "broken"

    def quota(self):
        return None

    def send(self, raw, sender, recipient):
        self.calls += 1
        raise RuntimeError("boom")

    def close(self):
        pass


def test_an_unexpected_transport_error_stops_the_send_with_few_unknowns(store, rendered, workspace):
    fill(store, 20)
    transport = _BrokenTransport()
    result = sender_for(store, transport, rendered, workspace.settings, concurrency=2).run()
    assert "the transport failed unexpectedly: RuntimeError('boom')" in result.stopped
    counts = store.send_counts(store.find_send(rendered.issue.stem).id)
    assert counts["unknown"] == transport.calls <= 2
    assert counts["pending"] == 20 - transport.calls


def test_recipients_an_outage_failed_are_sent_again_with_retry_failed(store, rendered, workspace, ses,
                                                                       monkeypatch):
    """SES answers every SendEmail with a 500 for a while, and refuses one address for good."""
    from mailer.send import engine

    monkeypatch.setattr(engine, "MAX_ATTEMPTS", 2)  # the retries are tested elsewhere
    fill(store, 12)
    with FaultyProxy(ses.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        proxy.outage = True
        proxy.refuse.add("r11@example.com")
        transport = SesTransport(SesSettings(), concurrency=2)
        result = sender_for(store, transport, rendered, workspace.settings, concurrency=1,
                            max_failures=4).run()
        assert result.stopped.startswith("paused after 4 failures in a row (last: gave up after 2 attempts: "
                                         "SES answered 500")
        record = store.find_send("2024-26")
        counts = store.send_counts(record.id)
        assert (counts["failed"], counts.temporary_failed, counts["pending"]) == (4, 4, 8)

        # The outage is over: without --retry-failed only the pending are sent.
        proxy.outage = False
        report = run_send(store, transport, rendered, workspace.settings, secret=SECRET, rate=10_000,
                          concurrency=2, quota_left=float("inf"), force=True)
        assert (report.counts["sent"], report.counts["failed"], report.counts.temporary_failed) == (7, 5, 4)
        report = run_send(store, transport, rendered, workspace.settings, secret=SECRET, rate=10_000,
                          concurrency=2, quota_left=float("inf"), force=True, retry_failed=True)
        assert (report.counts["sent"], report.counts["failed"], report.counts.temporary_failed) == (11, 1, 0)
        assert report.counts.failed_reasons[0][0].startswith("SES refused the recipient")
        # The refusal for good is never tried again.
        before = proxy.count
        report = run_send(store, transport, rendered, workspace.settings, secret=SECRET, rate=10_000,
                          concurrency=2, quota_left=float("inf"), force=True, retry_failed=True)
        assert proxy.count == before and report.counts["failed"] == 1
    sent_to = sorted(m["destinations"][0] for m in ses.raw_messages())
    assert sent_to == sorted(f"r{n}@example.com" for n in range(11))

