"""Transports against real servers: moto for SES, aiosmtpd for SMTP, files for outbox."""

from __future__ import annotations

import pytest

from mailer.config import SesSettings, SmtpSettings
from mailer.errors import AccountSendError, PermanentSendError, Throttled, UnknownOutcome
from mailer.send.quota import Quota
from mailer.send.transports.outbox import OutboxTransport
from mailer.send.transports.ses import SesTransport
from mailer.send.transports.smtp import SmtpTransport

from .servers import SENDER, FaultyProxy

RAW = (f"From: {SENDER}\r\nTo: reader@example.com\r\nSubject: hi\r\n"
       "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbody\r\n").encode()


def test_ses_sends_raw_mime_and_returns_the_message_id(ses):
    transport = SesTransport(SesSettings(), concurrency=2)
    message_id = transport.send(RAW, SENDER, "reader@example.com")
    stored = ses.raw_messages()
    assert [m["id"] for m in stored] == [message_id]
    assert stored[0]["raw_data"].encode() == RAW
    assert "reader@example.com" in stored[0]["destinations"]
    assert transport.describe() == "ses (us-east-1)"


def test_ses_quota_is_read_from_the_account_and_goes_down_as_it_sends(ses):
    transport = SesTransport(SesSettings(), concurrency=1)
    fresh = transport.quota()
    # moto's sandbox account: one message a second, 200 a day, none sent yet.
    assert (fresh.max_rate, fresh.max_per_day, fresh.sent_last_day, fresh.remaining) == (1, 200, 0, 200)
    transport.send(RAW, SENDER, "reader@example.com")
    used = transport.quota()
    assert used.sent_last_day > 0 and 0 < used.remaining < 200


def test_a_quota_is_never_below_zero_and_unlimited_is_infinite():
    assert Quota(max_rate=14, max_per_day=50_000, sent_last_day=49_990).remaining == 10
    assert Quota(max_rate=14, max_per_day=50_000, sent_last_day=50_007).remaining == 0
    assert Quota(max_rate=14, max_per_day=-1, sent_last_day=123).remaining == float("inf")


def test_ses_unverified_sender_stops_the_send(aws_env):
    transport = SesTransport(SesSettings(), concurrency=1)
    with pytest.raises(AccountSendError, match="SES may not send from this sender"):
        transport.send(RAW, SENDER, "reader@example.com")
    assert aws_env.raw_messages() == []


def test_ses_throttling_is_retryable_and_nothing_was_sent(ses, monkeypatch):
    with FaultyProxy(ses.url, throttle_every=1) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        transport = SesTransport(SesSettings(), concurrency=1)
        with pytest.raises(Throttled, match="SES throttled the send"):
            transport.send(RAW, SENDER, "reader@example.com")
    assert proxy.throttled == 1, "botocore must not retry on its own"
    assert ses.raw_messages() == []


def test_ses_lost_answer_is_unknown_and_never_resent(ses, monkeypatch):
    with FaultyProxy(ses.url, drop_every=1) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        transport = SesTransport(SesSettings(), concurrency=1)
        with pytest.raises(UnknownOutcome):
            transport.send(RAW, SENDER, "reader@example.com")
    # SES took it once; botocore did not silently send it again.
    assert proxy.count == 1
    assert len(ses.raw_messages()) == 1


def test_ses_without_a_region_is_a_clear_error(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(AccountSendError, match="no AWS region"):
        SesTransport(SesSettings(), concurrency=1)


def smtp(server, **kw) -> SmtpTransport:
    return SmtpTransport(SmtpSettings(host=server.host, port=server.port, security="none", timeout=5, **kw))


def test_smtp_delivers_and_reuses_one_connection(smtp_server):
    transport = smtp(smtp_server)
    for n in range(3):
        transport.send(RAW, SENDER, f"r{n}@example.com")
    transport.close()
    assert [(m[0], m[1]) for m in smtp_server.messages] == [
        (SENDER, [f"r{n}@example.com"]) for n in range(3)]
    assert smtp_server.messages[0][2].replace(b"\r\n", b"\n") == RAW.replace(b"\r\n", b"\n")
    assert smtp_server.connections == 1


def test_smtp_rejected_recipient_is_permanent(smtp_server):
    smtp_server.refuse["gone@example.com"] = (550, "5.1.1 no such user")
    transport = smtp(smtp_server)
    with pytest.raises(PermanentSendError, match="550 5.1.1 no such user"):
        transport.send(RAW, SENDER, "gone@example.com")
    transport.send(RAW, SENDER, "here@example.com")  # the connection is still good
    assert [m[1] for m in smtp_server.messages] == [["here@example.com"]]


def test_smtp_454_is_throttling(smtp_server):
    smtp_server.data_reply = "454 4.7.0 Throttling failure: Maximum sending rate exceeded."
    with pytest.raises(Throttled, match="454"):
        smtp(smtp_server).send(RAW, SENDER, "reader@example.com")


def test_smtp_connection_lost_during_data_is_unknown(smtp_server):
    smtp_server.drop_on_data = True
    with pytest.raises(UnknownOutcome):
        smtp(smtp_server).send(RAW, SENDER, "reader@example.com")


def test_smtp_password_must_be_in_the_environment(monkeypatch, smtp_server):
    monkeypatch.delenv("MAILER_SMTP_PASSWORD", raising=False)
    with pytest.raises(AccountSendError, match="set the environment variable MAILER_SMTP_PASSWORD"):
        smtp(smtp_server, username="user")


def test_outbox_writes_one_file_per_message(tmp_path):
    transport = OutboxTransport(tmp_path / "outbox" / "2024-26")
    first = transport.send(RAW, SENDER, "a@example.com")
    transport.send(RAW, SENDER, "a@example.com")
    files = sorted((tmp_path / "outbox" / "2024-26").iterdir())
    assert len(files) == 2 and first in [f.name for f in files]
    assert all(f.read_bytes() == RAW for f in files)
    assert all(f.name.startswith("a@example.com-") and f.suffix == ".eml" for f in files)
