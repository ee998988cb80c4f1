"""The schema of the store, one migration per version, kept apart from the queries.

The schema is versioned with ``PRAGMA user_version``. Each entry of
`MIGRATIONS` takes the store from one version to the next; adding a table is
one new function appended to that list. `StoreConnection` runs them when a
store is opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def _v1_subscribers(db: sqlite3.Connection) -> None:
    """Subscribers, their event history, and suppressions of erased addresses."""
    # One statement at a time: executescript would commit the migration's
    # transaction before running.
    for statement in (
        """CREATE TABLE subscribers (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            email       TEXT NOT NULL,
            email_key   TEXT NOT NULL UNIQUE,
            name        TEXT NOT NULL DEFAULT '',
            status      TEXT NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complained')),
            tags        TEXT NOT NULL DEFAULT '[]',
            attributes  TEXT NOT NULL DEFAULT '{}',
            source      TEXT NOT NULL DEFAULT '',
            created_at  TEXT NOT NULL,
            updated_at  TEXT NOT NULL
        )""",
        "CREATE INDEX subscribers_status ON subscribers (status)",
        """CREATE TABLE events (
            id            INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
            kind          TEXT NOT NULL,
            at            TEXT NOT NULL,
            reason        TEXT NOT NULL DEFAULT '',
            actor         TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX events_subscriber ON events (subscriber_id)",
        """CREATE TABLE suppressions (
            hash    TEXT PRIMARY KEY,
            reason  TEXT NOT NULL,
            at      TEXT NOT NULL
        ) WITHOUT ROWID""",
    ):
        db.execute(statement)


def _v2_send_ledger(db: sqlite3.Connection) -> None:
    """The send ledger: one row per send of an issue, one per recipient of it."""
    for statement in (
        """CREATE TABLE sends (
            id            INTEGER PRIMARY KEY,
            issue         TEXT NOT NULL UNIQUE,
            content_hash  TEXT NOT NULL,
            subject       TEXT NOT NULL,
            started_at    TEXT NOT NULL,
            finished_at   TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE deliveries (
            id             INTEGER PRIMARY KEY,
            send_id        INTEGER NOT NULL REFERENCES sends (id) ON DELETE CASCADE,
            subscriber_id  INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
            email          TEXT NOT NULL,
            status         TEXT NOT NULL CHECK (status IN
                           ('pending', 'inflight', 'sent', 'failed', 'suppressed', 'unknown')),
            attempts       INTEGER NOT NULL DEFAULT 0,
            retry_at       REAL NOT NULL DEFAULT 0,
            provider_id    TEXT NOT NULL DEFAULT '',
            reason         TEXT NOT NULL DEFAULT '',
            updated_at     TEXT NOT NULL,
            UNIQUE (send_id, subscriber_id)
        )""",
        "CREATE INDEX deliveries_queue ON deliveries (send_id, status, id)",
        "CREATE INDEX deliveries_provider ON deliveries (provider_id) WHERE provider_id != ''",
    ):
        db.execute(statement)


def _v3_feedback(db: sqlite3.Connection) -> None:
    """What came back from readers and mailbox providers: one row per event applied.

    `key` makes applying idempotent: an SQS message is deleted only after its
    effect is committed, so a run killed in between sees it again, and finds
    its key. The key is a hash, so no address survives an erasure in it.
    """
    for statement in (
        """CREATE TABLE feedback (
            id             INTEGER PRIMARY KEY,
            key            TEXT NOT NULL UNIQUE,
            kind           TEXT NOT NULL,
            subscriber_id  INTEGER REFERENCES subscribers (id) ON DELETE CASCADE,
            delivery_id    INTEGER REFERENCES deliveries (id) ON DELETE SET NULL,
            at             TEXT NOT NULL
        )""",
        "CREATE INDEX feedback_subscriber ON feedback (subscriber_id, kind)",
        # What became of each sent message, as far as anyone told us.
        "ALTER TABLE deliveries ADD COLUMN feedback TEXT NOT NULL DEFAULT ''",
    ):
        db.execute(statement)


def _v4_temporary_failures(db: sqlite3.Connection) -> None:
    """Which failed deliveries failed for a reason that passes (a provider's outage).

    `send-issue --retry-failed` sends to those again and to nobody a
    provider refused for good. Failures recorded before this version that
    ran out of retries are marked as what they were.
    """
    db.execute("ALTER TABLE deliveries ADD COLUMN temporary INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE deliveries SET temporary = 1 WHERE status = 'failed' AND reason LIKE 'gave up after %'")


# Version N of the schema is what the first N functions build. Append only.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _v1_subscribers, _v2_send_ledger, _v3_feedback, _v4_temporary_failures,
]
