"""The send engine: ledger-driven sending with a rate limit, retries, and never twice.

Progress lives in the ledger, not in memory. A recipient is marked in
flight right before its message is handed to the transport, and the answer
is recorded right after; a crash in between leaves the row in flight, and
the next run reports it as unknown instead of sending it again. At most
`concurrency` rows are ever in flight, so a crash leaves at most that many
unknowns.

What the transport's error means decides what happens next:

- `Throttled`: slow the rate down (it recovers as sends succeed) and retry
  the message after an exponential backoff with jitter;
- `RetryableSendError`: retry after a backoff, up to `MAX_ATTEMPTS`;
- `PermanentSendError` (and a recipient whose name cannot go in a header):
  record it failed with the reason, go on with everybody else;
- `UnknownOutcome`: record it unknown — it may have been delivered;
- `AccountSendError` (`QuotaExceeded` among them): stop the whole send
  cleanly, resumable, with the reason.

A run of `max_failures` failures in a row pauses the send too, so a broken
setup does not burn through the whole list. The clock, the sleep and the
random jitter are passed in, so tests run in no time.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

from ..compose.render import Recipient
from ..errors import (
    AccountSendError,
    HeaderError,
    PermanentSendError,
    QuotaExceeded,
    RetryableSendError,
    SendError,
    Throttled,
    UnknownOutcome,
)
from ..store.ledger import Delivery, SendCounts, SendRecord, Settlement
from ..tokens import Signer, unsubscribe_url
from .message import MessageTemplate, new_envelope
from .quota import Quota

MAX_ATTEMPTS = 8
BACKOFF_BASE = 1.0
BACKOFF_CAP = 120.0


class Transport(Protocol):
    """What the sender needs of a way to send mail (implemented in mailer.send.transports)."""

    name: str

    def describe(self) -> str:
        """Kind and where, for the plan: 'ses (eu-west-1)'."""

    def quota(self) -> Quota | None:
        """The provider's limits, or None where there are none."""

    def send(self, raw: bytes, sender: str, recipient: str) -> str:
        """Hand over one message; return the provider's id or raise a SendError."""

    def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery attempt, to be recorded in the ledger."""

    delivery: Delivery
    status: str  # sent, failed, unknown, retry, stopped
    provider_id: str = ""
    reason: str = ""
    retry_at: float = 0.0
    error: SendError | None = None
    temporary: bool = False  # a failure whose cause passes: retries ran out during an outage

    def settlement(self) -> Settlement:
        """What the ledger records of this attempt, in the ledger's own states.

        A retry goes back to pending, due at `retry_at`; a stop goes back to
        pending without counting an attempt, since no message was handed over.
        """
        return Settlement(
            self.delivery.id, _LEDGER_STATUS[self.status], self.provider_id, self.reason,
            self.retry_at, attempted=self.status != "stopped", temporary=self.temporary,
        )


_LEDGER_STATUS = {"sent": "sent", "failed": "failed", "unknown": "unknown", "retry": "pending",
                  "stopped": "pending"}


class Ledger(Protocol):
    """Everything the send needs of the store (implemented by mailer.store.Store): the
    calls of the engine, of the campaign (mailer.send.campaign) and of its dry run."""

    def check_integrity(self) -> None:
        """Refuse a damaged store before the first message of a send."""

    def signer(self, secret: bytes, list_id: str) -> Signer:
        """What signs this store's unsubscribe tokens for the list `list_id`."""

    def find_send(self, issue: str) -> SendRecord | None:
        """The send of `issue`, if it was ever begun."""

    def begin_send(self, issue: str, content_hash: str, subject: str,
                   refused: Mapping[str, str] | None = None) -> SendRecord:
        """Start the send of `issue`, fixing its recipients: every active subscriber,
        but those in `refused` (address → why) suppressed."""

    def active_addresses(self) -> Iterator[str]:
        """The address of every active subscriber."""

    def resume_send(self, send: SendRecord, *, retry_unknown: bool, content_hash: str,
                    retry_failed: bool = False) -> int:
        """Make `send` ready to go on; return how many in-flight rows became unknown."""

    def settle(
        self, settlements: Iterable[Settlement], send_id: int, now_ts: float, limit: int,
    ) -> list[Delivery]:
        """In one transaction: record `settlements`, then mark up to `limit` due pending,
        still-active recipients in flight and return them."""

    def next_retry_at(self, send_id: int) -> float | None:
        """When the earliest pending row falls due, or None when none is pending."""

    def mark_temporary(self, send_id: int, delivery_ids: Iterable[int]) -> None:
        """Record these failures as from a cause that passes (they paused the send together)."""

    def finish_send(self, send_id: int) -> None:
        """Mark the send finished if nobody is left pending or in flight."""

    def send_counts(self, send_id: int) -> SendCounts:
        """Where the recipients of the send stand."""

    def counts(self) -> dict[str, int]:
        """How many subscribers have each status: who a new send would reach."""

    def skipped_subscribers(self) -> Iterator[tuple[str, str]]:
        """(address, status) of everyone a new send would skip, for a dry run."""


@dataclass
class Progress:
    """Running counts of this run, for the progress bar."""

    sent: int = 0
    failed: int = 0
    unknown: int = 0
    retried: int = 0
    rate: float = 0.0


@dataclass
class RunResult:
    """How a run ended: the counts of this run and why it stopped, if it did."""

    progress: Progress
    stopped: str = ""
    interrupted: bool = False
    paused: bool = False  # by a run of `max_failures` failures in a row
    last_errors: list[str] = field(default_factory=list)


class RateLimiter:
    """A token bucket: `rate` messages a second on average, bursts up to `burst`.

    Halves the rate on throttling and recovers additively on success, the
    way TCP shares a link: the provider's limit is found without being
    hammered.
    """

    def __init__(self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None],
                 minimum: float = 0.5, burst: int = 1) -> None:
        self.ceiling = rate
        self.rate = rate
        self.minimum = min(minimum, rate)
        self.burst = max(1, burst)
        self.clock = clock
        self.sleep = sleep
        self.tokens = 1.0
        self.last = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now

    def take(self, wanted: int) -> int:
        """Up to `wanted` slots: those free now, or the next one after waiting for it."""
        if wanted < 1:
            return 0
        self._refill()
        if self.tokens < 1:
            self.sleep((1 - self.tokens) / self.rate)
            self._refill()
        count = max(1, min(wanted, int(self.tokens)))
        self.tokens -= count
        return count

    def acquire(self) -> None:
        """Wait for one slot."""
        self.take(1)

    def slow_down(self) -> None:
        self.rate = max(self.minimum, self.rate / 2)

    def recover(self) -> None:
        """Additive increase: a twentieth of the ceiling per success, up to it."""
        self.rate = min(self.ceiling, self.rate + self.ceiling / 20)


class Sender:
    """Sends one send's pending deliveries through a transport."""

    def __init__(
        self,
        ledger: Ledger,
        transport: Transport,
        template: MessageTemplate,
        *,
        send_id: int,
        signer: Signer,
        rate: float,
        concurrency: int,
        max_failures: int,
        quota_left: float = float("inf"),
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        jitter: Callable[[float, float], float] = random.uniform,
        on_progress: Callable[[Progress], None] = lambda progress: None,
    ) -> None:
        self._stop = threading.Event()
        # The failures since the last message that went through: so many of them
        # pause the send, and their provider's failures count as temporary.
        self._failures_in_a_row: list[Outcome] = []
        # By default waiting ends early on Ctrl-C, so a backoff never holds up the stop.
        sleep = sleep or self._stop.wait
        self.ledger = ledger
        self.transport = transport
        self.template = template
        self.send_id = send_id
        self.signer = signer
        self.concurrency = concurrency
        self.max_failures = max_failures
        self.quota_left = quota_left
        self.wall_clock = wall_clock
        self.sleep = sleep
        self.jitter = jitter
        self.limiter = RateLimiter(rate, clock, sleep, burst=concurrency)
        self.on_progress = on_progress
        settings = template.settings
        self.sender_address = settings.sender.address
        self.unsubscribe_base = settings.unsubscribe.url

    def request_stop(self) -> None:
        """Stop claiming; finish and record what is in flight (what Ctrl-C does)."""
        self._stop.set()

    def recipient(self, delivery: Delivery) -> Recipient:
        """The per-recipient values of `delivery`, with its own signed token."""
        token = self.signer.issue(delivery.subscriber_id, self.send_id)
        return Recipient(delivery.email, delivery.name, unsubscribe_url(self.unsubscribe_base, token))

    def deliver(self, delivery: Delivery) -> Outcome:
        """Build and hand over one message; never raises, the outcome says it all."""
        try:
            raw = self.template.build(self.recipient(delivery), new_envelope(self.template.settings))
        except HeaderError as exc:
            return Outcome(delivery, "failed", reason=f"refused: {exc}")
        except Exception as exc:  # a bug: stop before it reaches everybody
            return Outcome(delivery, "stopped", reason=f"could not build the message: {exc!r}")
        try:
            provider_id = self.transport.send(raw, self.sender_address, delivery.email)
        except UnknownOutcome as exc:
            return Outcome(delivery, "unknown", reason=str(exc), error=exc)
        except AccountSendError as exc:
            return Outcome(delivery, "stopped", reason=str(exc), error=exc)
        except RetryableSendError as exc:
            attempts = delivery.attempts + 1
            if attempts >= MAX_ATTEMPTS:
                return Outcome(delivery, "failed", reason=f"gave up after {attempts} attempts: {exc}",
                               error=exc, temporary=True)
            delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** delivery.attempts)
            retry_at = self.wall_clock() + self.jitter(delay / 2, delay)
            return Outcome(delivery, "retry", reason=str(exc), retry_at=retry_at, error=exc)
        except PermanentSendError as exc:
            return Outcome(delivery, "failed", reason=str(exc), error=exc)
        except SendError as exc:
            return Outcome(delivery, "failed", reason=str(exc), error=exc)
        except Exception as exc:  # a bug in a transport: nobody knows what it sent
            return Outcome(delivery, "unknown", reason=f"unexpected error: {exc!r}",
                           error=AccountSendError(f"the transport failed unexpectedly: {exc!r}"))
        return Outcome(delivery, "sent", provider_id=provider_id)

    def run(self) -> RunResult:
        """Send until nothing is pending, or a stop; Ctrl-C finishes what is in flight.

        Each turn records the answers that came back and claims their
        replacements in one transaction, so the ledger costs one commit per
        batch of answers rather than two per message.
        """
        result = RunResult(Progress())
        inflight: dict[Future[Outcome], Delivery] = {}
        answers: list[Outcome] = []
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="send") as pool:
            while True:
                if self._stop.is_set() and not result.interrupted:
                    result.interrupted = True
                    result.stopped = result.stopped or "interrupted"
                try:
                    wanted = 0 if result.stopped else self._slots(len(inflight), result)
                    claimed = self.ledger.settle(
                        [answer.settlement() for answer in answers], self.send_id, self.wall_clock(),
                        wanted,
                    ) if answers or wanted else []
                    answers = []
                    for delivery in claimed:
                        self.quota_left -= 1
                        inflight[pool.submit(self.deliver, delivery)] = delivery
                    if not inflight:
                        if result.stopped:
                            break
                        due = self.ledger.next_retry_at(self.send_id)
                        if due is None:
                            break
                        self.sleep(max(0.0, min(due - self.wall_clock(), BACKOFF_CAP)))
                        continue
                    done, _ = wait(inflight, timeout=1.0, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    result.interrupted = True
                    result.stopped = result.stopped or "interrupted"
                    continue
                answers = [future.result() for future in done]
                for future in done:
                    del inflight[future]
                if answers:
                    self._account(answers, result)
        if result.paused:
            # So many failures in a row say the provider or the setup failed, not
            # each of those readers: they may be sent to again once it is fixed.
            # Only the provider's answers: a refusal of ours (a name that cannot
            # go in a header) is the recipient's, however many came before it.
            self.ledger.mark_temporary(self.send_id, [
                failure.delivery.id for failure in self._failures_in_a_row if failure.error is not None])
        return result

    def _slots(self, busy: int, result: RunResult) -> int:
        """How many deliveries to claim now: free workers, within quota and rate."""
        free = self.concurrency - busy
        if free <= 0:
            return 0
        if self.quota_left < 1:
            if self.ledger.next_retry_at(self.send_id) is not None:
                result.stopped = str(QuotaExceeded(
                    "the 24-hour sending quota is used up",
                    hint="it is a rolling window: run the same command again later; "
                         "within 24 hours all of it is free again"))
            return 0
        return self.limiter.take(int(min(free, self.quota_left)))

    def _account(self, outcomes: list[Outcome], result: RunResult) -> None:
        """Update counts, rate, the failures in a row and stop reasons from `outcomes`."""
        progress = result.progress
        for outcome in outcomes:
            if outcome.status == "sent":
                progress.sent += 1
                self._failures_in_a_row.clear()
                self.limiter.recover()
            elif outcome.status == "failed":
                progress.failed += 1
                self._failures_in_a_row.append(outcome)
                result.last_errors = (result.last_errors + [outcome.reason])[-3:]
            elif outcome.status == "unknown":
                progress.unknown += 1
                if isinstance(outcome.error, AccountSendError):
                    result.stopped = result.stopped or str(outcome.error)
            elif outcome.status == "retry":
                progress.retried += 1
                self.quota_left += 1
                if isinstance(outcome.error, Throttled):
                    self.limiter.slow_down()
            elif outcome.status == "stopped":
                self.quota_left += 1
                result.stopped = result.stopped or outcome.reason
        streak = len(self._failures_in_a_row)
        if streak >= self.max_failures and not result.stopped:
            last = result.last_errors[-1] if result.last_errors else ""
            result.stopped = f"paused after {streak} failures in a row (last: {last})"
            result.paused = True
        progress.rate = self.limiter.rate
        self.on_progress(progress)
