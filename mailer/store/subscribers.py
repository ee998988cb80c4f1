"""Subscribers and their history: reading them, and changing one at a time.

Status is sticky. Someone who unsubscribed, bounced or complained stays so,
whatever a later import or `add` says, unless the caller passes
``resubscribe=True``; then an event records who did it and when. The rules
live in the store, not in the importer, so that no path into the store can
break them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import StatusError, SubscriberNotFound
from ..subscribers.addresses import Address
from .connection import StoreConnection, now, suppression_hash

STATUSES = ("active", "unsubscribed", "bounced", "complained")
STICKY = frozenset(STATUSES[1:])

# When two rows of one file disagree on the status, the stronger one wins:
# a complaint outweighs a bounce, a bounce an unsubscribe, all of them active.
STRENGTH = {"active": 0, "unsubscribed": 1, "bounced": 2, "complained": 3}


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


FIELDS = ("id", "email", "name", "status", "tags", "attributes", "source", "created_at", "updated_at")
_COLUMNS = ", ".join(FIELDS)


def columns_of(alias: str) -> str:
    """`Subscriber`'s columns, in its field order, of the table aliased `alias`."""
    return ", ".join(f"{alias}.{name}" for name in FIELDS)


def subscriber_of(row: Iterable) -> Subscriber:
    """The `Subscriber` of a row of `FIELDS`."""
    id_, email, name, status, tags, attributes, source, created, updated = row
    return Subscriber(
        id_, email, name, status, tuple(json.loads(tags)), json.loads(attributes), source,
        created, updated,
    )


class SubscriberQueries(StoreConnection):
    """The subscribers table, its events and the suppressions of erased addresses."""

    # Reading ---------------------------------------------------------------

    def get(self, address: Address) -> Subscriber | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM subscribers WHERE email_key = ?", (address.key,)
        ).fetchone()
        return subscriber_of(row) if row else None

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
        return subscriber_of(row) if row else None

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
            yield from map(subscriber_of, rows)

    def counts(self) -> dict[str, int]:
        """How many subscribers have each status, and how many addresses were erased."""
        counts = dict.fromkeys(STATUSES, 0)
        counts.update(self._db.execute("SELECT status, count(*) FROM subscribers GROUP BY status"))
        counts["erased"] = self._db.execute("SELECT count(*) FROM suppressions").fetchone()[0]
        return counts

    def erasures(self) -> Iterator[tuple[str, str]]:
        """(hash, when) of every erased address, oldest first: what an export carries."""
        yield from self._db.execute("SELECT hash, at FROM suppressions ORDER BY at, hash")

    def is_suppressed(self, address: Address) -> bool:
        return self._db.execute(
            "SELECT 1 FROM suppressions WHERE hash = ?", (suppression_hash(address.key),)
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
                db.execute("DELETE FROM suppressions WHERE hash = ?", (suppression_hash(address.key),))
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
            delete_people(db, [current.id], now())
            db.execute(
                "INSERT OR REPLACE INTO suppressions (hash, reason, at) VALUES (?, ?, ?)",
                (suppression_hash(address.key), f"erased on request by {actor}", now()),
            )
        self._scrub_wal()

    def _event(self, subscriber_id: int, kind: str, at: str, reason: str, actor: str) -> None:
        self._db.execute(
            "INSERT INTO events (subscriber_id, kind, at, reason, actor) VALUES (?, ?, ?, ?, ?)",
            (subscriber_id, kind, at, reason, actor),
        )


def delete_people(db: sqlite3.Connection, ids: list[int], when: str) -> None:
    """Delete the subscribers `ids` and their history, and their address from the ledger.

    Their pending deliveries are suppressed; the rest keep their outcome but
    lose the address. Part of an erasure: the caller keeps the hash.
    """
    listed = json.dumps(ids)
    db.execute(
        "UPDATE deliveries SET email = '', updated_at = ?, status = CASE status"
        " WHEN 'pending' THEN 'suppressed' ELSE status END, reason = CASE status"
        " WHEN 'pending' THEN 'erased on request' ELSE reason END"
        " WHERE subscriber_id IN (SELECT value FROM json_each(?))",
        (when, listed),
    )
    db.execute("DELETE FROM subscribers WHERE id IN (SELECT value FROM json_each(?))", (listed,))
