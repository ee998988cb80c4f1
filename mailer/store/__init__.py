"""The subscriber store: one SQLite file per workspace, and the only SQL in mailer.

``subscribers/mailer.db`` holds the subscribers, the history of what happened
to each (events), the hashed addresses of people whose data was erased
(suppressions), the send ledger and the feedback applied to it. Each domain
has its module here, and `Store` is all of them over one connection:

- `schema`: the migrations, one function per schema version;
- `connection`: opening the file, transactions, helpers every row shares;
- `subscribers`: reading subscribers and changing one at a time;
- `ledger`: the sends of issues and their deliveries;
- `feedback`: unsubscribes by token, bounces, complaints;
- `imports` and `import_rows`: many subscribers at once from one file;
- `facts`: the store's own id, which its unsubscribe tokens are signed over.
"""

from __future__ import annotations

from .connection import (
    default_actor,
    encode_attributes,
    encode_tags,
    now,
    suppression_hash,
)
from .facts import FactQueries
from .feedback import FEEDBACK_KINDS, Feedback, FeedbackQueries
from .imports import ImportBatch, ImportCounts, ImportQueries, StagedRow
from .ledger import (
    DELIVERY_STATUSES,
    Delivery,
    LedgerQueries,
    SendCounts,
    SendRecord,
    Settlement,
)
from .schema import MIGRATIONS
from .subscribers import STATUSES, STICKY, Event, Subscriber

__all__ = [
    "DELIVERY_STATUSES", "FEEDBACK_KINDS", "MIGRATIONS", "STATUSES", "STICKY", "Delivery", "Event",
    "Feedback", "ImportBatch", "ImportCounts", "SendCounts", "SendRecord", "Settlement", "StagedRow",
    "Store", "Subscriber", "default_actor", "encode_attributes", "encode_tags", "now",
    "suppression_hash",
]


class Store(FeedbackQueries, LedgerQueries, ImportQueries, FactQueries):
    """An open subscriber store. Use `Store.open`, and close it (or use `with`).

    One connection, so that one transaction can span domains (an erasure
    suppresses the person's pending deliveries; feedback changes a
    subscriber and a delivery at once). The queries of each domain are a
    class of their own module, and `Store` is their union.
    """
