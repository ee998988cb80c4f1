"""Opening the store file, its transactions, and the helpers every domain's rows share.

The file runs in WAL mode, so a send can read while an unsubscribe writes,
and every change is one transaction: a crash leaves the store as it was
before the command.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from json.encoder import encode_basestring
from pathlib import Path
from typing import Self

from ..errors import StoreBusy, StoreError, os_reason
from . import schema


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


def suppression_hash(key: str) -> str:
    """What is kept of an erased address (`Address.key`): enough to recognise it, not to read it.

    Also SQL's ``mailer_hash(key)``, so that an import can match its staged
    rows against the suppressions without reading them into Python.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def encode_tags(tags: Iterable[str]) -> str:
    """Tags as stored: a JSON list, sorted, each once (as `_ENCODE` would write it)."""
    if not tags:
        return "[]"
    return f"[{', '.join(map(encode_basestring, sorted(set(tags))))}]"


def encode_attributes(attributes: dict) -> str:
    """Attributes as stored: a JSON object with sorted keys."""
    return _ENCODE(attributes) if attributes else "{}"


def rollback(db: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open (SQLite ends some by itself on error)."""
    if db.in_transaction:
        db.execute("ROLLBACK")


class StoreConnection:
    """An open store file: the connection, its transactions and its schema version.

    The per-domain queries of `mailer.store.Store` build on it; open one with
    `open`, and close it (or use `with`).
    """

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    def open(cls, path: Path, *, busy_timeout: float = 30.0) -> Self:
        """Open the store at `path`, creating it only where no file is, and bring its
        schema up to date.

        A file that is there but is not a subscriber store (empty, another
        program's SQLite file, not SQLite at all) is refused and left as it
        is: treating it as a new, empty store would start a list from nothing
        beside the one that was meant. `busy_timeout` is how long a write
        waits for another command's write to finish before giving up with
        `StoreBusy`.
        """
        path = Path(path)
        in_memory = str(path) == ":memory:"
        if not in_memory:
            if path.exists() and not path.is_file():
                raise StoreError("is not a file", path=path,
                                 hint="move it away, and the next command creates a new store there")
            if not path.exists():
                cls._create(path, busy_timeout)
            elif path.stat().st_size == 0:
                raise StoreError("is an empty file, not a subscriber store", path=path, hint=_NOT_OURS_HINT)
        store = cls._connect(path, busy_timeout)
        try:
            if not in_memory:
                store._refuse_foreign()
            store._prepare(busy_timeout)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def _create(cls, path: Path, busy_timeout: float) -> None:
        """Make a new store at `path`, whole or not at all.

        The schema is built in a file of its own and linked into place only
        when complete, so that a file at `path` is always a finished store:
        another command opening it at the same moment never sees a
        half-made one, and an empty or foreign file can be told apart.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the subscriber store: {os_reason(exc)}", path=path) from None
        draft = path.with_name(f".{path.name}.new-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            store = cls._connect(draft, busy_timeout)
            try:
                store._prepare(busy_timeout)
            finally:
                store.close()  # the last connection's close folds the WAL into the file
            try:
                os.link(draft, path)
            except FileExistsError:
                pass  # another command made it first: theirs is as good
            except OSError:
                # A file system without hard links: rename, unless one appeared meanwhile.
                if not path.exists():
                    os.replace(draft, path)
        except OSError as exc:
            raise StoreError(f"cannot create the subscriber store: {os_reason(exc)}", path=path) from None
        finally:
            for leftover in (draft, *(draft.with_name(draft.name + end) for end in ("-wal", "-shm"))):
                leftover.unlink(missing_ok=True)

    @classmethod
    def _connect(cls, path: Path, busy_timeout: float) -> Self:
        try:
            db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the subscriber store: {os_reason(exc)}", path=path) from None
        return cls(db, path)

    def _prepare(self, busy_timeout: float) -> None:
        """Settings of this connection, WAL mode, and the schema brought up to date."""
        db = self._db
        with self._translate():
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = %d" % int(busy_timeout * 1000))
        self._use_wal(busy_timeout)
        with self._translate():
            db.execute("PRAGMA synchronous = NORMAL")
            # Erased subscribers must not linger in free pages of the file.
            db.execute("PRAGMA secure_delete = ON")
            db.execute("PRAGMA temp_store = FILE")
            # Staged rows are ours alone; zeroing them when dropped only costs time.
            db.execute("PRAGMA temp.secure_delete = OFF")
            db.execute("PRAGMA cache_size = -16000")
            db.create_function("mailer_hash", 1, suppression_hash, deterministic=True)
        self._migrate()

    def _refuse_foreign(self) -> None:
        """Refuse a file that is SQLite but not a store mailer made, before changing anything."""
        try:
            version = self.schema_version
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            if "not a database" not in str(exc):
                raise store_error(exc, self.path) from None
            raise StoreError("is not a subscriber store: not an SQLite file", path=self.path,
                             hint=_NOT_OURS_HINT) from None
        if version == 0 or "subscribers" not in tables:
            what = f"tables of another program ({', '.join(sorted(tables)[:3])})" if tables else "no tables"
            raise StoreError(f"is not a subscriber store: an SQLite file with {what}", path=self.path,
                             hint=_NOT_OURS_HINT)

    def _scrub_wal(self) -> None:
        """Fold the write-ahead log into the file and empty it, so that people just
        erased do not live on in older page images there."""
        with self._translate():
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def check_integrity(self) -> None:
        """Refuse a damaged store (SQLite's quick check), before a send trusts its ledger."""
        with self._translate():
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise StoreError(f"the subscriber store is damaged: {problems[0]}", path=self.path,
                             hint=_DAMAGED_HINT)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _use_wal(self, busy_timeout: float) -> None:
        """Switch a new file to WAL mode, waiting for another command doing the same.

        Two commands opening a new store at once both try to switch it, and
        SQLite answers the second "locked" at once instead of waiting (a wait
        could deadlock), so the switch is tried again until `busy_timeout`.
        """
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    with self._translate():
                        raise
            time.sleep(0.02)

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        migrations = schema.MIGRATIONS
        if self.schema_version == len(migrations):
            return
        with self._write():
            # Checked again under the lock: another process may have migrated.
            version = self.schema_version
            if version > len(migrations):
                raise StoreError(
                    f"schema version {version} is newer than this mailer knows ({len(migrations)})",
                    path=self.path, hint="upgrade mailer",
                )
            for number in range(version, len(migrations)):
                migrations[number](self._db)
                self._db.execute(f"PRAGMA user_version = {number + 1}")

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """SQLite's errors as one-line store errors (`store_error`)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise store_error(exc, self.path) from None

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
            rollback(self._db)
            raise
        with self._translate():
            self._db.execute("COMMIT" if commit else "ROLLBACK")


_NOT_OURS_HINT = ("restore the store from a backup, or move the file away and the next command "
                  "creates a new store there")
_DAMAGED_HINT = "restore it from a backup; nothing was changed"


def store_error(exc: sqlite3.Error, path: Path) -> StoreError:
    """The one-line error for what SQLite said about the store at `path`.

    A lock held too long is `StoreBusy` (safe to retry); a file that cannot
    be written says so, since restoring or moving it would not help; a page
    SQLite cannot read means the file is damaged.
    """
    message = str(exc)
    if "locked" in message or "busy" in message:
        return StoreBusy("another command is writing to the subscriber store", path=path,
                         hint="try again when it has finished")
    if "readonly" in message or "read-only" in message:
        return StoreError("the subscriber store is read-only", path=path,
                          hint="make the file and its folder writable: SQLite writes mailer.db-wal "
                               "and mailer.db-shm beside it, even to read")
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreError(f"the subscriber store refused a change: {message}", path=path)
    if isinstance(exc, sqlite3.OperationalError):
        return StoreError(f"the subscriber store failed: {message}", path=path)
    return StoreError(f"the subscriber store is damaged: {message}", path=path, hint=_DAMAGED_HINT)
