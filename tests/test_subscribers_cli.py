"""`mailer subscribers …`: reports, pipes, and one-line errors."""

from __future__ import annotations

import csv
import io
import json

from .conftest import REPO


def test_import_prints_the_report_and_every_rejected_row(run_mailer, workspace_dir):
    (workspace_dir / "list.csv").write_text("email,name\nann@example.com,Ann\nnope,No\n")
    result = run_mailer("subscribers", "import", "list.csv", "--rejects", "rejects.csv")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "Imported list.csv (UTF-8, comma-separated, CSV with a header): 2 rows",
        "  imported         1  new subscribers",
        "  updated          0  existing subscribers changed",
        "  unchanged        0  already as in the file",
        "  skipped          0  unsubscribed, bounced, complained or erased: left as they are",
        "  merged           0  repeated an address from an earlier row",
        "  rejected         1  listed below",
        "line 3: 'nope' is not a valid address: An email address must have an @-sign.",
        "Rejected rows written to rejects.csv",
    ]
    assert (workspace_dir / "rejects.csv").exists()


def test_import_json_report_counts_add_up(run_mailer, workspace_dir):
    (workspace_dir / "list.csv").write_text(
        "email\nann@example.com\nann@example.com\nbad@\nbob@example.com\n")
    result = run_mailer("subscribers", "import", "list.csv", "--json")
    report = json.loads(result.output)
    assert {k: report[k] for k in ("rows", "imported", "updated", "unchanged", "skipped",
                                   "merged", "rejected")} == dict(
        rows=4, imported=2, updated=0, unchanged=0, skipped=0, merged=1, rejected=1)
    assert report["rejected_rows"] == [
        {"line": 4, "reason": "'bad@' is not a valid address: There must be something after the @-sign."}]


def test_import_reads_standard_input(run_mailer):
    result = run_mailer("subscribers", "import", "-", input="ann@example.com\n")
    assert result.exit_code == 0
    assert result.output.startswith("Imported <stdin> (UTF-8, comma-separated, a list of addresses): 1 rows")


def test_a_bad_file_ends_in_one_error_line(run_mailer, workspace_dir):
    (workspace_dir / "list.csv").write_text("id,fullname\n1,Ann\n")
    result = run_mailer("subscribers", "import", "list.csv")
    assert result.exit_code == 1
    assert result.output == (
        "Error: list.csv:1: no address column (the columns are 'id', 'fullname') "
        "(name the column of addresses 'email' or 'Email Address')\n")
    result = run_mailer("subscribers", "import", "missing.csv")
    assert (result.exit_code, result.output) == (1, "Error: missing.csv: no such file (check the path)\n")


def test_the_example_list_imports(run_mailer):
    result = run_mailer("subscribers", "import", str(REPO / "subscribers" / "example.csv"), "--json")
    report = json.loads(result.output)
    assert (report["format"], report["imported"], report["rejected"]) == ("Mailchimp export", 5, 0)
    result = run_mailer("subscribers", "show", "xiaoming.wang@example.org")
    assert "name:       王小明" in result.output


def test_add_list_unsubscribe_and_stats(run_mailer):
    assert run_mailer("subscribers", "add", "Ann@Example.com", "--name", "Ann\nLee").output == \
        "Added Ann@example.com\n"
    assert run_mailer("subscribers", "add", "ann@example.com").output == \
        "Ann@example.com is already subscribed\n"
    run_mailer("subscribers", "add", "bob@example.com")
    assert run_mailer("subscribers", "unsubscribe", "BOB@example.com").output == \
        "Unsubscribed bob@example.com\n"
    assert run_mailer("subscribers", "list").output == "Ann@example.com\n"
    assert run_mailer("subscribers", "list", "--status", "all").output == \
        "Ann@example.com\nbob@example.com\n"
    listed = json.loads(run_mailer("subscribers", "list", "--status", "all", "--json").output)
    assert [(s["email"], s["name"], s["status"]) for s in listed] == [
        ("Ann@example.com", "Ann Lee", "active"), ("bob@example.com", "", "unsubscribed")]
    assert json.loads(run_mailer("subscribers", "stats", "--json").output) == {
        "active": 1, "unsubscribed": 1, "bounced": 0, "complained": 0, "erased": 0}
    result = run_mailer("subscribers", "add", "bob@example.com")
    assert (result.exit_code, result.output) == (
        1, "Error: bob@example.com is unsubscribed (pass --resubscribe if they asked to join again)\n")


def test_list_of_an_empty_store_prints_nothing_and_json_an_empty_array(run_mailer):
    assert run_mailer("subscribers", "list").output == ""
    assert json.loads(run_mailer("subscribers", "list", "--json").output) == []


def test_a_bad_address_on_the_command_line_is_one_line(run_mailer):
    result = run_mailer("subscribers", "add", "ann@@example.com")
    assert result.exit_code == 1
    assert result.output.startswith("Error: 'ann@@example.com' is not a valid address: ")
    assert result.output.count("\n") == 1
    result = run_mailer("subscribers", "unsubscribe", "zed@example.com")
    assert (result.exit_code, result.output) == (1, "Error: no subscriber zed@example.com\n")


def test_delete_asks_then_erases_for_good(run_mailer):
    run_mailer("subscribers", "add", "ann@example.com")
    result = run_mailer("subscribers", "delete", "ann@example.com", input="n\n")
    assert result.exit_code == 1
    assert run_mailer("subscribers", "list").output == "ann@example.com\n"
    result = run_mailer("subscribers", "delete", "ann@example.com", input="y\n")
    assert result.exit_code == 0
    assert result.output.endswith(
        "Erased ann@example.com; a hash of the address keeps it from being re-imported\n")
    assert run_mailer("subscribers", "list", "--status", "all").output == ""
    result = run_mailer("subscribers", "import", "-", "--json", input="ann@example.com\n")
    assert json.loads(result.output)["skipped"] == 1


def test_export_writes_csv_that_imports_back(run_mailer, workspace_dir):
    run_mailer("subscribers", "add", "=cmd@example.com", "--name", "-Ann")
    stdout = run_mailer("subscribers", "export").output
    rows = list(csv.reader(io.StringIO(stdout)))
    assert rows[0] == ["email", "name", "status", "tags", "attributes", "source", "created_at",
                       "updated_at", "erased"]
    assert rows[1][:3] == ["'=cmd@example.com", "'-Ann", "active"]
    result = run_mailer("subscribers", "export", "backup.csv")
    assert result.output == "Exported 1 subscribers to backup.csv\n"
    assert (workspace_dir / "backup.csv").read_text(encoding="utf-8") == stdout
    result = run_mailer("subscribers", "import", "backup.csv", "--json")
    assert json.loads(result.output)["unchanged"] == 1


def test_adding_an_address_no_send_can_reach_warns_of_it(run_mailer):
    result = run_mailer("subscribers", "add", "josé@example.com")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "Added josé@example.com",
        "Warning: josé@example.com: the part before @ is not ASCII, which needs SMTPUTF8 "
        "(SES and mailer cannot send it); every send will skip it"]
