"""Applying what the feedback queue holds to the store, losing nothing.

A queue message is deleted only once its effect is committed, and each
report carries a key the store remembers, so a run killed at any point
loses nothing and a message read twice changes nothing.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import NotUnderstood
from ..store import Store
from ..tokens import Signer
from .notifications import parse


@dataclass(frozen=True)
class QueueMessage:
    """One message received from the queue."""

    id: str
    receipt: str
    body: str


class Queue(Protocol):
    """What sync needs of a queue (implemented by mailer.feedback.sqs.SqsQueue)."""

    def receive(self, wait_seconds: int) -> list[QueueMessage]:
        """Up to ten messages, waiting up to `wait_seconds` for the first."""

    def delete(self, message: QueueMessage) -> None:
        """Remove a message whose effect is committed."""


@dataclass
class SyncReport:
    """What a sync did: messages read, outcomes of their items, and the messages kept."""

    messages: int = 0
    kinds: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    changes: Counter = field(default_factory=Counter)
    kept: list[tuple[str, str]] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Items applied by an earlier run: SQS delivers a message more than once."""
        return self.outcomes["duplicate"]

    @property
    def about_nobody(self) -> int:
        """Items about an address that is not on the list."""
        return self.outcomes["nobody"]


def sync(store: Store, queue: Queue, signer: Signer, *, transient_limit: int, actor: str,
         watch: bool = False, stop: threading.Event | None = None,
         on_message: Callable[[QueueMessage, str], None] = lambda message, line: None) -> SyncReport:
    """Apply every message on `queue` to `store`; with `watch`, keep polling until `stop`.

    Without `watch` it ends when a receive brings nothing new: messages kept
    from this run stay invisible for the queue's visibility timeout, so they
    are not read twice in one run.
    """
    report = SyncReport()
    seen: set[str] = set()
    stop = stop or threading.Event()
    while not stop.is_set():
        batch = queue.receive(20 if watch else 1)
        fresh = [m for m in batch if m.id not in seen]
        if not fresh and not watch:
            break
        for message in fresh:
            seen.add(message.id)
            report.messages += 1
            try:
                parsed = parse(message.body, signer)
            except NotUnderstood as exc:
                report.kept.append((message.id, str(exc)))
                on_message(message, f"kept {message.id}: {exc}")
                continue
            outcomes = store.apply_feedback(parsed.items, actor=actor, transient_limit=transient_limit)
            # Only now, with the effect committed, may the message go.
            queue.delete(message)
            report.kinds[parsed.kind] += 1
            report.outcomes.update(outcomes)
            # A transient bounce that changes a status is the one that reached the limit.
            report.changes.update({"transient": "bounced"}.get(item.kind, item.kind)
                                  for item, outcome in zip(parsed.items, outcomes) if outcome == "applied")
            on_message(message, f"{parsed.kind}: {', '.join(outcomes) or 'nothing to do'}")
    return report
