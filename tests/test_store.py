"""The subscriber store: schema versions, sticky status, erasure, locking."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from mailer.errors import (
    MailerError,
    StatusError,
    StoreBusy,
    StoreError,
    SubscriberNotFound,
)
from mailer.store import MIGRATIONS, StagedRow, Store, schema
from mailer.subscribers.addresses import parse_address

ANN = parse_address("Ann@example.com")


def test_a_new_store_is_at_the_latest_schema_version_in_wal_mode(tmp_path):
    path = tmp_path / "subscribers" / "mailer.db"
    with Store.open(path) as opened:
        assert opened.schema_version == len(MIGRATIONS)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"subscribers", "events", "suppressions"} <= tables


def test_adding_a_table_is_one_migration_function(tmp_path, monkeypatch):
    path = tmp_path / "mailer.db"
    Store.open(path).close()

    def v2_ledger(db):
        db.execute("CREATE TABLE ledger (issue TEXT, subscriber_id INTEGER)")

    monkeypatch.setattr(schema, "MIGRATIONS", [*MIGRATIONS, v2_ledger])
    with Store.open(path) as opened:
        assert opened.schema_version == len(MIGRATIONS) + 1
    with Store.open(path) as opened:  # run once only
        assert opened.schema_version == len(MIGRATIONS) + 1


def test_a_failing_migration_leaves_the_store_at_its_old_version(tmp_path, monkeypatch):
    path = tmp_path / "mailer.db"
    Store.open(path).close()

    def v2_broken(db):
        db.execute("CREATE TABLE half (x)")
        db.execute("THIS IS NOT SQL")

    monkeypatch.setattr(schema, "MIGRATIONS", [*MIGRATIONS, v2_broken])
    with pytest.raises(StoreError):
        Store.open(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'half'").fetchone()


def test_a_store_from_a_newer_mailer_is_refused(tmp_path):
    path = tmp_path / "mailer.db"
    Store.open(path).close()
    sqlite3.connect(path).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    with pytest.raises(StoreError, match="newer than this mailer knows .*upgrade mailer"):
        Store.open(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "mailer.db"
    path.write_text("email\nann@example.com\n" * 100)
    with pytest.raises(StoreError) as caught:
        Store.open(path)
    assert str(caught.value) == (
        f"{path}: is not a subscriber store: not an SQLite file (restore the store from a backup, "
        "or move the file away and the next command creates a new store there)")
    assert path.read_text() == "email\nann@example.com\n" * 100


def test_add_then_unsubscribe_keeps_the_history(store):
    assert store.add(ANN, "Ann Lee", actor="alice@desk")[0] == "added"
    assert store.set_status(ANN, "unsubscribed", actor="bob@desk", reason="asked by reply")[0]
    assert not store.set_status(ANN, "unsubscribed", actor="bob@desk")[0]
    subscriber = store.require(parse_address("ann@EXAMPLE.com"))
    assert (subscriber.email, subscriber.name, subscriber.status) == (
        "Ann@example.com", "Ann Lee", "unsubscribed")
    history = store.history(subscriber)
    assert [(e.kind, e.reason, e.actor) for e in history] == [
        ("subscribed", "", "alice@desk"), ("unsubscribed", "asked by reply", "bob@desk")]


def test_add_does_not_resubscribe_unless_told(store):
    store.add(ANN, actor="a")
    store.set_status(ANN, "complained", actor="ses")
    with pytest.raises(StatusError, match="is complained .*--resubscribe"):
        store.add(ANN, actor="a")
    assert store.add(ANN, actor="carol@desk", resubscribe=True)[0] == "resubscribed"
    subscriber = store.require(ANN)
    assert subscriber.status == "active"
    assert store.history(subscriber)[-1].kind == "resubscribed"
    assert store.history(subscriber)[-1].actor == "carol@desk"


def test_erasing_leaves_only_a_hash(store, tmp_path):
    store.add(ANN, "Ann Lee", actor="a")
    store.erase(ANN, actor="dpo@desk")
    assert store.get(ANN) is None
    assert store.counts()["erased"] == 1
    for file in (tmp_path / "store").iterdir():  # the database and its WAL, bytes and all
        raw = file.read_bytes().lower()
        assert b"ann@example.com" not in raw and b"ann lee" not in raw, file.name
    db = sqlite3.connect(tmp_path / "store" / "mailer.db")
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    with pytest.raises(SubscriberNotFound, match="erased on request"):
        store.require(ANN)
    with pytest.raises(StatusError, match="erased on request"):
        store.add(ANN, actor="a")


def test_an_erased_address_is_never_re_imported(store):
    store.add(ANN, actor="a")
    store.erase(ANN, actor="a")
    for resubscribe in (False, True):
        batch = store.begin_import(label="list.csv", actor="a", resubscribe=resubscribe)
        batch.stage([StagedRow(line=2, address=parse_address("ann@example.com"))])
        assert batch.apply().skipped == 1
    assert store.get(ANN) is None


def test_a_write_waits_for_the_lock_then_refuses_with_one_line(tmp_path):
    path = tmp_path / "mailer.db"
    Store.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Store.open(path, busy_timeout=0.2) as waiting:
            with pytest.raises(StoreBusy) as caught:
                waiting.add(ANN, actor="a")
            assert str(caught.value) == (
                f"{path}: another command is writing to the subscriber store "
                "(try again when it has finished)")
            batch = waiting.begin_import(label="list.csv", actor="a")
            batch.stage([StagedRow(line=2, address=ANN)])
            with pytest.raises(StoreBusy):
                batch.apply()
    finally:
        holder.execute("ROLLBACK")
    with Store.open(path) as opened:
        assert opened.get(ANN) is None


def _open_when_released(path, barrier, answers):
    barrier.wait()
    try:
        with Store.open(path) as store:
            answers.put(store.schema_version)
    except MailerError as exc:
        answers.put(str(exc))


def test_commands_opening_a_new_store_at_the_same_moment_all_get_it(tmp_path):
    # Each round starts four processes on a store that does not exist yet,
    # released together so that they race to create it and switch it to WAL.
    context = multiprocessing.get_context("fork")
    for round_ in range(25):
        path = tmp_path / f"round-{round_}" / "mailer.db"
        barrier, answers = context.Barrier(4), context.Queue()
        workers = [context.Process(target=_open_when_released, args=(path, barrier, answers))
                   for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert [answers.get() for _ in workers] == [len(MIGRATIONS)] * 4


def test_an_erasure_carried_by_an_import_leaves_no_trace_in_the_files(store, tmp_path):
    from mailer.store import suppression_hash

    store.add(ANN, "Ann Lee", actor="a")
    batch = store.begin_import(label="export.csv", actor="a")
    batch.keep_erasures([(suppression_hash(ANN.key), "2026-01-01T00:00:00Z")])
    batch.apply()
    assert store.get(ANN) is None
    for file in (tmp_path / "store").iterdir():  # the database and its WAL, bytes and all
        raw = file.read_bytes().lower()
        assert b"ann@example.com" not in raw and b"ann lee" not in raw, file.name
