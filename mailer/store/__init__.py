"""The subscriber store: one SQLite file per workspace, and the only SQL in mailer.

``subscribers/mailer.db`` holds the subscribers, the history of what happened
to each (events), the hashed addresses of people whose data was erased
(suppressions), and, in later schema versions, the send ledger. It runs in
WAL mode, so a send can read while an unsubscribe writes, and every change is
one transaction: a crash leaves the store as it was before the command.

Status is sticky. Someone who unsubscribed, bounced or complained stays so,
whatever a later import or `add` says, unless the caller passes
``resubscribe=True``; then an event records who did it and when. The rules
live here, not in the importer, so that no path into the store can break them.

The schema is versioned with ``PRAGMA user_version``. Each entry of
`MIGRATIONS` takes the store from one version to the next; adding a table is
one new function appended to that list.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import itertools
import json
import socket
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from json.encoder import encode_basestring
from pathlib import Path
from typing import NamedTuple

from ..errors import StatusError, StoreBusy, StoreError, SubscriberNotFound
from ..subscribers.addresses import Address

STATUSES = ("active", "unsubscribed", "bounced", "complained")
STICKY = frozenset(STATUSES[1:])

# When two rows of one file disagree on the status, the stronger one wins:
# a complaint outweighs a bounce, a bounce an unsubscribe, all of them active.
_STRENGTH = {"active": 0, "unsubscribed": 1, "bounced": 2, "complained": 3}

_CHUNK = 5000
# How long an import waits for the write lock before it stages every row instead.
_LOCK_WAIT_MS = 1000
# New subscribers written per INSERT: one statement per row would pay the
# status CHECK and the id sequence once a row. 99 rows of 10 values and the
# first parameters stay within SQLite's oldest limit of 999 parameters.
_ROWS_PER_INSERT = 99


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


# Version N of the schema is what the first N functions build. Append only.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1_subscribers, _v2_send_ledger, _v3_feedback]


@dataclass(frozen=True)
class Subscriber:
    """One person on the list, as stored."""

    id: int
    email: str
    name: str
    status: str
    tags: tuple[str, ...]
    attributes: dict
    source: str
    created_at: str
    updated_at: str

    def as_dict(self) -> dict:
        return {
            "email": self.email, "name": self.name, "status": self.status,
            "tags": list(self.tags), "attributes": self.attributes, "source": self.source,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Event:
    """Something that happened to a subscriber: what, when, why, and by whom."""

    kind: str
    at: str
    reason: str
    actor: str


class StagedRow(NamedTuple):
    """One row of an import, validated, as the importer hands it to the store.

    A named tuple, not a dataclass. The importer itself hands over plain
    tuples in the form `StagedRow.values` gives (`ImportBatch.stage_values`).
    """

    line: int
    address: Address
    name: str = ""
    status: str = "active"
    reason: str = ""
    tags: tuple[str, ...] = ()
    attributes: dict = {}  # never mutated by the store
    source: str = ""
    created_at: str = ""

    def values(self) -> tuple:
        """The row as `ImportBatch.stage_values` takes it: line, key, email, name,
        status, reason, tags (`encode_tags`), attributes (`encode_attributes`),
        source, created_at ('' when not known)."""
        return (
            self.line, self.address.key, self.address.email, self.name, self.status, self.reason,
            encode_tags(self.tags), encode_attributes(self.attributes), self.source,
            self.created_at,
        )


@dataclass
class ImportCounts:
    """What applying an import did, row by row; the fields add up to the rows staged."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    merged: int = 0


DELIVERY_STATUSES = ("pending", "inflight", "sent", "failed", "suppressed", "unknown")
_SEND_COLUMNS = "id, issue, content_hash, subject, started_at, finished_at"  # SendRecord's fields

# What became of a sent message, weakest first: a later, stronger report wins
# (a message can be delivered and then complained about, never the reverse).
FEEDBACK_KINDS = ("delivered", "transient", "unsubscribed", "bounced", "complained")
_FEEDBACK_RANK = {kind: rank for rank, kind in enumerate(("", *FEEDBACK_KINDS))}


class Feedback(NamedTuple):
    """One thing a reader or a mailbox provider told us, as mailer.feedback hands it over.

    The store finds whom it concerns: the ledger row of `message_id` (the SES
    MessageId), else the token's `subscriber_id` and `send_id`, else the
    subscriber with `email_key`.
    """

    key: str
    kind: str  # one of FEEDBACK_KINDS
    reason: str
    email_key: str = ""
    message_id: str = ""
    subscriber_id: int = 0
    send_id: int = 0


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

    def __getitem__(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def open(self) -> int:
        """Recipients the send still owes an attempt: pending or in flight."""
        return self["pending"] + self["inflight"]


def now() -> str:
    """The current time as stored: ISO 8601, UTC, to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_actor() -> str:
    """Who is running this command, for the event history: user@host."""
    try:
        user = getpass.getuser()
    except Exception:  # getuser raises OSError or KeyError without a login name
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def suppression_hash(address: Address) -> str:
    """What is kept of an erased address: enough to recognise it, not to read it."""
    return hashlib.sha256(address.key.encode("utf-8")).hexdigest()


class Store:
    """An open subscriber store. Use `Store.open`, and close it (or use `with`)."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    def open(cls, path: Path, *, busy_timeout: float = 30.0) -> Store:
        """Open (creating if needed) the store at `path` and bring its schema up to date.

        `busy_timeout` is how long a write waits for another command's write to
        finish before giving up with `StoreBusy`.
        """
        path = Path(path)
        if path.exists() and not path.is_file():
            raise StoreError("is not a file", path=path, hint="move it away, or fix [subscribers]")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the subscriber store: {_why(exc)}", path=path) from None
        store = cls(db, path)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = %d" % int(busy_timeout * 1000))
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                with store._translate():
                    db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            # Erased subscribers must not linger in free pages of the file.
            db.execute("PRAGMA secure_delete = ON")
            db.execute("PRAGMA temp_store = FILE")
            # Staged rows are ours alone; zeroing them when dropped only costs time.
            db.execute("PRAGMA temp.secure_delete = OFF")
            db.execute("PRAGMA cache_size = -16000")
            db.create_function("mailer_hash", 1, _hash_key, deterministic=True)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreError(
                f"not a usable subscriber store: {_why(exc)}", path=path,
                hint="restore it from a backup, or move it away to start a new one",
            ) from None
        except BaseException:
            db.close()
            raise
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        if self.schema_version == len(MIGRATIONS):
            return
        with self._write():
            # Checked again under the lock: another process may have migrated.
            version = self.schema_version
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"schema version {version} is newer than this mailer knows ({len(MIGRATIONS)})",
                    path=self.path, hint="upgrade mailer",
                )
            for number in range(version, len(MIGRATIONS)):
                MIGRATIONS[number](self._db)
                self._db.execute(f"PRAGMA user_version = {number + 1}")

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """SQLite's errors as one-line store errors; a lock held too long as `StoreBusy`."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if "locked" in message or "busy" in message:
                raise StoreBusy(
                    "another command is writing to the subscriber store", path=self.path,
                    hint="try again when it has finished",
                ) from None
            raise StoreError(f"the subscriber store failed: {message}", path=self.path) from None

    @contextmanager
    def _write(self, *, commit: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) so that it cannot
        deadlock halfway; rolled back on any error, or when `commit` is false."""
        with self._translate():
            self._db.execute("BEGIN IMMEDIATE")
        try:
            with self._translate():
                yield self._db
        except BaseException:
            _rollback(self._db)
            raise
        with self._translate():
            self._db.execute("COMMIT" if commit else "ROLLBACK")

    # Reading ---------------------------------------------------------------

    def get(self, address: Address) -> Subscriber | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM subscribers WHERE email_key = ?", (address.key,)
        ).fetchone()
        return _subscriber(row) if row else None

    def require(self, address: Address) -> Subscriber:
        """The subscriber with `address`, or `SubscriberNotFound`."""
        subscriber = self.get(address)
        if subscriber is None:
            hint = "their data was erased on request" if self.is_suppressed(address) else None
            raise SubscriberNotFound(f"no subscriber {address.email}", hint=hint)
        return subscriber

    def history(self, subscriber: Subscriber) -> list[Event]:
        """Every event of `subscriber`, oldest first."""
        rows = self._db.execute(
            "SELECT kind, at, reason, actor FROM events WHERE subscriber_id = ? ORDER BY id",
            (subscriber.id,),
        )
        return [Event(*row) for row in rows]

    def subscribers(self, *, status: str | None = None, tag: str | None = None) -> Iterator[Subscriber]:
        """Every subscriber (with `status`, with `tag`) in the order they joined, streamed."""
        query = f"SELECT {_COLUMNS} FROM subscribers WHERE 1"
        params: list[str] = []
        if status is not None:
            query += " AND status = ?"
            params.append(status)
        if tag is not None:
            query += " AND EXISTS (SELECT 1 FROM json_each(subscribers.tags) WHERE value = ?)"
            params.append(tag)
        cursor = self._db.execute(query + " ORDER BY id", params)
        while rows := cursor.fetchmany(1000):
            yield from map(_subscriber, rows)

    def counts(self) -> dict[str, int]:
        """How many subscribers have each status, and how many addresses were erased."""
        counts = dict.fromkeys(STATUSES, 0)
        counts.update(self._db.execute("SELECT status, count(*) FROM subscribers GROUP BY status"))
        counts["erased"] = self._db.execute("SELECT count(*) FROM suppressions").fetchone()[0]
        return counts

    def is_suppressed(self, address: Address) -> bool:
        return self._db.execute(
            "SELECT 1 FROM suppressions WHERE hash = ?", (suppression_hash(address),)
        ).fetchone() is not None

    # Changing one subscriber -----------------------------------------------

    def add(
        self, address: Address, name: str = "", *, actor: str, source: str = "command line",
        resubscribe: bool = False,
    ) -> tuple[str, Subscriber]:
        """Subscribe `address`: 'added', 'updated', 'unchanged' or 'resubscribed', and the result.

        Someone unsubscribed, bounced, complained or erased is only subscribed
        again with `resubscribe`, and the history records it.
        """
        when = now()
        with self._write() as db:
            if self.is_suppressed(address):
                if not resubscribe:
                    raise StatusError(
                        f"{address.email} was erased on request and is suppressed",
                        hint="pass --resubscribe if they asked to join again",
                    )
                db.execute("DELETE FROM suppressions WHERE hash = ?", (suppression_hash(address),))
            current = self.get(address)
            if current is None:
                cursor = db.execute(
                    "INSERT INTO subscribers (email, email_key, name, source, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (address.email, address.key, name, source, when, when),
                )
                reason = "subscribed again after erasure" if resubscribe else ""
                self._event(cursor.lastrowid, "subscribed", when, reason, actor)
                return "added", self.require(address)
            if current.status in STICKY:
                if not resubscribe:
                    raise StatusError(
                        f"{current.email} is {current.status}",
                        hint="pass --resubscribe if they asked to join again",
                    )
                db.execute(
                    "UPDATE subscribers SET status = 'active', name = ?, updated_at = ? WHERE id = ?",
                    (name or current.name, when, current.id),
                )
                self._event(current.id, "resubscribed", when, f"was {current.status}", actor)
                return "resubscribed", self.require(address)
            if name and name != current.name:
                db.execute(
                    "UPDATE subscribers SET name = ?, updated_at = ? WHERE id = ?",
                    (name, when, current.id),
                )
                self._event(current.id, "updated", when, "name", actor)
                return "updated", self.require(address)
            return "unchanged", current

    def set_status(
        self, address: Address, status: str, *, actor: str, reason: str = "",
    ) -> tuple[bool, Subscriber]:
        """Mark `address` unsubscribed, bounced or complained; False if it already was.

        Not for making anyone active again: that is `add(..., resubscribe=True)`.
        """
        if status not in STICKY:
            raise ValueError(f"set_status takes one of {sorted(STICKY)}, not {status!r}")
        when = now()
        with self._write() as db:
            current = self.require(address)
            if current.status == status:
                return False, current
            db.execute(
                "UPDATE subscribers SET status = ?, updated_at = ? WHERE id = ?",
                (status, when, current.id),
            )
            self._event(current.id, status, when, reason, actor)
            return True, self.require(address)

    def erase(self, address: Address, *, actor: str) -> None:
        """Delete everything about `address` and keep only a hash, so it is never re-imported.

        For erasure requests (GDPR art. 17): the row, its history and anything
        else keyed to it go; the suppression records when and by whom.
        """
        with self._write() as db:
            current = self.require(address)
            db.execute(
                "UPDATE deliveries SET email = '', updated_at = ?, status = CASE status"
                " WHEN 'pending' THEN 'suppressed' ELSE status END, reason = CASE status"
                " WHEN 'pending' THEN 'erased on request' ELSE reason END"
                " WHERE subscriber_id = ?",
                (now(), current.id),
            )
            db.execute("DELETE FROM subscribers WHERE id = ?", (current.id,))
            db.execute(
                "INSERT OR REPLACE INTO suppressions (hash, reason, at) VALUES (?, ?, ?)",
                (suppression_hash(address), f"erased on request by {actor}", now()),
            )
        # Nor in older page images in the write-ahead log.
        with self._translate():
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _event(self, subscriber_id: int, kind: str, at: str, reason: str, actor: str) -> None:
        self._db.execute(
            "INSERT INTO events (subscriber_id, kind, at, reason, actor) VALUES (?, ?, ?, ?, ?)",
            (subscriber_id, kind, at, reason, actor),
        )


    # The send ledger -------------------------------------------------------

    def find_send(self, issue: str) -> SendRecord | None:
        row = self._db.execute(
            f"SELECT {_SEND_COLUMNS} FROM sends WHERE issue = ?",
            (issue,),
        ).fetchone()
        return SendRecord(*row) if row else None

    def sends(self) -> list[SendRecord]:
        """Every send, oldest first."""
        rows = self._db.execute(
            f"SELECT {_SEND_COLUMNS} FROM sends ORDER BY id")
        return [SendRecord(*row) for row in rows]

    def begin_send(self, issue: str, content_hash: str, subject: str) -> SendRecord:
        """Start the send of `issue`, fixing its recipients: every active subscriber
        is pending, everybody else suppressed with their status as the reason."""
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
        return self.find_send(issue)

    def resume_send(self, send: SendRecord, *, retry_unknown: bool, content_hash: str) -> int:
        """Make `send` ready to go on; return how many in-flight rows became unknown.

        A row still in flight was handed to the transport by a run that never
        recorded the answer: it may have been delivered, so it becomes
        unknown, and is only tried again with `retry_unknown`.
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
            db.execute("UPDATE sends SET content_hash = ?, finished_at = '' WHERE id = ?",
                       (content_hash, send.id))
        return interrupted

    def settle(self, outcomes, send_id: int, now_ts: float, limit: int) -> list:
        """Record what became of `outcomes`, then claim up to `limit` recipients due
        by `now_ts`, marked in flight — one transaction for both.

        Whoever left the list since the send began (unsubscribed, bounced,
        complained, erased) is suppressed here instead, right before their turn.
        """
        from ..send.engine import Delivery

        when = now()
        claimed: list[Delivery] = []
        with self._write() as db:
            for outcome in outcomes:
                status = {"retry": "pending", "stopped": "pending"}.get(outcome.status, outcome.status)
                tried = 0 if outcome.status == "stopped" else 1
                db.execute(
                    "UPDATE deliveries SET status = ?, provider_id = ?, reason = ?, retry_at = ?,"
                    " attempts = attempts + ?, updated_at = ? WHERE id = ? AND status = 'inflight'",
                    (status, outcome.provider_id, outcome.reason, outcome.retry_at, tried, when,
                     outcome.delivery.id),
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

    def next_retry_at(self, send_id: int) -> float | None:
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

    def skipped_subscribers(self) -> Iterator[tuple[str, str]]:
        """(address, status) of everyone a new send would skip."""
        yield from self._db.execute(
            "SELECT email, status FROM subscribers WHERE status != 'active' ORDER BY id")

    def send_counts(self, send_id: int) -> SendCounts:
        counts = dict.fromkeys(DELIVERY_STATUSES, 0)
        counts.update(self._db.execute(
            "SELECT status, count(*) FROM deliveries WHERE send_id = ? GROUP BY status", (send_id,)))
        reasons = self._db.execute(
            "SELECT reason, count(*) FROM deliveries WHERE send_id = ? AND status = 'failed'"
            " GROUP BY reason ORDER BY count(*) DESC, reason", (send_id,)).fetchall()
        return SendCounts(counts, [(reason, n) for reason, n in reasons])

    # Feedback: unsubscribes, bounces, complaints -----------------------------

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
        return _subscriber(row) if row else None

    def send_by_id(self, send_id: int) -> SendRecord | None:
        row = self._db.execute(
            f"SELECT {_SEND_COLUMNS} FROM sends WHERE id = ?",
            (send_id,),
        ).fetchone()
        return SendRecord(*row) if row else None

    def unsubscribe_by_id(
        self, subscriber_id: int, send_id: int, *, reason: str, actor: str,
    ) -> tuple[bool, Subscriber | None]:
        """Unsubscribe the reader a token names; (False, …) if they already were not active.

        Repeating it changes nothing, so a mail client that posts the
        one-click request twice, or a reader who clicks again, is harmless.
        A bounce or complaint is kept: it says more than an unsubscribe.
        """
        when = now()
        with self._write() as db:
            current = self.subscriber_by_id(subscriber_id)
            if current is None or current.status != "active":
                return False, current
            db.execute("UPDATE subscribers SET status = 'unsubscribed', updated_at = ? WHERE id = ?",
                       (when, subscriber_id))
            self._event(subscriber_id, "unsubscribed", when, reason, actor)
            row = db.execute("SELECT id, feedback FROM deliveries WHERE send_id = ? AND subscriber_id = ?",
                             (send_id, subscriber_id)).fetchone()
            if row is not None:
                self._mark_delivery(row[0], row[1], "unsubscribed")
            return True, self.subscriber_by_id(subscriber_id)

    def resubscribe_by_id(self, subscriber_id: int, *, reason: str, actor: str) -> tuple[bool, Subscriber | None]:
        """Undo an unsubscribe for the reader a token names; never a bounce or complaint."""
        when = now()
        with self._write() as db:
            current = self.subscriber_by_id(subscriber_id)
            if current is None or current.status != "unsubscribed":
                return False, current
            db.execute("UPDATE subscribers SET status = 'active', updated_at = ? WHERE id = ?",
                       (when, subscriber_id))
            self._event(subscriber_id, "resubscribed", when, reason, actor)
            return True, self.subscriber_by_id(subscriber_id)

    def apply_feedback(self, items: Iterable[Feedback], *, actor: str, transient_limit: int) -> list[str]:
        """Apply `items` in one transaction; say what each did.

        Outcomes: 'applied' (the subscriber's status changed), 'counted' (a
        transient bounce below `transient_limit`, or a report that changed no
        status), 'delivered', 'duplicate' (its key was applied before) and
        'nobody' (it concerns no subscriber of this list). Every item but a
        duplicate is remembered by its key, so applying the same items again
        does nothing.
        """
        when = now()
        outcomes = []
        with self._write() as db:
            for item in items:
                if item.kind not in FEEDBACK_KINDS:
                    raise ValueError(f"unknown feedback kind {item.kind!r}")
                if db.execute("SELECT 1 FROM feedback WHERE key = ?", (item.key,)).fetchone():
                    outcomes.append("duplicate")
                    continue
                delivery = self._feedback_delivery(item)
                subscriber_id = (delivery[1] if delivery else None) or item.subscriber_id or None
                if subscriber_id is None and item.email_key:
                    row = db.execute("SELECT id FROM subscribers WHERE email_key = ?",
                                     (item.email_key,)).fetchone()
                    subscriber_id = row[0] if row else None
                current = self.subscriber_by_id(subscriber_id) if subscriber_id else None
                db.execute(
                    "INSERT INTO feedback (key, kind, subscriber_id, delivery_id, at) VALUES (?, ?, ?, ?, ?)",
                    (item.key, item.kind, current.id if current else None,
                     delivery[0] if delivery else None, when),
                )
                if delivery is not None:
                    self._mark_delivery(delivery[0], delivery[2], item.kind)
                if current is None:
                    outcomes.append("nobody")
                    continue
                outcomes.append(self._feedback_status(current, item, when, actor, transient_limit))
        return outcomes

    def _feedback_delivery(self, item: Feedback) -> tuple[int, int | None, str] | None:
        """(id, subscriber_id, feedback) of the ledger row `item` is about, if any."""
        if item.message_id:
            row = self._db.execute(
                "SELECT id, subscriber_id, feedback FROM deliveries WHERE provider_id = ?",
                (item.message_id,)).fetchone()
            if row is not None:
                return row
        if item.send_id and item.subscriber_id:
            return self._db.execute(
                "SELECT id, subscriber_id, feedback FROM deliveries WHERE send_id = ? AND subscriber_id = ?",
                (item.send_id, item.subscriber_id)).fetchone()
        return None

    def _mark_delivery(self, delivery_id: int, current: str, kind: str) -> None:
        if _FEEDBACK_RANK[kind] > _FEEDBACK_RANK.get(current, 0):
            self._db.execute("UPDATE deliveries SET feedback = ? WHERE id = ?", (kind, delivery_id))

    def _feedback_status(self, current: Subscriber, item: Feedback, when: str, actor: str,
                         transient_limit: int) -> str:
        """Change `current`'s status as `item` asks, inside apply_feedback's transaction."""
        if item.kind == "delivered":
            return "delivered"
        status, reason = item.kind, item.reason
        if item.kind == "transient":
            self._event(current.id, "soft-bounced", when, item.reason, actor)
            count = self.transient_bounces(current.id)
            if count < transient_limit or current.status != "active":
                return "counted"
            status, reason = "bounced", f"{count} transient bounces in a row; last: {item.reason}"
        if _STRENGTH[status] <= _STRENGTH[current.status]:
            return "counted"
        self._db.execute("UPDATE subscribers SET status = ?, updated_at = ? WHERE id = ?",
                         (status, when, current.id))
        self._event(current.id, status, when, reason, actor)
        return "applied"

    def transient_bounces(self, subscriber_id: int) -> int:
        """Transient bounces of `subscriber_id` since their last delivery or resubscription."""
        return self._db.execute(
            "SELECT count(*) FROM feedback WHERE subscriber_id = :id AND kind = 'transient'"
            " AND id > coalesce((SELECT max(id) FROM feedback"
            "                    WHERE subscriber_id = :id AND kind = 'delivered'), 0)"
            " AND at >= coalesce((SELECT max(at) FROM events"
            "                     WHERE subscriber_id = :id AND kind = 'resubscribed'), '')",
            {"id": subscriber_id},
        ).fetchone()[0]

    def feedback_counts(self, send_id: int) -> dict[str, int]:
        """How many messages of a send were reported delivered, bounced, complained about …"""
        counts = dict.fromkeys(FEEDBACK_KINDS, 0)
        counts.update(self._db.execute(
            "SELECT feedback, count(*) FROM deliveries WHERE send_id = ? AND feedback != ''"
            " GROUP BY feedback", (send_id,)))
        return counts

    # Importing many --------------------------------------------------------

    def begin_import(
        self, *, label: str, actor: str, resubscribe: bool = False, direct: bool = True,
    ) -> ImportBatch:
        """Start an import: hand it rows with `ImportBatch.stage`, then `apply` them.

        `direct=False` (a dry run) stages every row and leaves the lock to `apply`.
        """
        return ImportBatch(self, self._db, label=label, actor=actor, resubscribe=resubscribe,
                           direct=direct)


class ImportBatch:
    """One file's rows, applied to the store in one transaction.

    When the first rows come, the import takes the write lock if it can
    within a second, and keeps it to the end: it writes each row whose
    address is new to the store and to the file straight into `subscribers`
    (with its event), and stages the others, repeats and people already in
    the store or erased, in a temporary table that `apply` decides. Copying
    a million staged rows under the lock at the end took longer than
    writing them as they come.

    If another command holds the lock (another import, say), every row is
    staged, which takes no lock, and `apply` waits for the lock and decides
    them all. Either way every row is decided against the store as it is
    once the lock is held, so two imports at once apply one after the other,
    and each report describes what its own transaction did.

    Rows repeating an address are merged before anything is compared with
    the store (a repeat of a row written straight away is merged into it), so
    that importing the same file twice changes nothing the second time,
    whatever order the repeats come in.
    """

    def __init__(
        self, store: Store, db: sqlite3.Connection, *, label: str, actor: str, resubscribe: bool,
        direct: bool = True,
    ) -> None:
        self._store = store
        self._db = db
        self.label = label
        self.actor = actor
        self.resubscribe = resubscribe
        # None until the first rows come; then whether this import holds the lock.
        self._direct: bool | None = None if direct else False
        self._when = ""
        self._base = 0  # the largest id before the import; its own new ids follow
        self._next_id = 0
        self._inserted = 0
        # For each id this import gave out: whether the row had no creation time.
        self._undated = bytearray()
        self._erasures = False
        self._rolled_back = False
        with store._translate():
            db.execute("DROP TABLE IF EXISTS temp.staging")
            db.execute(
                """CREATE TEMP TABLE staging (
                    line INTEGER NOT NULL, key TEXT NOT NULL, email TEXT NOT NULL,
                    name TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
                    tags TEXT NOT NULL, attributes TEXT NOT NULL, source TEXT NOT NULL,
                    created_at TEXT NOT NULL, outcome TEXT)"""
            )
            db.execute("PRAGMA temp.cache_size = -16000")

    def stage(self, rows: Iterable[StagedRow]) -> None:
        """Add validated rows; call as often as needed, in file order."""
        self.stage_values([row.values() for row in rows])

    def stage_values(self, rows: list[tuple]) -> None:
        """Add validated rows in the form `StagedRow.values` gives; in file order."""
        if not rows:
            return
        self._check_usable()
        with self._store._translate():
            if self._direct is None:
                self._direct = self._take_lock()
            if self._direct:
                try:
                    self._write_through(rows)
                except BaseException:
                    _rollback(self._db)
                    self._rolled_back = True
                    raise
                return
            self._db.execute("BEGIN")
            try:
                self._stage(rows)
            except BaseException:
                _rollback(self._db)
                raise
            self._db.execute("COMMIT")

    def _check_usable(self) -> None:
        # Rows written before a failure went with its rollback: going on
        # would write the rest outside any transaction.
        if self._rolled_back:
            raise StoreError("this import failed and was rolled back; start it again")

    def _stage(self, rows: list[tuple]) -> None:
        self._db.executemany(
            "INSERT INTO temp.staging VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)", rows)

    def _take_lock(self) -> bool:
        """Begin the import's write transaction if the lock is free within a second."""
        db = self._db
        (waits,) = db.execute("PRAGMA busy_timeout").fetchone()
        db.execute(f"PRAGMA busy_timeout = {min(waits, _LOCK_WAIT_MS)}")
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            raise
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(waits)}")
        try:
            self._when = now()
            self._base = self._next_id = _largest_id(db)
            self._erasures = db.execute("SELECT 1 FROM suppressions LIMIT 1").fetchone() is not None
            # Half the cache `apply` takes for copying staged rows: writing a
            # million rows as they come measured no faster with more, and the
            # reading process needs its own memory meanwhile.
            db.execute("PRAGMA cache_size = -32000")
        except BaseException:
            _rollback(db)
            raise
        return True

    def _write_through(self, rows: list[tuple]) -> None:
        """Write rows new to the store at once; stage repeats, existing and erased ones."""
        db = self._db
        keys = {row[1] for row in rows}
        erased = self._erased(keys) if self._erasures else ()
        staged: list[tuple] = []
        if len(keys) == len(rows) and not erased:
            fresh = rows
        else:
            fresh, seen = [], set()
            for row in rows:
                if row[1] in seen or row[1] in erased:
                    staged.append(row)
                else:
                    seen.add(row[1])
                    fresh.append(row)
        first = self._next_id + 1
        self._next_id += len(fresh)
        self._undated.extend([not row[9] for row in fresh])
        when = self._when
        inserted = 0
        for start in range(0, len(fresh), _ROWS_PER_INSERT):
            chunk = fresh[start:start + _ROWS_PER_INSERT]
            inserted += db.execute(
                _insert_subscribers(len(chunk)),
                [first + start, when, *itertools.chain.from_iterable(chunk)],
            ).rowcount
        prefix = f"{self.label} line "
        if inserted == len(fresh):
            written = fresh
            for start in range(0, len(fresh), _ROWS_PER_INSERT):
                chunk = fresh[start:start + _ROWS_PER_INSERT]
                db.execute(
                    _insert_events(len(chunk)),
                    [first + start, when, prefix, self.actor, *[row[0] for row in chunk]],
                )
            ids = range(first, first + len(fresh))
        else:
            # Some addresses were in the store already (or earlier in the file).
            present = {id_ for (id_,) in db.execute(
                "SELECT id FROM subscribers WHERE id BETWEEN ? AND ?",
                (first, first + len(fresh) - 1))}
            pairs = [(first + n, row) for n, row in enumerate(fresh)]
            written = [row for id_, row in pairs if id_ in present]
            ids = [id_ for id_, row in pairs if id_ in present]
            staged.extend(row for id_, row in pairs if id_ not in present)
            staged.sort(key=lambda row: row[0])
            db.executemany(
                "INSERT INTO events (subscriber_id, kind, at, reason, actor)"
                " VALUES (?, 'imported', ?, ?, ?)",
                [(id_, when, f"{prefix}{row[0]}", self.actor) for id_, row in zip(ids, written)],
            )
        db.executemany(
            "INSERT INTO events (subscriber_id, kind, at, reason, actor) VALUES (?, ?, ?, ?, ?)",
            [(id_, row[4], when, row[5], self.actor)
             for id_, row in zip(ids, written) if row[4] != "active"],
        )
        self._inserted += inserted
        if staged:
            self._stage(staged)

    def _erased(self, keys: set[str]) -> set[str]:
        """Which of `keys` belong to erased addresses."""
        hashes = {_hash_key(key): key for key in keys}
        return {hashes[hash_] for (hash_,) in self._db.execute(
            "SELECT hash FROM suppressions WHERE hash IN (SELECT value FROM json_each(?))",
            (json.dumps(list(hashes)),))}

    def apply(self, *, dry_run: bool = False) -> ImportCounts:
        """Merge repeats, then decide and write every row in one transaction.

        With `dry_run` the transaction is rolled back: the counts say what
        would have happened.
        """
        self._check_usable()
        if self._direct:
            return self._finish(dry_run)
        with self._store._translate():
            self._db.execute("CREATE INDEX temp.staging_key ON staging (key, line)")
            self._merge_repeats()
        when = now()
        # The address index grows in no particular order; with room for it in
        # the cache, a million new rows do not spill and re-read pages.
        self._db.execute("PRAGMA cache_size = -64000")
        try:
            return self._apply(when, dry_run)
        finally:
            self._db.execute("PRAGMA cache_size = -16000")

    def _finish(self, dry_run: bool) -> ImportCounts:
        """`apply` for an import that holds the lock and has written its new rows."""
        db = self._db
        try:
            with self._store._translate():
                try:
                    counts = ImportCounts(imported=self._inserted)
                    if db.execute("SELECT 1 FROM temp.staging LIMIT 1").fetchone():
                        db.execute("CREATE INDEX temp.staging_key ON staging (key, line)")
                        self._merge_into_written(db)
                        self._merge_repeats()
                        self._decide_staged(db, self._when, counts)
                except BaseException:
                    _rollback(db)
                    self._rolled_back = True
                    raise
                db.execute("ROLLBACK" if dry_run else "COMMIT")
        finally:
            db.execute("PRAGMA cache_size = -16000")
        self._db.execute("DROP TABLE temp.staging")
        return counts

    def _apply(self, when: str, dry_run: bool) -> ImportCounts:
        with self._store._write(commit=not dry_run) as db:
            counts = self._decide_staged(db, when, ImportCounts())
        self._db.execute("DROP TABLE temp.staging")
        return counts

    def _decide_staged(self, db: sqlite3.Connection, when: str, counts: ImportCounts) -> ImportCounts:
        """Decide every staged row not yet merged, and write the outcome; adds to `counts`."""
        if db.execute("SELECT 1 FROM suppressions LIMIT 1").fetchone():
            db.execute(
                "UPDATE temp.staging SET outcome = 'skipped' WHERE outcome IS NULL"
                " AND mailer_hash(key) IN (SELECT hash FROM main.suppressions)"
            )
        # Rows of people already in the store are marked; the rest are new.
        # (Marking the new ones instead would rewrite every row of a first import.)
        if db.execute("SELECT 1 FROM main.subscribers LIMIT 1").fetchone():
            db.execute(
                "UPDATE temp.staging SET outcome = 'existing' WHERE outcome IS NULL"
                " AND EXISTS (SELECT 1 FROM main.subscribers WHERE email_key = staging.key)"
            )
        counts.imported += self._insert_new(db, when)
        self._update_existing(db, when)
        for outcome, number in db.execute(
            "SELECT outcome, count(*) FROM temp.staging WHERE outcome IS NOT NULL GROUP BY outcome"
        ):
            setattr(counts, outcome, number)
        return counts

    def discard(self) -> None:
        """Drop the staged rows and anything written, without applying them."""
        try:
            _rollback(self._db)
            if self._direct:
                self._db.execute("PRAGMA cache_size = -16000")
            self._db.execute("DROP TABLE IF EXISTS temp.staging")
        except sqlite3.Error:
            pass

    def _merge_into_written(self, db: sqlite3.Connection) -> None:
        """Merge staged repeats of addresses this import wrote into those subscribers.

        The same rules as `_merge_rows`, with the written row as the first;
        its status event is replaced when a repeat brings a stronger status.
        """
        last = 0
        while True:
            # CROSS JOIN keeps the scan on the staged rows, in file order.
            rows = db.execute(
                "SELECT s.rowid, sub.id, s.name, s.status, s.reason, s.tags, s.attributes,"
                " s.created_at FROM temp.staging AS s CROSS JOIN main.subscribers AS sub"
                " ON sub.email_key = s.key WHERE s.rowid > ? AND sub.id > ? AND s.outcome IS NULL"
                " ORDER BY s.rowid LIMIT ?",
                (last, self._base, _CHUNK),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            current = {
                id_: [name, status, None, set(json.loads(tags)), json.loads(attributes), created]
                for id_, name, status, tags, attributes, created in db.execute(
                    "SELECT id, name, status, tags, attributes, created_at FROM subscribers"
                    " WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(sorted({row[1] for row in rows})),),
                )
            }
            for _, id_, name, status, reason, tags, attributes, created in rows:
                merged = current[id_]
                merged[0] = name or merged[0]
                if _STRENGTH[status] > _STRENGTH[merged[1]]:
                    merged[1], merged[2] = status, reason
                merged[3].update(json.loads(tags))
                merged[4].update(json.loads(attributes))
                undated = self._undated[id_ - self._base - 1]
                if created and (undated or created < merged[5]):
                    merged[5] = created
                    self._undated[id_ - self._base - 1] = False
            db.executemany(
                "UPDATE subscribers SET name = ?, status = ?, tags = ?, attributes = ?,"
                " created_at = ? WHERE id = ?",
                [(name, status, _tags_json(tags), _attributes_json(attributes), created, id_)
                 for id_, (name, status, _, tags, attributes, created) in current.items()],
            )
            changed = [(id_, status, reason) for id_, (_, status, reason, *_) in current.items()
                       if reason is not None]
            db.executemany("DELETE FROM events WHERE subscriber_id = ? AND kind != 'imported'",
                           [(id_,) for id_, _, _ in changed])
            db.executemany(
                "INSERT INTO events (subscriber_id, kind, at, reason, actor) VALUES (?, ?, ?, ?, ?)",
                [(id_, status, self._when, reason, self.actor) for id_, status, reason in changed],
            )
            db.executemany("UPDATE temp.staging SET outcome = 'merged' WHERE rowid = ?",
                           [(row[0],) for row in rows])

    def _merge_repeats(self) -> None:
        db = self._db
        own_transaction = not db.in_transaction
        if own_transaction:
            db.execute("BEGIN")
        try:
            db.execute("DROP TABLE IF EXISTS temp.repeated")
            db.execute(
                "CREATE TEMP TABLE repeated AS SELECT key FROM temp.staging"
                " WHERE outcome IS NULL GROUP BY key HAVING count(*) > 1"
            )
            last = 0
            while True:
                # A chunk of repeated addresses at a time: memory stays flat
                # even when a file holds the same list twice.
                rows = db.execute(
                    "SELECT rowid, key, name, status, reason, tags, attributes, created_at"
                    " FROM temp.staging WHERE outcome IS NULL AND key IN"
                    " (SELECT key FROM temp.repeated WHERE rowid > ? ORDER BY rowid LIMIT ?)"
                    " ORDER BY key, line",
                    (last, _CHUNK),
                ).fetchall()
                if not rows:
                    break
                last += _CHUNK
                updates, merged = [], []
                for _, group in itertools.groupby(rows, key=lambda row: row[1]):
                    first, *repeats = group
                    updates.append(_merge_rows(first, repeats))
                    merged.extend((row[0],) for row in repeats)
                db.executemany(
                    "UPDATE temp.staging SET name = ?, status = ?, reason = ?, tags = ?,"
                    " attributes = ?, created_at = ? WHERE rowid = ?",
                    updates,
                )
                db.executemany("UPDATE temp.staging SET outcome = 'merged' WHERE rowid = ?", merged)
            db.execute("DROP TABLE temp.repeated")
        except BaseException:
            if own_transaction:
                _rollback(db)
            raise
        if own_transaction:
            db.execute("COMMIT")

    def _insert_new(self, db: sqlite3.Connection, when: str) -> int:
        # Ids are given, not drawn one by one, so that the events of the new
        # subscribers are written without looking each of them up again.
        base = _largest_id(db)
        params = {"base": base, "when": when, "label": self.label, "actor": self.actor}
        inserted = db.execute(
            "INSERT INTO subscribers (id, email, email_key, name, status, tags, attributes, source,"
            " created_at, updated_at)"
            " SELECT :base + rowid, email, key, name, status, tags, attributes, source,"
            " CASE created_at WHEN '' THEN :when ELSE created_at END, :when"
            " FROM temp.staging WHERE outcome IS NULL ORDER BY rowid",
            params,
        ).rowcount
        db.execute(
            "INSERT INTO events (subscriber_id, kind, at, reason, actor)"
            " SELECT :base + rowid, 'imported', :when, :label || ' line ' || line, :actor"
            " FROM temp.staging WHERE outcome IS NULL ORDER BY rowid",
            params,
        )
        db.execute(
            "INSERT INTO events (subscriber_id, kind, at, reason, actor)"
            " SELECT :base + rowid, status, :when, reason, :actor"
            " FROM temp.staging WHERE outcome IS NULL AND status != 'active' ORDER BY rowid",
            params,
        )
        return inserted

    def _update_existing(self, db: sqlite3.Connection, when: str) -> None:
        last = 0
        while True:
            rows = db.execute(
                f"SELECT s.rowid, s.line, s.name, s.status, s.reason, s.tags, s.attributes,"
                f" {_columns_of('sub')}"
                " FROM temp.staging AS s JOIN main.subscribers AS sub ON sub.email_key = s.key"
                " WHERE s.outcome = 'existing' AND s.rowid > ? ORDER BY s.rowid LIMIT ?",
                (last, _CHUNK),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            outcomes, updates, events = [], [], []
            for rowid, line, name, status, reason, tags, attributes, *stored in rows:
                current = _subscriber(stored)
                outcome, change, new_events = self._decide(
                    current, line, name, status, reason, tags, attributes
                )
                outcomes.append((outcome, rowid))
                if change is not None:
                    updates.append((*change, when, current.id))
                events.extend((current.id, kind, when, why, self.actor) for kind, why in new_events)
            db.executemany(
                "UPDATE subscribers SET name = ?, status = ?, tags = ?, attributes = ?,"
                " updated_at = ? WHERE id = ?",
                updates,
            )
            db.executemany(
                "INSERT INTO events (subscriber_id, kind, at, reason, actor) VALUES (?, ?, ?, ?, ?)",
                events,
            )
            db.executemany("UPDATE temp.staging SET outcome = ? WHERE rowid = ?", outcomes)

    def _decide(
        self, current: Subscriber, line: int, name: str, status: str, reason: str,
        tags: str, attributes: str,
    ) -> tuple[str, tuple | None, list[tuple[str, str]]]:
        """What one row does to a subscriber who is already in the store."""
        where = f"{self.label} line {line}"
        events: list[tuple[str, str]] = []
        new_status = current.status
        if status != current.status:
            if current.status in STICKY and status == "active" and self.resubscribe:
                new_status = "active"
                events.append(("resubscribed", f"was {current.status}; {where} with --resubscribe"))
            elif current.status in STICKY:
                return "skipped", None, []
            else:
                new_status = status
                events.append((status, "; ".join(filter(None, (reason, where)))))
        new_name = name or current.name
        new_tags = _tags_json(set(current.tags).union(json.loads(tags)))
        merged = dict(current.attributes)
        merged.update(json.loads(attributes))
        new_attributes = _attributes_json(merged)
        changed = [
            label for label, before, after in (
                ("name", current.name, new_name),
                ("tags", _tags_json(current.tags), new_tags),
                ("attributes", _attributes_json(current.attributes), new_attributes),
            )
            if before != after
        ]
        if changed:
            events.append(("updated", f"{', '.join(changed)} from {where}"))
        if not events:
            return "unchanged", None, []
        return "updated", (new_name, new_status, new_tags, new_attributes), events


_FIELDS = ("id", "email", "name", "status", "tags", "attributes", "source", "created_at", "updated_at")
_COLUMNS = ", ".join(_FIELDS)


def _columns_of(alias: str) -> str:
    return ", ".join(f"{alias}.{name}" for name in _FIELDS)


def _merge_rows(first: tuple, repeats: list[tuple]) -> tuple:
    """The values of one address given on several rows, for an UPDATE of the first row.

    The last non-empty name wins, the strongest status, the union of tags,
    attributes in file order, the earliest creation time.
    """
    rowid, _, name, status, reason, tags, attributes, created = first
    tags, attributes = set(json.loads(tags)), json.loads(attributes)
    for _, _, more_name, more_status, more_reason, more_tags, more_attributes, more_created in repeats:
        name = more_name or name
        if _STRENGTH[more_status] > _STRENGTH[status]:
            status, reason = more_status, more_reason
        tags.update(json.loads(more_tags))
        attributes.update(json.loads(more_attributes))
        if more_created and (not created or more_created < created):
            created = more_created
    return name, status, reason, _tags_json(tags), _attributes_json(attributes), created, rowid


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open (SQLite ends some by itself on error)."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def _subscriber(row: Iterable) -> Subscriber:
    id_, email, name, status, tags, attributes, source, created, updated = row
    return Subscriber(
        id_, email, name, status, tuple(json.loads(tags)), json.loads(attributes), source,
        created, updated,
    )


_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def encode_tags(tags: Iterable[str]) -> str:
    """Tags as stored: a JSON list, sorted, each once (as `_ENCODE` would write it)."""
    if not tags:
        return "[]"
    return f"[{', '.join(map(encode_basestring, sorted(set(tags))))}]"


def encode_attributes(attributes: dict) -> str:
    """Attributes as stored: a JSON object with sorted keys."""
    return _ENCODE(attributes) if attributes else "{}"


_tags_json = encode_tags
_attributes_json = encode_attributes


def _largest_id(db: sqlite3.Connection) -> int:
    """The largest subscriber id ever given out (ids of deleted rows are not reused)."""
    return max(
        db.execute("SELECT coalesce(max(id), 0) FROM subscribers").fetchone()[0],
        (db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'subscribers'").fetchone() or [0])[0],
    )


@functools.lru_cache(maxsize=None)
def _insert_subscribers(rows: int) -> str:
    """INSERT of `rows` new subscribers. Parameters: the first id, the time, then
    each row's values as `StagedRow.values` gives them (line and reason unused)."""
    values = []
    for k in range(rows):
        p = 3 + 10 * k  # ?p is the row's line, ?p+1 its key, …
        values.append(
            f"(?1 + {k}, ?{p + 2}, ?{p + 1}, ?{p + 3}, ?{p + 4}, ?{p + 6}, ?{p + 7}, ?{p + 8},"
            f" coalesce(nullif(?{p + 9}, ''), ?2), ?2)"
        )
    return (
        "INSERT INTO subscribers (id, email, email_key, name, status, tags, attributes, source,"
        " created_at, updated_at) VALUES " + ", ".join(values)
        + " ON CONFLICT (email_key) DO NOTHING"
    )


@functools.lru_cache(maxsize=None)
def _insert_events(rows: int) -> str:
    """INSERT of the 'imported' events of `rows` subscribers with consecutive ids.
    Parameters: the first id, the time, the reason before the line, the actor, the lines."""
    values = ", ".join(f"(?1 + {k}, 'imported', ?2, ?3 || ?{5 + k}, ?4)" for k in range(rows))
    return f"INSERT INTO events (subscriber_id, kind, at, reason, actor) VALUES {values}"


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
