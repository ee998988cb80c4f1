"""Commands that only read work on a workspace with no subscribers yet, and create nothing."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def untouched(workspace_dir):
    """Fails the test if the command left any file behind in the workspace."""
    before = sorted(workspace_dir.rglob("*"))
    assert not (workspace_dir / "subscribers").exists()
    yield
    assert sorted(workspace_dir.rglob("*")) == before


def test_status_says_nothing_was_sent(run_mailer, untouched):
    result = run_mailer("status")
    assert result.exit_code == 0
    assert result.output == "No issue has been sent yet.\n"
    assert json.loads(run_mailer("status", "--json").output) == []


def test_status_of_an_issue_says_it_was_not_sent(run_mailer, untouched):
    result = run_mailer("status", "2024-26")
    assert result.exit_code == 1
    assert result.output == "Error: 2024-26 has not been sent (mailer send-issue 2024-26)\n"


def test_list_prints_nobody(run_mailer, untouched):
    result = run_mailer("subscribers", "list", "--status", "all")
    assert result.exit_code == 0
    assert result.output == ""
    assert json.loads(run_mailer("subscribers", "list", "--json").output) == []


def test_stats_counts_zero(run_mailer, untouched):
    result = run_mailer("subscribers", "stats")
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "total                0"
    assert json.loads(run_mailer("subscribers", "stats", "--json").output) == {
        "active": 0, "unsubscribed": 0, "bounced": 0, "complained": 0, "erased": 0}


def test_show_finds_nobody(run_mailer, untouched):
    result = run_mailer("subscribers", "show", "ann@example.com")
    assert result.exit_code == 1
    assert result.output == "Error: no subscriber ann@example.com\n"


def test_export_to_standard_output_is_the_header_alone(run_mailer, untouched):
    result = run_mailer("subscribers", "export")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "email,name,status,tags,attributes,source,created_at,updated_at,erased"]


def test_export_to_a_file_writes_only_that_file(run_mailer, workspace_dir, tmp_path):
    target = tmp_path / "backup.csv"
    result = run_mailer("subscribers", "export", str(target))
    assert result.exit_code == 0
    assert result.output == f"Exported 0 subscribers to {target}\n"
    assert target.read_text(encoding="utf-8").startswith("email,name,status")
    assert not (workspace_dir / "subscribers").exists()


def test_a_command_that_writes_still_creates_the_store(run_mailer, workspace_dir):
    result = run_mailer("subscribers", "add", "ann@example.com")
    assert result.exit_code == 0
    assert (workspace_dir / "subscribers" / "mailer.db").is_file()
    assert run_mailer("subscribers", "list").output == "ann@example.com\n"
