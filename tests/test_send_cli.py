"""`mailer send-issue` and `mailer status` as a user runs them, crashes included."""

from __future__ import annotations

import email
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from email import policy
from pathlib import Path

import pytest

from mailer.subscribers.addresses import parse_address
from mailer.store import Store


def add_subscribers(workspace_dir: Path, count: int, left: dict[int, str] | None = None) -> None:
    with Store.open(workspace_dir / "subscribers" / "mailer.db") as store:
        for n in range(count):
            address = parse_address(f"reader{n}@example.com")
            store.add(address, f"读者 {n}", actor="test")
            if left and n in left:
                store.set_status(address, left[n], actor="test")


def outbox_recipients(workspace_dir: Path) -> Counter:
    folder = workspace_dir / "outbox" / "2024-26"
    if not folder.is_dir():
        return Counter()
    return Counter(
        email.message_from_bytes(p.read_bytes(), policy=policy.default)["To"].addresses[0].addr_spec
        for p in folder.glob("*.eml"))


def ledger(workspace_dir: Path) -> dict[str, str]:
    """Each recipient's status in the ledger of 2024-26."""
    import sqlite3

    with sqlite3.connect(workspace_dir / "subscribers" / "mailer.db") as db:
        return dict(db.execute(
            "SELECT d.email, d.status FROM deliveries d JOIN sends s ON s.id = d.send_id"
            " WHERE s.issue = '2024-26'"))


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("MAILER_SECRET", "test-secret-" + "x" * 32)


def test_send_issue_sends_everyone_and_says_so(run_mailer, workspace_dir):
    add_subscribers(workspace_dir, 6, left={2: "unsubscribed"})
    result = run_mailer("send-issue", "2024-26", "--yes", "--rate", "1000")
    assert result.exit_code == 0, result.output
    assert "Subject:    云计算技术追踪 2024 年第二十六期" in result.output
    assert "Recipients: 5" in result.output and "Suppressed: 1" in result.output
    assert "Transport:  outbox" in result.output
    assert "2024-26: 5 sent, 1 suppressed." in result.output
    assert sorted(outbox_recipients(workspace_dir)) == [f"reader{n}@example.com" for n in (0, 1, 3, 4, 5)]
    again = run_mailer("send-issue", "2024-26", "--yes")
    assert again.exit_code == 0
    assert again.output.strip() == "2024-26 is already sent: 5 sent, 1 suppressed."
    assert sum(outbox_recipients(workspace_dir).values()) == 5


def test_dry_run_shows_the_plan_and_who_is_skipped_and_writes_nothing(run_mailer, workspace_dir):
    add_subscribers(workspace_dir, 4, left={1: "bounced", 3: "complained"})
    result = run_mailer("send-issue", "2024-26", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Recipients: 2" in result.output
    assert "  skip reader1@example.com: bounced" in result.output
    assert "  skip reader3@example.com: complained" in result.output
    assert "Dry run: nothing sent, nothing recorded." in result.output
    assert outbox_recipients(workspace_dir) == Counter()
    assert ledger(workspace_dir) == {}


def test_without_a_subscriber_store_it_says_so_and_creates_nothing(run_mailer, workspace_dir):
    result = run_mailer("send-issue", "2024-26", "--dry-run")
    assert result.exit_code == 1
    assert result.output == ("Error: no subscribers yet: nobody to send to "
                             "(import them with `mailer subscribers import FILE`)\n")
    assert not (workspace_dir / "subscribers" / "mailer.db").exists()


def test_a_test_message_goes_to_any_address_and_is_not_recorded(run_mailer, workspace_dir):
    add_subscribers(workspace_dir, 2)
    result = run_mailer("send-issue", "2024-26", "--to", "editor@example.org")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Sent a test of 2024-26 to editor@example.org through outbox")
    assert outbox_recipients(workspace_dir) == Counter()
    tests = list((workspace_dir / "outbox" / "2024-26" / "tests").glob("*.eml"))
    assert [p.name.split("-")[0] for p in tests] == ["editor@example.org"]
    assert ledger(workspace_dir) == {}


def test_a_finished_send_stays_finished_when_the_issue_is_edited_after(run_mailer, workspace_dir):
    add_subscribers(workspace_dir, 3)
    assert run_mailer("send-issue", "2024-26", "--yes", "--rate", "1000").exit_code == 0
    issue = workspace_dir / "issues" / "2024-26.md"
    issue.write_text(issue.read_text(encoding="utf-8") + "\nA typo fixed after the send.\n", encoding="utf-8")
    again = run_mailer("send-issue", "2024-26", "--yes")
    assert again.exit_code == 0, again.output
    assert again.output.strip() == "2024-26 is already sent: 3 sent."
    assert sum(outbox_recipients(workspace_dir).values()) == 3


def test_without_yes_and_without_a_terminal_it_refuses(run_mailer, workspace_dir):
    add_subscribers(workspace_dir, 2)
    result = run_mailer("send-issue", "2024-26")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == \
        "Error: not sending without confirmation (pass --yes to send without asking)"
    assert outbox_recipients(workspace_dir) == Counter()


def test_lint_errors_stop_the_send_before_the_first_message(run_mailer, workspace_dir):
    add_subscribers(workspace_dir, 2)
    issue = workspace_dir / "issues" / "2024-26.md"
    issue.write_text(issue.read_text(encoding="utf-8") + "\n[home](/index.html)\n", encoding="utf-8")
    result = run_mailer("send-issue", "2024-26", "--yes")
    assert result.exit_code == 1
    assert result.output.startswith("Error: 1 lint error(s), first: ")
    assert "is relative" in result.output
    assert outbox_recipients(workspace_dir) == Counter()


def test_status_reports_the_ledger_as_text_and_json(run_mailer, workspace_dir):
    add_subscribers(workspace_dir, 5, left={0: "unsubscribed"})
    run_mailer("send-issue", "2024-26", "--yes", "--rate", "1000")
    text = run_mailer("status")
    assert text.exit_code == 0
    assert text.output.startswith("2024-26 (finished): 4 sent, 0 failed, 0 unknown, 1 suppressed, 0 pending")
    data = json.loads(run_mailer("status", "issues/2024-26.md", "--json").output)
    assert {k: data[k] for k in ("sent", "failed", "unknown", "suppressed", "pending")} == {
        "sent": 4, "failed": 0, "unknown": 0, "suppressed": 1, "pending": 0}
    missing = run_mailer("status", "2099-01")
    assert missing.exit_code == 1
    assert missing.output == "Error: 2099-01 has not been sent (mailer send-issue 2099-01)\n"


def written(workspace_dir: Path) -> int:
    """How many messages the outbox holds."""
    folder = workspace_dir / "outbox" / "2024-26"
    return sum(1 for _ in folder.glob("*.eml")) if folder.is_dir() else 0


def sending(workspace_dir: Path, process: subprocess.Popen, before: int) -> None:
    """Wait until `process` writes a message beyond the `before` already in the outbox (or ends)."""
    while process.poll() is None and written(workspace_dir) <= before:
        time.sleep(0.01)


def _send_process(workspace_dir: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ)
    return subprocess.Popen(
        [sys.executable, "-m", "mailer", "send-issue", "2024-26", "--yes", *args],
        cwd=workspace_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_at_random_points_then_resumed_nobody_gets_it_twice(workspace_dir):
    """SIGKILL mid-send, again and again; then finish. Everyone sent gets exactly
    one message; only recipients reported unknown may have none."""
    add_subscribers(workspace_dir, 300)
    rng = random.Random(2024)
    kills = 0
    for _ in range(6):
        before = written(workspace_dir)
        process = _send_process(workspace_dir, "--rate", "100", "--concurrency", "4")
        # Killed while it sends, not while Python starts: from its first message on.
        sending(workspace_dir, process, before)
        time.sleep(rng.uniform(0.05, 0.5))
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
    final = _send_process(workspace_dir, "--rate", "1000")
    out, err = final.communicate(timeout=120)
    statuses = ledger(workspace_dir)
    received = outbox_recipients(workspace_dir)
    assert kills >= 2, "the send finished before it could be interrupted; slow it down"
    assert max(received.values()) == 1, "somebody got the issue twice"
    unknown = {address for address, status in statuses.items() if status == "unknown"}
    assert {a for a, s in statuses.items() if s == "sent"} == set(received) - unknown
    assert set(statuses.values()) <= {"sent", "unknown"}
    assert len(unknown) <= 4 * kills, "never more unknowns than in flight at each crash"
    if unknown:
        assert final.returncode == 1
        assert "unknown (--retry-unknown sends to them again)" in err
        retry = _send_process(workspace_dir, "--retry-unknown", "--rate", "1000")
        retry.communicate(timeout=60)
        assert retry.returncode == 0
        # Those with an unknown outcome that had in fact been written get a second copy
        # only because --retry-unknown asked for it; everybody else still has one.
        again = outbox_recipients(workspace_dir)
        assert all(again[a] == 1 for a in statuses if a not in unknown)
    else:
        assert final.returncode == 0, err


def test_ctrl_c_finishes_what_is_in_flight_and_exits_130(workspace_dir):
    add_subscribers(workspace_dir, 200)
    process = _send_process(workspace_dir, "--rate", "40", "--concurrency", "4")
    sending(workspace_dir, process, 0)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Interrupted. Resume with: mailer send-issue 2024-26" in err
    statuses = Counter(ledger(workspace_dir).values())
    assert statuses["inflight"] == 0 and statuses["unknown"] == 0
    assert 0 < statuses["sent"] < 200
    assert statuses["sent"] == sum(outbox_recipients(workspace_dir).values())
    resumed = _send_process(workspace_dir, "--rate", "1000")
    resumed.communicate(timeout=60)
    assert resumed.returncode == 0
    assert Counter(outbox_recipients(workspace_dir).values()) == Counter({1: 200})


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_a_send_as_ctrl_c_does(workspace_dir, signum):
    add_subscribers(workspace_dir, 200)
    process = _send_process(workspace_dir, "--rate", "40", "--concurrency", "4")
    sending(workspace_dir, process, 0)
    time.sleep(0.3)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, err
    assert "Interrupted. Resume with: mailer send-issue 2024-26" in err
    statuses = Counter(ledger(workspace_dir).values())
    assert statuses["inflight"] == 0 and statuses["unknown"] == 0
    assert 0 < statuses["sent"] == sum(outbox_recipients(workspace_dir).values()) < 200
    resumed = _send_process(workspace_dir, "--rate", "1000")
    resumed.communicate(timeout=60)
    assert resumed.returncode == 0
    assert Counter(outbox_recipients(workspace_dir).values()) == Counter({1: 200})


def test_recipients_a_killed_run_left_in_flight_show_as_in_flight(run_mailer, workspace_dir):
    import sqlite3

    add_subscribers(workspace_dir, 4)
    assert run_mailer("send-issue", "2024-26", "--yes", "--rate", "1000").exit_code == 0
    # What SIGKILL between handing a message over and recording it leaves behind.
    with sqlite3.connect(workspace_dir / "subscribers" / "mailer.db") as db:
        db.execute("UPDATE deliveries SET status = 'inflight' WHERE email = 'reader3@example.com'")
        db.execute("UPDATE deliveries SET status = 'pending' WHERE email = 'reader2@example.com'")
        db.execute("UPDATE sends SET finished_at = ''")
    status = run_mailer("status", "2024-26")
    assert status.output.splitlines()[0] == \
        "2024-26 (open): 2 sent, 0 failed, 0 unknown, 0 suppressed, 1 pending, 1 in flight"
    plan = run_mailer("send-issue", "2024-26", "--dry-run")
    assert "Recipients: 1 (resuming; 2 already sent)" in plan.output
    assert "In flight:  1 (handed over and not recorded yet;" in plan.output
    resumed = run_mailer("send-issue", "2024-26", "--yes")
    assert resumed.exit_code == 1
    assert ledger(workspace_dir)["reader3@example.com"] == "unknown"


def test_an_address_that_needs_smtputf8_is_warned_of_skipped_and_suppressed(run_mailer, workspace_dir):
    (workspace_dir / "list.csv").write_text(
        "email,name\nann@example.com,Ann\njosé@example.com,José\n", encoding="utf-8")
    imported = run_mailer("subscribers", "import", "list.csv")
    assert imported.exit_code == 0, imported.output
    reason = "the part before @ is not ASCII, which needs SMTPUTF8 (SES and mailer cannot send it)"
    assert f"line 3: warning: josé@example.com: {reason}; every send will skip it" in imported.output.splitlines()
    plan = run_mailer("send-issue", "2024-26", "--dry-run")
    assert "Recipients: 1" in plan.output and "Suppressed: 1" in plan.output
    assert f"  skip josé@example.com: {reason}" in plan.output.splitlines()
    sent = run_mailer("send-issue", "2024-26", "--yes", "--rate", "1000")
    assert sent.exit_code == 0, sent.output
    assert "2024-26: 1 sent, 1 suppressed." in sent.output
    assert ledger(workspace_dir) == {"ann@example.com": "sent", "josé@example.com": "suppressed"}
    status = run_mailer("status", "2024-26")
    assert f"  suppressed: 1 × {reason}" in status.output.splitlines()
