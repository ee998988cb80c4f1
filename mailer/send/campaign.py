"""A send of an issue: plan it, hold the workspace's send lock, run it, report.

The engine (`mailer.send.engine`) knows deliveries and transports; this
module knows issues: it fixes the recipient list in the ledger when a send
begins, refuses to go on when the issue changed since, and turns a run into
the report the command line prints.
"""

from __future__ import annotations

import fcntl
import hashlib
import signal
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..compose.render import Recipient
from ..errors import MailerError
from ..store.ledger import SendCounts
from ..subscribers.addresses import unsendable_reason
from ..tokens import issue_test_token, unsubscribe_url
from .engine import Ledger, Progress, RunResult, Sender, Transport
from .message import MessageTemplate, new_envelope
from .quota import Quota

DEFAULT_RATE = 10.0


@dataclass(frozen=True)
class Plan:
    """What `send-issue` is about to do, shown before it asks."""

    issue: str
    subject: str
    recipients: int
    suppressed: int
    transport: str
    rate: float
    quota_left: float
    changed: bool
    counts: SendCounts | None  # the ledger so far, when resuming
    refused: dict[str, str] = field(default_factory=dict)  # active, but cannot be sent to: why

    @property
    def resuming(self) -> bool:
        return self.counts is not None

    @property
    def done(self) -> bool:
        """Whether the send already reached everyone it will reach: a run would do nothing."""
        return self.counts is not None and _nothing_left(self.recipients, self.counts)

    @property
    def estimate_seconds(self) -> float:
        return self.recipients / self.rate


def _nothing_left(recipients: int, counts: SendCounts) -> bool:
    # Rows in flight still need a run: it is what records them as unknown.
    return recipients == 0 and counts["inflight"] == 0


def content_hash(rendered) -> str:
    """What must not change during a send: the subject and both parts as rendered."""
    digest = hashlib.sha256()
    for part in (rendered.subject, rendered.html, rendered.text):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def refuse_changed(stem: str) -> MailerError:
    """The error for an issue edited after its send began."""
    return MailerError(
        f"{stem} changed since its send began; the rest of the list would get another text",
        hint="pass --force to send the new version to those not yet sent")


def refused_addresses(store: Ledger) -> dict[str, str]:
    """The active subscribers no message can reach, and why: a send suppresses them
    when it begins, rather than failing each at every send."""
    return {email: reason for email in store.active_addresses() if (reason := unsendable_reason(email))}


def choose_rate(option: float | None, settings, quota: Quota | None) -> float:
    """--rate, else [transport] rate, else the provider's MaxSendRate, else 10 a second."""
    for rate in (option, settings.transport.rate, quota.max_rate if quota else None):
        if rate:
            return float(rate)
    return DEFAULT_RATE


def make_plan(store: Ledger, transport: Transport, rendered, settings, rate_option: float | None,
              retry_unknown: bool = False, retry_failed: bool = False) -> Plan:
    """The plan for sending `rendered`, fresh or resumed; writes nothing."""
    quota = transport.quota()
    rate = choose_rate(rate_option, settings, quota)
    quota_left = quota.remaining if quota else float("inf")
    stem = rendered.issue.stem
    record = store.find_send(stem)
    if record is None:
        counts = store.counts()
        refused = refused_addresses(store)
        suppressed = sum(counts[s] for s in ("unsubscribed", "bounced", "complained")) + len(refused)
        return Plan(stem, rendered.subject, counts["active"] - len(refused), suppressed, transport.describe(),
                    rate, quota_left, False, None, refused)
    counts = store.send_counts(record.id)
    # Rows a stopped run left in flight turn unknown when this run begins.
    recipients = (counts["pending"] + (counts["inflight"] + counts["unknown"] if retry_unknown else 0)
                  + (counts.temporary_failed if retry_failed else 0))
    # An edit after everyone was reached reaches nobody: the send is done, not changed.
    changed = not _nothing_left(recipients, counts) and record.content_hash != content_hash(rendered)
    return Plan(stem, rendered.subject, recipients, counts["suppressed"], transport.describe(), rate,
                quota_left, changed, counts)


@dataclass
class SendReport:
    """How a send-issue run ended."""

    counts: SendCounts
    run: RunResult
    interrupted_before: int = 0
    stop_signal: int = 0  # the signal that stopped the run, if one did

    @property
    def exit_status(self) -> int:
        """128 + the signal, as shells report a command a signal stopped (130 for Ctrl-C)."""
        return 128 + (self.stop_signal or signal.SIGINT)


@contextmanager
def send_lock(path: Path):
    """One send at a time per workspace: the lock goes with the process, even on a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MailerError("another send is running in this workspace",
                              hint="wait for it, or stop it with Ctrl-C") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_send(
    store: Ledger,
    transport: Transport,
    rendered,
    settings,
    *,
    secret: bytes,
    rate: float,
    concurrency: int,
    quota_left: float,
    retry_unknown: bool = False,
    retry_failed: bool = False,
    force: bool = False,
    on_progress: Callable[[Progress], None] = lambda progress: None,
) -> SendReport:
    """Start or resume the send of `rendered` and run it until done or stopped."""
    stem = rendered.issue.stem
    digest = content_hash(rendered)
    # A damaged ledger could send someone the issue twice, or lose who was sent it.
    store.check_integrity()
    record = store.find_send(stem)
    interrupted = 0
    if record is None:
        record = store.begin_send(stem, digest, rendered.subject, refused_addresses(store))
    else:
        if record.content_hash != digest and not force:
            raise refuse_changed(stem)
        interrupted = store.resume_send(record, retry_unknown=retry_unknown, content_hash=digest,
                                        retry_failed=retry_failed)
    template = MessageTemplate(rendered, settings)
    sender = Sender(
        store, transport, template, send_id=record.id, signer=store.signer(secret, settings.list_id),
        rate=rate, concurrency=concurrency, max_failures=settings.transport.max_failures,
        quota_left=quota_left, on_progress=on_progress,
    )
    caught: list[int] = []
    with _stop_signals_stop(sender, caught):
        result = sender.run()
    store.finish_send(record.id)
    return SendReport(store.send_counts(record.id), result, interrupted, caught[0] if caught else 0)


# Ctrl-C, `kill` (what service managers and `timeout` send) and a closed
# terminal all ask the send to stop; each is answered the same way.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _stop_signals_stop(sender: Sender, caught: list[int]):
    """The first stop signal lets the messages in flight finish and be recorded; a
    second one of the same kind acts at once (their rows then show as unknown on
    the next run). The signal caught is appended to `caught`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def first(signum, frame):
        signal.signal(signum, previous[signum])
        caught.append(signum)
        sender.request_stop()

    for signum in STOP_SIGNALS:
        signal.signal(signum, first)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def send_test(transport: Transport, rendered, settings, address: str, secret: bytes) -> str:
    """One message to `address`, outside the ledger; its unsubscribe link names nobody."""
    template = MessageTemplate(rendered, settings, campaign=f"{rendered.issue.stem}-test")
    url = unsubscribe_url(settings.unsubscribe.url, issue_test_token(secret, settings.list_id))
    raw = template.build(Recipient(address, "", url), new_envelope(settings))
    return transport.send(raw, settings.sender.address, address)
