"""Opening the store file, its transactions, and the helpers every domain's rows share.

The file runs in WAL mode, so a send can read while an unsubscribe writes,
and every change is one transaction: a crash leaves the store as it was
before the command.
"""

from __future__ import annotations

import getpass
import hashlib
import json
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
        """Open (creating if needed) the store at `path` and bring its schema up to date.

        `busy_timeout` is how long a write waits for another command's write to
        finish before giving up with `StoreBusy`.
        """
        path = Path(path)
        if path.exists() and not path.is_file():
            raise StoreError("is not a file", path=path,
                             hint="move it away, and the next command creates a new store there")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the subscriber store: {os_reason(exc)}", path=path) from None
        store = cls(db, path)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = %d" % int(busy_timeout * 1000))
            store._use_wal(busy_timeout)
            db.execute("PRAGMA synchronous = NORMAL")
            # Erased subscribers must not linger in free pages of the file.
            db.execute("PRAGMA secure_delete = ON")
            db.execute("PRAGMA temp_store = FILE")
            # Staged rows are ours alone; zeroing them when dropped only costs time.
            db.execute("PRAGMA temp.secure_delete = OFF")
            db.execute("PRAGMA cache_size = -16000")
            db.create_function("mailer_hash", 1, suppression_hash, deterministic=True)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreError(
                f"not a usable subscriber store: {os_reason(exc)}", path=path,
                hint="restore it from a backup, or move it away to start a new one",
            ) from None
        except BaseException:
            db.close()
            raise
        return store

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
            rollback(self._db)
            raise
        with self._translate():
            self._db.execute("COMMIT" if commit else "ROLLBACK")
