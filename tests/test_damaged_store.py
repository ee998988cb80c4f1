"""A damaged store, a foreign file, a full disk: every command stops in one line, and nothing is sent."""

from __future__ import annotations

import multiprocessing
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys

import pytest

from mailer.errors import AccountSendError
from mailer.send.transports.outbox import OutboxTransport
from mailer.store import Store

NOT_OURS = ("(restore the store from a backup, or move the file away and the next command "
            "creates a new store there)")


@pytest.fixture
def store_path(workspace_dir):
    return workspace_dir / "subscribers" / "mailer.db"


@pytest.fixture(scope="module")
def damaged_bytes(tmp_path_factory) -> bytes:
    """A store of 3,000 subscribers and the ledger of a send to them, then garbage over
    every fourth page past the first few, as a failing disk leaves it."""
    path = tmp_path_factory.mktemp("damaged") / "mailer.db"
    with Store.open(path) as store:
        batch = store.begin_import(label="list.csv", actor="test")
        batch.stage_values([
            (n + 2, f"reader{n}@example.com", f"reader{n}@example.com", f"Reader {n}", "active", "",
             "[]", "{}", "list.csv", "") for n in range(3000)])
        batch.apply()
        store.begin_send("2024-26", "0" * 64, "Issue 26")
    data = bytearray(path.read_bytes())
    noise = random.Random(26)
    for page in range(4, len(data) // 4096, 4):
        data[page * 4096:(page + 1) * 4096] = noise.randbytes(4096)
    return bytes(data)


@pytest.fixture
def damaged(store_path, damaged_bytes):
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store_path.write_bytes(damaged_bytes)
    return store_path


@pytest.mark.parametrize("command", [
    ["subscribers", "list"], ["subscribers", "export"], ["subscribers", "stats"], ["status"],
])
def test_a_damaged_store_ends_a_command_in_one_line(run_mailer, damaged, command):
    result = run_mailer(*command)
    assert result.exit_code == 1
    # What was read before the damaged page stays on standard output; the error is one line.
    assert result.stderr == (
        f"Error: {damaged}: the subscriber store is damaged: database disk image is malformed "
        "(restore it from a backup; nothing was changed)\n")


def test_send_issue_refuses_a_damaged_store_before_its_first_message(run_mailer, damaged, workspace_dir):
    (workspace_dir / "issues" / "2024-27.md").write_text("# Issue 27\n\nNews.\n", encoding="utf-8")
    result = run_mailer("send-issue", "2024-27", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {damaged}: the subscriber store is damaged: ")
    assert result.stderr.count("\n") == 1
    assert not (workspace_dir / "outbox" / "2024-27").exists()


@pytest.mark.parametrize("command", [
    ["subscribers", "list"], ["subscribers", "add", "ann@example.com"], ["status"],
    ["send-issue", "2024-26", "--yes"],
])
def test_an_empty_file_is_not_taken_for_a_new_store(run_mailer, store_path, workspace_dir, command):
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store_path.write_bytes(b"")
    result = run_mailer(*command)
    assert result.exit_code == 1
    assert result.output == f"Error: {store_path}: is an empty file, not a subscriber store {NOT_OURS}\n"
    assert store_path.read_bytes() == b""
    assert not list((workspace_dir / "outbox").rglob("*.eml"))


def test_another_programs_sqlite_file_is_refused_and_left_as_it_is(run_mailer, store_path):
    store_path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(store_path) as other:
        other.execute("CREATE TABLE notes (body TEXT)")
        other.execute("INSERT INTO notes VALUES ('keep me')")
    before = store_path.read_bytes()
    result = run_mailer("subscribers", "add", "ann@example.com")
    assert result.exit_code == 1
    assert result.output == (f"Error: {store_path}: is not a subscriber store: an SQLite file with "
                             f"tables of another program (notes) {NOT_OURS}\n")
    assert store_path.read_bytes() == before


def _send_past_the_file_size_limit(folder, answers):
    # A file size limit fails the write as a full disk does, without filling one.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
    try:
        OutboxTransport(folder).send(b"x" * 5000, "news@example.com", "ann@example.com")
        answers.put("sent")
    except AccountSendError as exc:
        answers.put(str(exc))


def test_a_message_the_disk_cannot_hold_leaves_no_partial_file_in_the_outbox(tmp_path):
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    worker = context.Process(target=_send_past_the_file_size_limit, args=(tmp_path / "outbox", answers))
    worker.start()
    worker.join()
    assert answers.get(timeout=5) == f"{tmp_path / 'outbox'}: cannot write to the outbox: File too large"
    assert list((tmp_path / "outbox").iterdir()) == []


def test_a_read_only_store_says_so_rather_than_to_restore_it(run_mailer, workspace_dir, store_path):
    assert run_mailer("subscribers", "add", "ann@example.com").exit_code == 0
    store_path.chmod(0o444)
    store_path.parent.chmod(0o555)
    # Root writes anywhere through CAP_DAC_OVERRIDE; without it, as in many containers,
    # the folder is as read-only as a read-only file system.
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is missing"
    try:
        result = subprocess.run(
            [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search",
             sys.executable, "-m", "mailer", "subscribers", "add", "bob@example.com"],
            cwd=workspace_dir, capture_output=True, text=True, timeout=60)
    finally:
        store_path.parent.chmod(0o755)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: {store_path}: the subscriber store is read-only (make the file and its folder "
        "writable: SQLite writes mailer.db-wal and mailer.db-shm beside it, even to read)\n")
