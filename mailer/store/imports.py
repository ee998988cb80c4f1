"""Importing many subscribers at once: one file's rows, applied in one transaction.

The status rules are those of `mailer.store.subscribers`: an import never
makes anyone unsubscribed, bounced, complained or erased active again unless
asked to. Rows repeating an address are merged first, by the rules of
`import_rows.MergedRow`, whichever way the import took.
"""

from __future__ import annotations

import functools
import itertools
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import StoreError
from .connection import StoreConnection, now, rollback, suppression_hash
from .import_rows import MergedRow, StagedRow, decide
from .subscribers import columns_of, delete_people, subscriber_of

_CHUNK = 5000
# How long an import waits for the write lock before it stages every row instead.
_LOCK_WAIT_MS = 1000
# New subscribers written per INSERT: one statement per row would pay the
# status CHECK and the id sequence once a row. 99 rows of 10 values and the
# first parameters stay within SQLite's oldest limit of 999 parameters.
_ROWS_PER_INSERT = 99


@dataclass
class ImportCounts:
    """What applying an import did, row by row; the fields add up to the rows staged."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    merged: int = 0


class ImportQueries(StoreConnection):
    """Where an import begins."""

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
        self, store: StoreConnection, db: sqlite3.Connection, *, label: str, actor: str, resubscribe: bool,
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
        self._deleted_people = False  # erased by the erasures the file carries
        # Erasures the file carried, kept until the import holds the write lock.
        self._kept_erasures: list[tuple[str, str]] = []
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
        with self._store._translate():
            if self._write_directly(self._write_through, rows):
                return
            self._db.execute("BEGIN")
            try:
                self._stage(rows)
            except BaseException:
                rollback(self._db)
                raise
            self._db.execute("COMMIT")

    def keep_erasures(self, erasures: list[tuple[str, str]]) -> None:
        """Keep the erasures a file carries ((hash, when), as `erasures()` gives them).

        An export carries the store's erasures ahead of its subscribers, so
        that importing it into a new store never brings back someone who
        asked to be forgotten. Someone of this store with such an address is
        erased here too, as `erase` would.
        """
        if not erasures:
            return
        with self._store._translate():
            if not self._write_directly(lambda kept: self._suppress(self._db, kept), erasures):
                self._kept_erasures.extend(erasures)

    def _write_directly(self, write: Callable[[list], None], items: list) -> bool:
        """`write(items)` in the import's own transaction if it holds the lock (taking it
        on first use); False, with nothing written, if it stages instead."""
        self._check_usable()
        if self._direct is None:
            self._direct = self._take_lock()
        if not self._direct:
            return False
        try:
            write(items)
        except BaseException:
            rollback(self._db)
            self._rolled_back = True
            raise
        return True

    def _suppress(self, db: sqlite3.Connection, erasures: list[tuple[str, str]]) -> None:
        when = now()
        db.executemany("INSERT OR IGNORE INTO suppressions (hash, reason, at) VALUES (?, ?, ?)",
                       [(hash_, f"erased on request (carried by {self.label})", at or when)
                        for hash_, at in erasures])
        hashes = json.dumps([hash_ for hash_, _ in erasures])
        # One pass hashing every address: only for a file that carries erasures.
        erased = [id_ for (id_,) in db.execute(
            "SELECT id FROM subscribers WHERE mailer_hash(email_key) IN (SELECT value FROM json_each(?))",
            (hashes,))]
        delete_people(db, erased, when)
        self._erasures = True
        self._deleted_people = self._deleted_people or bool(erased)

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
            rollback(db)
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
        hashes = {suppression_hash(key): key for key in keys}
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
            counts = self._finish(dry_run)
        else:
            counts = self._apply_staged(dry_run)
        if self._deleted_people and not dry_run:
            self._store._scrub_wal()  # as `erase` does
        return counts

    def _apply_staged(self, dry_run: bool) -> ImportCounts:
        """`apply` for an import that staged every row: all of it written now."""
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
                    rollback(db)
                    self._rolled_back = True
                    raise
                db.execute("ROLLBACK" if dry_run else "COMMIT")
        finally:
            db.execute("PRAGMA cache_size = -16000")
        self._db.execute("DROP TABLE temp.staging")
        return counts

    def _apply(self, when: str, dry_run: bool) -> ImportCounts:
        with self._store._write(commit=not dry_run) as db:
            if self._kept_erasures:
                self._suppress(db, self._kept_erasures)
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
            rollback(self._db)
            if self._direct:
                self._db.execute("PRAGMA cache_size = -16000")
            self._db.execute("DROP TABLE IF EXISTS temp.staging")
        except sqlite3.Error:
            pass

    def _merge_into_written(self, db: sqlite3.Connection) -> None:
        """Merge staged repeats of addresses this import wrote into those subscribers.

        The rules of `MergedRow`, with the written row as the first; its status event is replaced when a repeat brings a stronger status.
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
            repeats: dict[int, list[tuple]] = {}
            for row in rows:
                repeats.setdefault(row[1], []).append(row[2:])
            merges = []
            for id_, name, status, tags, attributes, created in db.execute(
                "SELECT id, name, status, tags, attributes, created_at FROM subscribers"
                " WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(repeats)),),
            ):
                # A written row without a creation time was given the import's
                # time: any repeat that knows better replaces it.
                undated = self._undated[id_ - self._base - 1]
                merged = MergedRow.first(name, status, None, tags, attributes, "" if undated else created)
                merged.absorb(repeats[id_])
                if merged.created_at:
                    self._undated[id_ - self._base - 1] = False
                merges.append((id_, merged, merged.created_at or created))
            db.executemany(
                "UPDATE subscribers SET name = ?, status = ?, tags = ?, attributes = ?,"
                " created_at = ? WHERE id = ?",
                [(merged.name, merged.status, merged.encoded_tags, merged.encoded_attributes, created,
                  id_) for id_, merged, created in merges],
            )
            changed = [(id_, merged.status, merged.reason) for id_, merged, _ in merges
                       if merged.reason is not None]
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
                    (rowid, _, *first), *repeats = group
                    row = MergedRow.first(*first)
                    row.absorb(repeat[2:] for repeat in repeats)
                    updates.append((row.name, row.status, row.reason, row.encoded_tags,
                                    row.encoded_attributes, row.created_at, rowid))
                    merged.extend((repeat[0],) for repeat in repeats)
                db.executemany(
                    "UPDATE temp.staging SET name = ?, status = ?, reason = ?, tags = ?,"
                    " attributes = ?, created_at = ? WHERE rowid = ?",
                    updates,
                )
                db.executemany("UPDATE temp.staging SET outcome = 'merged' WHERE rowid = ?", merged)
            db.execute("DROP TABLE temp.repeated")
        except BaseException:
            if own_transaction:
                rollback(db)
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
                f" {columns_of('sub')}"
                " FROM temp.staging AS s JOIN main.subscribers AS sub ON sub.email_key = s.key"
                " WHERE s.outcome = 'existing' AND s.rowid > ? ORDER BY s.rowid LIMIT ?",
                (last, _CHUNK),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            outcomes, updates, events = [], [], []
            for rowid, line, name, status, reason, tags, attributes, *stored in rows:
                current = subscriber_of(stored)
                outcome, change, new_events = decide(
                    current, f"{self.label} line {line}", self.resubscribe, name, status, reason,
                    tags, attributes,
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

