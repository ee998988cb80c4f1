"""The import's fast paths give what the plain ones give.

Every import test of test_importer.py also runs with each file read in a
second process (its `reading` parameter); here, the second process itself:
when it starts, that it is gone afterwards, what it reports. Rows written
straight into the store must end exactly as staged rows would; the
attributes' JSON written from the cells must be what `encode_attributes`
writes.
"""

from __future__ import annotations

import json
import os
import random
import threading
from pathlib import Path

import pytest

from mailer.store import imports as store_imports
from mailer.store import subscribers as store_subscribers
from mailer.subscribers import importer
from mailer.subscribers.addresses import parse_address
from mailer.errors import AddressError
from mailer.subscribers.importer import _converter, _Columns, import_file
from mailer.store import StagedRow, Store, encode_attributes

pytestmark = pytest.mark.usefixtures("every_file_in_a_second_process")

real_may_fork = importer._may_fork


@pytest.fixture
def reading_processes(monkeypatch) -> list[int]:
    """The process ids of the reading processes the imports start."""
    started = []

    class Spy(importer._ReadingProcess):
        def __init__(self, batches):
            super().__init__(batches)
            started.append(self._pid)

    monkeypatch.setattr(importer, "_ReadingProcess", Spy)
    return started


def test_a_process_running_other_threads_reads_in_process(store, subscriber_file, monkeypatch,
                                                         reading_processes):
    monkeypatch.setattr(importer, "_may_fork", real_may_fork)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not importer._may_fork()
        report = import_file(store, subscriber_file("email\nann@example.com\n"), actor="a")
    finally:
        stop.set()
        thread.join()
    assert report.imported == 1 and reading_processes == []
    assert [s.email for s in store.subscribers()] == ["ann@example.com"]


def children() -> set[str]:
    """Our own child processes (Linux)."""
    found = set()
    for task in Path("/proc/self/task").iterdir():
        found.update((task / "children").read_text().split())
    return found


def test_a_large_file_is_read_in_a_second_process(store, subscriber_file, reading_processes):
    report = import_file(store, subscriber_file("email\nann@example.com\n"), actor="a")
    assert report.imported == 1 and len(reading_processes) == 1
    assert reading_processes[0] != os.getpid()


def test_the_reading_process_is_gone_after_an_import_good_or_bad(store, subscriber_file):
    before = children()
    assert import_file(store, subscriber_file("email\nann@example.com\n"), actor="a").imported == 1
    with pytest.raises(importer.SubscriberFileError):
        import_file(store, subscriber_file('email,name\nbob@example.com,"Bob\n', name="b.csv"), actor="a")
    assert children() == before


def test_a_failure_inside_the_reading_process_is_raised_and_nothing_is_written(
        store, subscriber_file, monkeypatch):
    def broken(*args):
        def convert(row, line, quoted):
            if line == 3:
                raise ZeroDivisionError("a bug")
            return real(row, line, quoted)
        real = _converter(*args)
        return convert

    monkeypatch.setattr(importer, "_converter", broken)
    with pytest.raises(RuntimeError, match="ZeroDivisionError: a bug"):
        import_file(store, subscriber_file("email\nann@example.com\nbob@example.com\n"), actor="a")
    assert store.counts()["active"] == 0


def test_rejected_rows_keep_their_lines_and_order_across_batches(store, subscriber_file, monkeypatch,
                                                                  tmp_path):
    monkeypatch.setattr(importer, "_BATCH", 7)
    rows = [f"p{i}@example.com" if i % 5 else f"bad{i}@" for i in range(100)]
    report = import_file(store, subscriber_file("email\n" + "\n".join(rows) + "\n"), actor="a",
                         rejects=tmp_path / "rejects.csv")
    assert [r.line for r in report.rejections] == [i + 2 for i in range(0, 100, 5)]
    assert (report.imported, report.rejected, report.rows) == (80, 20, 100)
    written = (tmp_path / "rejects.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in written[1:]] == [str(i + 2) for i in range(0, 100, 5)]
    assert [s.email for s in store.subscribers()] == [r for r in rows if not r.startswith("bad")]


def test_progress_is_reported_up_to_the_whole_file(store, subscriber_file, monkeypatch):
    monkeypatch.setattr(importer, "_BATCH", 10)
    path = subscriber_file("email\n" + "".join(f"p{i}@example.com\n" for i in range(95)))
    seen = []
    import_file(store, path, actor="a", progress=lambda done, total: seen.append((done, total)))
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


# Written at once or staged: the same store ------------------------------------


STATUSES = ["active"] * 6 + ["unsubscribed", "bounced", "complained"]


def random_rows(rng: random.Random, people: list[str], count: int) -> list[StagedRow]:
    rows = []
    for line in range(2, count + 2):
        email = rng.choice(people)
        if rng.random() < 0.3:
            email = email.upper().replace("@EXAMPLE.COM", "@example.com")
        status = rng.choice(STATUSES)
        rows.append(StagedRow(
            line=line, address=parse_address(email),
            name=rng.choice(["", "", "Ann", "Bob Lee", "王芳"]),
            status=status, reason=f"{status} on line {line}" if status != "active" else "",
            tags=tuple(rng.sample(["a", "b", "c"], rng.randint(0, 2))),
            attributes={rng.choice(["city", "zip"]): str(line)} if rng.random() < 0.5 else {},
            source=rng.choice(["", "form"]),
            created_at=rng.choice(["", "", "2020-01-01T00:00:00Z", "2023-05-01T00:00:00Z",
                                   "2099-01-01T00:00:00Z"]),
        ))
    return rows


def prepared(path: Path, rng: random.Random, people: list[str]) -> Store:
    opened = Store.open(path)
    for email in people[:6]:
        opened.add(parse_address(email), rng.choice(["", "Old"]), actor="setup")
    for email, status in zip(people[6:9], ("unsubscribed", "bounced", "complained")):
        opened.add(parse_address(email), actor="setup")
        opened.set_status(parse_address(email), status, actor="setup")
    opened.add(parse_address(people[9]), actor="setup")
    opened.erase(parse_address(people[9]), actor="setup")
    return opened


def snapshot(opened: Store) -> list:
    return [(s.as_dict(), [(e.kind, e.at, e.reason, e.actor) for e in opened.history(s)])
            for s in opened.subscribers()]


@pytest.mark.parametrize("seed", range(12))
def test_rows_written_at_once_end_as_staged_rows_would(tmp_path, monkeypatch, seed):
    for module in (store_subscribers, store_imports):
        monkeypatch.setattr(module, "now", lambda: "2024-06-01T12:00:00Z")
    monkeypatch.setattr(store_imports, "_ROWS_PER_INSERT", 4)
    monkeypatch.setattr(store_imports, "_CHUNK", 5)
    rng = random.Random(seed)
    people = [f"p{i}@example.com" for i in range(40)]
    rows = random_rows(rng, people, rng.randint(1, 120))
    sizes = [rng.randint(1, 15) for _ in range(len(rows))]
    resubscribe = seed % 3 == 0
    results = []
    for direct in (True, False):
        rng_setup = random.Random(seed)
        with prepared(tmp_path / f"{direct}.db", rng_setup, people) as opened:
            batch = opened.begin_import(label="list.csv", actor="tester", resubscribe=resubscribe,
                                        direct=direct)
            start = 0
            for size in sizes:
                if start >= len(rows):
                    break
                batch.stage(rows[start:start + size])
                start += size
            assert batch._direct is direct
            applied = batch.apply()
            results.append((applied, snapshot(opened), opened.counts()))
    assert results[0] == results[1]
    applied = results[0][0]
    assert sum(vars(applied).values()) == len(rows)


def test_an_import_waits_a_moment_for_the_lock_then_stages(tmp_path):
    import sqlite3

    path = tmp_path / "mailer.db"
    Store.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with Store.open(path, busy_timeout=2) as waiting:
        batch = waiting.begin_import(label="list.csv", actor="a")
        batch.stage([StagedRow(line=2, address=parse_address("ann@example.com"))])
        assert batch._direct is False
        holder.execute("ROLLBACK")
        assert batch.apply().imported == 1
        assert waiting.get(parse_address("ann@example.com")) is not None


# The attributes' JSON -------------------------------------------------------


def test_attributes_written_from_the_cells_are_what_encode_attributes_writes():
    rng = random.Random(3)
    alphabet = ['a', 'Z', '"', '\\', '\x01', '\x1f', '\x7f', 'é', '中', '\u2028', ' ', '/', '😀']
    for _ in range(300):
        names = [f"{rng.choice(alphabet)}{rng.choice(alphabet)}{i % 7}" for i in range(rng.randint(0, 6))]
        header = ["email", *names]
        attributes = [(index + 1, name) for index, name in enumerate(names)]
        columns = _Columns(header, {"email": 0}, attributes, True, "CSV with a header")
        convert = _converter(columns, "import of x", ())
        for _ in range(5):
            cells = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4))) for _ in names]
            values = convert(["ann@example.com", *cells], 2, False)
            expected = {}
            for name, cell in zip(names, cells):
                if cell:
                    expected[name] = cell
            assert values[7] == encode_attributes(expected)
            assert json.loads(values[7]) == expected


def test_the_converter_rejects_what_the_rows_did_before():
    columns = _Columns(["email", "name"], {"email": 0, "name": 1}, [], True, "CSV with a header")
    convert = _converter(columns, "import of x", ("t",))
    assert convert(['"Ann" <ann@example.com>', ""], 5, False)[:4] == (
        5, "ann@example.com", "ann@example.com", "Ann")
    with pytest.raises(AddressError, match="has 3 values where the header has 2"):
        convert(["ann@example.com", "Ann", "x"], 2, False)
    with pytest.raises(AddressError, match="no address in column 'email'"):
        convert(["  ", "Ann"], 2, False)


def test_an_import_that_failed_while_writing_cannot_go_on(store, monkeypatch):
    import sqlite3

    from mailer.errors import StoreError
    from mailer.store import ImportBatch

    batch = store.begin_import(label="list.csv", actor="a")
    batch.stage([StagedRow(line=2, address=parse_address("ann@example.com"))])
    real = ImportBatch._write_through

    def failing(self, rows):
        real(self, rows)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(ImportBatch, "_write_through", failing)
    with pytest.raises(StoreError, match="disk I/O error"):
        batch.stage([StagedRow(line=3, address=parse_address("bob@example.com"))])
    monkeypatch.setattr(ImportBatch, "_write_through", real)
    with pytest.raises(StoreError, match="failed and was rolled back"):
        batch.stage([StagedRow(line=4, address=parse_address("cat@example.com"))])
    with pytest.raises(StoreError, match="failed and was rolled back"):
        batch.apply()
    batch.discard()
    assert store.counts()["active"] == 0
