"""Importing the subscriber files people really have, and every way they go wrong."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailer.subscribers.addresses import parse_address
from mailer.errors import SubscriberFileError
from mailer.subscribers.importer import export_csv, import_file
from mailer.store import Store

MAILCHIMP = (
    "Email Address,First Name,Last Name,Address,Phone Number,MEMBER_RATING,OPTIN_TIME,TAGS\n"
    'ann@example.com,Ann,Lee,"1 Main St, Springfield",555-0100,4,2023-11-02 09:14:31,'
    '"""weekly"",""vip"""\n'
    "xiaoming@example.org,小明,王,,,5,2024-01-15 02:30:00,\n"
)


@pytest.fixture(autouse=True)
def reading(request: pytest.FixtureRequest) -> str:
    """How imports read their file: as they choose (small files in this process),
    or every file in a second process."""
    how = getattr(request, "param", "as-chosen")
    if how == "second-process":
        request.getfixturevalue("every_file_in_a_second_process")
    return how


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Each import made in this process runs both ways: the second process
    # must give exactly what reading in process gives.
    if "store" in metafunc.fixturenames:
        metafunc.parametrize("reading", ["as-chosen", "second-process"], indirect=True)


def counts(report) -> dict:
    return {name: getattr(report, name)
            for name in ("imported", "updated", "unchanged", "skipped", "merged", "rejected")}


def run(store, path, **options):
    return import_file(store, path, actor="tester@desk", **options)


def person(store, email):
    return store.get(parse_address(email))


# Formats ---------------------------------------------------------------------


def test_a_mailchimp_export_maps_names_tags_times_and_attributes(store, subscriber_file):
    report = run(store, subscriber_file(MAILCHIMP))
    assert report.kind == "Mailchimp export"
    assert counts(report) == dict(imported=2, updated=0, unchanged=0, skipped=0, merged=0, rejected=0)
    ann = person(store, "ann@example.com")
    assert ann.name == "Ann Lee"
    assert ann.tags == ("vip", "weekly")
    assert ann.created_at == "2023-11-02T09:14:31Z"
    assert ann.attributes == {"Address": "1 Main St, Springfield", "Phone Number": "555-0100",
                              "MEMBER_RATING": "4"}
    assert person(store, "xiaoming@example.org").name == "王小明"
    assert [e.kind for e in store.history(ann)] == ["imported"]
    assert store.history(ann)[0].reason == "list.csv line 2"
    assert store.history(ann)[0].actor == "tester@desk"


def test_mailchimps_unsubscribed_and_cleaned_exports_are_not_subscribed(store, subscriber_file):
    path = subscriber_file(
        "Email Address,First Name,UNSUB_TIME,UNSUB_REASON,CLEAN_TIME\n"
        "ann@example.com,Ann,2024-02-01 10:00:00,Too many emails,\n"
        "bob@example.com,Bob,,,2024-03-01 10:00:00\n"
    )
    assert run(store, path).imported == 2
    ann, bob = person(store, "ann@example.com"), person(store, "bob@example.com")
    assert (ann.status, bob.status) == ("unsubscribed", "bounced")
    assert store.history(ann)[-1].reason == "unsubscribed in Mailchimp: Too many emails"


def test_a_substack_export_honours_disabled_email(store, subscriber_file):
    path = subscriber_file(
        "email,active_subscription,expiry,plan,email_disabled,created_at\n"
        "ann@example.com,false,,other,false,2024-01-05T10:00:00.000Z\n"
        "bob@example.com,true,2025-01-01,yearly,true,2024-01-06T10:00:00.000Z\n"
    )
    report = run(store, path)
    assert report.kind == "Substack export"
    assert person(store, "ann@example.com").status == "active"
    assert person(store, "bob@example.com").status == "unsubscribed"
    assert person(store, "bob@example.com").attributes["plan"] == "yearly"
    assert person(store, "ann@example.com").created_at == "2024-01-05T10:00:00Z"


def test_a_buttondown_export_maps_type_tags_and_metadata(store, subscriber_file):
    path = subscriber_file(
        "email,creation_date,subscriber_type,tags,metadata,notes\n"
        'ann@example.com,2024-01-05 10:00:00+02:00,regular,"a, b","{""city"": ""Oslo""}",met at a talk\n'
        "bob@example.com,2024-01-06,unsubscribed,,,\n"
        "cat@example.com,2024-01-07,unactivated,,,\n"
    )
    report = run(store, path)
    assert report.kind == "Buttondown export"
    ann = person(store, "ann@example.com")
    assert (ann.tags, ann.attributes) == (("a", "b"), {"city": "Oslo", "notes": "met at a talk"})
    assert ann.created_at == "2024-01-05T08:00:00Z"
    assert person(store, "bob@example.com").status == "unsubscribed"
    assert person(store, "cat@example.com") is None
    assert [r.reason for r in report.rejections] == [
        "never confirmed the subscription (status 'unactivated')"]


def test_a_listmonk_export_takes_its_json_attributes(store, subscriber_file):
    path = subscriber_file(
        "uuid,email,name,attributes,status,created_at,updated_at\n"
        'u1,ann@example.com,Ann Lee,"{""city"": ""Oslo"", ""score"": 3}",enabled,'
        "2024-01-05 10:00:00,2024-02-05 10:00:00\n"
        'u2,bob@example.com,Bob,{},blocklisted,2024-01-05 10:00:00,2024-02-05 10:00:00\n'
    )
    run(store, path)
    ann = person(store, "ann@example.com")
    assert ann.attributes == {"city": "Oslo", "score": 3, "uuid": "u1"}
    assert person(store, "bob@example.com").status == "unsubscribed"


@pytest.mark.parametrize("text", [
    "ann@example.com\nbob@example.com\n",
    "email\nann@example.com\nbob@example.com\n",
    "Subscribers\nann@example.com\nbob@example.com\n",
    "\n\nann@example.com\n\nbob@example.com\n\n",
    "Ann Lee <ann@example.com>\nbob@example.com\n",
])
def test_a_plain_column_of_addresses_with_or_without_a_header(store, subscriber_file, text):
    report = run(store, subscriber_file(text))
    assert (report.rows, report.imported) == (2, 2)
    assert [s.email for s in store.subscribers()] == ["ann@example.com", "bob@example.com"]


def test_a_name_in_angle_brackets_becomes_the_name(store, subscriber_file):
    run(store, subscriber_file('"Ann Lee" <ann@example.com>\n'))
    assert person(store, "ann@example.com").name == "Ann Lee"


@pytest.mark.parametrize("delimiter, label", [("\t", "tab"), (";", "semicolon"), ("|", "pipe")])
def test_the_delimiter_is_sniffed(store, subscriber_file, delimiter, label):
    text = f"email{delimiter}name\nann@example.com{delimiter}Lee, Ann\n"
    report = run(store, subscriber_file(text))
    assert report.delimiter == label
    assert person(store, "ann@example.com").name == "Lee, Ann"


@pytest.mark.parametrize("encoding, label", [
    ("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8"), ("utf-16", "UTF-16"), ("utf-16-be", None),
    ("gb18030", "GB18030"), ("gbk", "GB18030"),
])
def test_the_encoding_is_detected(store, subscriber_file, encoding, label):
    text = "email,name\nann@example.com,王芳\nbob@example.com,José\n"
    if encoding in ("gbk", "gb18030"):
        text = text.replace("José", "Jose")  # GBK has no é; GB18030 does, but Excel writes GBK
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data, label = b"\xfe\xff" + data, "UTF-16"
    report = run(store, subscriber_file(data))
    assert report.encoding == label
    assert person(store, "ann@example.com").name == "王芳"
    assert store.counts()["active"] == 2


def test_a_file_that_is_ascii_for_a_long_while_before_gbk_is_read_as_gb18030(store, subscriber_file):
    # A detector that looks at the first kilobytes would guess ASCII/UTF-8
    # and fail (or garble) on the last line.
    text = "email,name\n" + "".join(f"p{i}@example.com,P\n" for i in range(5000)) + "w@example.com,王芳\n"
    report = run(store, subscriber_file(text, "gbk"))
    assert report.encoding == "GB18030"
    assert person(store, "w@example.com").name == "王芳"


def test_encoding_can_be_given(store, subscriber_file):
    path = subscriber_file("email,name\nann@example.com,Zoë\n", "cp1252")
    with pytest.raises(SubscriberFileError):
        run(store, path)  # é in cp1252 is neither UTF-8 nor GB18030 here
    assert run(store, path, encoding="cp1252").imported == 1
    assert person(store, "ann@example.com").name == "Zoë"


# Updating, merging, sticky status ------------------------------------------------


def test_importing_the_same_file_twice_changes_nothing_the_second_time(store, subscriber_file):
    path = subscriber_file(
        "email,name,tags,status\n"
        "ann@example.com,Ann,a,\n"
        "bob@example.com,Bob,,unsubscribed\n"
        "ANN@example.com,Annie,b,\n"
        "cat@example.com,Cat,,\n"
        "ann@example.com,,c,\n"
        "not an address,,,\n"
    )
    first = run(store, path)
    assert counts(first) == dict(imported=3, updated=0, unchanged=0, skipped=0, merged=2, rejected=1)
    snapshot = [s.as_dict() for s in store.subscribers()]
    second = run(store, path)
    assert counts(second) == dict(imported=0, updated=0, unchanged=3, skipped=0, merged=2, rejected=1)
    assert [s.as_dict() for s in store.subscribers()] == snapshot
    ann = person(store, "ann@example.com")
    assert (ann.email, ann.name, ann.tags) == ("ann@example.com", "Annie", ("a", "b", "c"))


def test_repeated_rows_merge_to_the_strongest_status(store, subscriber_file):
    path = subscriber_file(
        "email,status\nann@example.com,subscribed\nann@example.com,bounced\nann@example.com,\n")
    report = run(store, path)
    assert (report.imported, report.merged) == (1, 2)
    assert person(store, "ann@example.com").status == "bounced"


def test_existing_subscribers_are_updated_not_duplicated(store, subscriber_file):
    run(store, subscriber_file("email,name,city\nann@example.com,Ann,Oslo\n"))
    report = run(store, subscriber_file("email,name,zip\nAnn@Example.com,Ann Lee,0150\n", name="b.csv"))
    assert counts(report)["updated"] == 1
    assert store.counts()["active"] == 1
    ann = person(store, "ann@example.com")
    assert (ann.name, ann.attributes) == ("Ann Lee", {"city": "Oslo", "zip": "0150"})
    assert store.history(ann)[-1].reason == "name, attributes from b.csv line 2"


def test_a_re_import_never_resurrects_unsubscribed_bounced_or_complained(store, subscriber_file):
    for status, email in (("unsubscribed", "u@example.com"), ("bounced", "b@example.com"),
                          ("complained", "c@example.com")):
        store.add(parse_address(email), actor="a")
        store.set_status(parse_address(email), status, actor="a")
    path = subscriber_file("email,name\nu@example.com,U\nb@example.com,B\nc@example.com,C\n")
    report = run(store, path, tags=("new",))
    assert counts(report)["skipped"] == 3
    assert {s.status for s in store.subscribers()} == {"unsubscribed", "bounced", "complained"}
    assert all(s.name == "" and s.tags == () for s in store.subscribers())


def test_resubscribe_makes_them_active_and_the_history_says_who(store, subscriber_file):
    store.add(parse_address("u@example.com"), actor="a")
    store.set_status(parse_address("u@example.com"), "unsubscribed", actor="a")
    report = run(store, subscriber_file("email\nu@example.com\n"), resubscribe=True)
    assert counts(report)["updated"] == 1
    subscriber = person(store, "u@example.com")
    assert subscriber.status == "active"
    event = store.history(subscriber)[-1]
    assert (event.kind, event.actor) == ("resubscribed", "tester@desk")
    assert event.reason == "was unsubscribed; list.csv line 2 with --resubscribe"
    assert event.at


def test_a_file_can_unsubscribe_an_active_subscriber(store, subscriber_file):
    store.add(parse_address("ann@example.com"), actor="a")
    report = run(store, subscriber_file("email,status\nann@example.com,unsubscribed\n"))
    assert report.updated == 1
    assert person(store, "ann@example.com").status == "unsubscribed"


def test_tags_are_added_to_every_row(store, subscriber_file):
    run(store, subscriber_file("email,tags\nann@example.com,x\nbob@example.com,\n"), tags=("2024", "fair"))
    assert [s.tags for s in store.subscribers()] == [("2024", "fair", "x"), ("2024", "fair")]


def test_a_dry_run_reports_and_changes_nothing(store, subscriber_file):
    report = run(store, subscriber_file(MAILCHIMP), dry_run=True)
    assert (report.imported, report.dry_run) == (2, True)
    assert store.counts()["active"] == 0


# Rejected rows -------------------------------------------------------------------


def test_every_rejected_row_has_its_line_and_reason_and_the_counts_add_up(store, subscriber_file, tmp_path):
    path = subscriber_file(
        "email,name,attributes\n"
        "ann@example.com,Ann,\n"
        "ann@,Bad,\n"
        ",No address,\n"
        "bob@example.com,Bob,not json\n"
        "\n"
        "cat@example.com,Cat,,extra\n"
        '"dan@example.com","Dan"x,\n'
        "eve@example.com,Eve,\n"
    )
    report = run(store, path, rejects=tmp_path / "rejects.csv")
    assert [(r.line, r.reason.split(" (")[0]) for r in report.rejections] == [
        (3, "'ann@' is not a valid address: There must be something after the @-sign."),
        (4, "no address in column 'email'"),
        (5, "column 'attributes' is not a JSON object like {\"city\": \"Paris\"}"),
        (7, "has 4 values where the header has 3"),
        (8, "bad quoting"),
    ]
    assert report.rows == 7 == sum(counts(report).values())
    with open(tmp_path / "rejects.csv", encoding="utf-8", newline="") as rejects:
        rows = list(csv.reader(rejects))
    assert rows[0] == ["rejected_line", "rejected_reason", "email", "name", "attributes"]
    assert [row[0] for row in rows[1:]] == ["3", "4", "5", "7", "8"]
    assert rows[1][2:] == ["ann@", "Bad", ""]


def test_a_fixed_rejects_file_imports_as_it_is(store, subscriber_file, tmp_path):
    rejects = tmp_path / "rejects.csv"
    run(store, subscriber_file("email,name\nann@example,Ann\n"), rejects=rejects)
    rejects.write_text(rejects.read_text(encoding="utf-8").replace("ann@example,", "ann@example.com,"),
                       encoding="utf-8")
    report = run(store, rejects)
    assert report.imported == 1
    assert person(store, "ann@example.com").attributes == {}


def test_the_json_report_lists_the_rejected_rows(store, subscriber_file):
    report = run(store, subscriber_file("email\nann@example.com\nnope\n"))
    data = json.loads(json.dumps(report.as_dict()))
    assert data["rows"] == 2 and data["imported"] == 1 and data["rejected"] == 1
    assert data["rejected_rows"][0]["line"] == 3


# Export ----------------------------------------------------------------------------


def test_export_re_imports_losslessly_formula_cells_included(store, subscriber_file, tmp_path):
    path = subscriber_file(
        "email,name,status,tags,note\n"
        "=cmd@example.com,=HYPERLINK(\"x\"),active,\"-x, @y\",+1 555\n"
        "'=quoted@example.com,'@ann,unsubscribed,,\"\ttabbed\"\n"
        "plain@example.com,'ordinary,bounced,,-\n"
    )
    run(store, path)
    assert person(store, "=cmd@example.com").name == '=HYPERLINK("x")'
    assert person(store, "=quoted@example.com").name == "@ann"
    assert person(store, "plain@example.com").name == "'ordinary"
    out = io.StringIO()
    assert export_csv(store, out) == 3
    exported = out.getvalue()
    for line in exported.splitlines()[1:]:
        for cell in next(csv.reader([line])):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    (tmp_path / "export.csv").write_text(exported, encoding="utf-8")
    with Store.open(tmp_path / "other.db") as other:
        report = run(other, tmp_path / "export.csv")
        assert report.kind == "mailer export" and report.imported == 3
        before = [s.as_dict() | {"updated_at": ""} for s in store.subscribers()]
        after = [s.as_dict() | {"updated_at": ""} for s in other.subscribers()]
        assert after == before


# Bad input: each ends in one clear line, and nothing is written ---------------------


def refused(store, path, **options) -> str:
    with pytest.raises(SubscriberFileError) as caught:
        run(store, path, **options)
    assert store.counts() == {"active": 0, "unsubscribed": 0, "bounced": 0, "complained": 0,
                              "erased": 0}
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_an_empty_file(store, subscriber_file):
    path = subscriber_file("")
    assert refused(store, path) == f"{path}: is empty: no rows to import"
    assert refused(store, subscriber_file(" \n\r\n")) == f"{path}: is empty: no rows to import"


def test_a_header_only(store, subscriber_file):
    path = subscriber_file("Email Address,First Name\n")
    assert refused(store, path) == f"{path}: has a header line but no rows: nothing to import"


def test_no_address_column(store, subscriber_file):
    path = subscriber_file("id,fullname\n1,Ann\n")
    assert refused(store, path) == (
        f"{path}:1: no address column (the columns are 'id', 'fullname') "
        "(name the column of addresses 'email' or 'Email Address')")


def test_addresses_without_a_header_line_in_several_columns(store, subscriber_file):
    path = subscriber_file("ann@example.com,Ann\n")
    assert "the first line holds an address, not column names" in refused(store, path)


def test_a_binary_file(store, subscriber_file):
    path = subscriber_file(bytes(range(256)) * 40, name="photo.jpg")
    assert refused(store, path) == (
        f"{path}: is not a text file (it has binary data near the start) (export the list as CSV)")


def test_an_excel_workbook(store, subscriber_file):
    path = subscriber_file(b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100, name="list.xlsx")
    assert refused(store, path) == (
        f"{path}: is a ZIP archive, e.g. an Excel workbook (.xlsx), not a CSV file "
        "(in the spreadsheet, save the sheet as 'CSV UTF-8' and import that)")


def test_utf16_without_a_bom(store, subscriber_file):
    path = subscriber_file("email\nann@example.com\n", "utf-16-le")
    assert "looks like UTF-16 without a byte-order mark" in refused(store, path)
    assert run(store, path, encoding="utf-16-le").imported == 1


def test_a_nul_byte_rejects_its_row_only(store, subscriber_file):
    path = subscriber_file(b"email,name\nann@example.com,Ann\nbob@example.com,B\x00b\n")
    report = run(store, path)
    assert (report.imported, report.rejected) == (1, 1)
    assert next(iter(report.rejections)).line == 3
    assert "NUL" in next(iter(report.rejections)).reason


def test_a_ten_megabyte_single_line(store, subscriber_file):
    path = subscriber_file("x" * (10 << 20))
    assert refused(store, path) == (
        f"{path}:1: the first line is longer than 1 MiB: this is not a subscriber list "
        "(is it the right file, with line breaks between rows?)")


def test_a_ten_megabyte_line_among_rows_is_rejected(store, subscriber_file):
    path = subscriber_file("email\nann@example.com\n" + "y" * (10 << 20) + "\nbob@example.com\n")
    report = run(store, path)
    assert (report.imported, report.rejected) == (2, 1)
    assert [(r.line, r.reason) for r in report.rejections] == [(3, "the line is longer than 1 MiB")]


def test_mixed_and_cr_only_line_endings(store, subscriber_file):
    mixed = subscriber_file("email,name\r\na@example.com,A\rb@example.com,B\nc@example.com,\"C\r\nD\"\r\nd@example.com,x")
    report = run(store, mixed)
    assert (report.rows, report.imported) == (4, 4)
    assert person(store, "c@example.com").name == "C D"
    cr_only = subscriber_file("email\rx@example.com\rnope\r", name="cr.csv")
    report = run(store, cr_only)
    assert [(r.line, r.reason.split(":")[0]) for r in report.rejections] == [
        (3, "'nope' is not a valid address")]


def test_an_unterminated_quote(store, subscriber_file):
    path = subscriber_file(
        "email,name\n" + "".join(f"p{i}@example.com,P\n" for i in range(25_000))
        + 'ann@example.com,"Ann\nbob@example.com,Bob\n')
    assert refused(store, path) == (
        f"{path}:25002: a quoted value starts here and never ends "
        '(a closing " is missing; fix the quotes and import again)')


def test_a_bom_followed_by_bytes_in_another_encoding(store, subscriber_file):
    path = subscriber_file(b"\xef\xbb\xbfemail,name\nann@example.com,Ann\nw@example.com," + "王芳".encode("gbk") + b"\n")
    assert refused(store, path) == (
        f"{path}:3: starts with a UTF-8 byte-order mark, but this line is not UTF-8 "
        "(the file mixes encodings: re-save it as 'CSV UTF-8')")


def test_a_utf8_file_with_a_line_in_another_encoding(store, subscriber_file):
    # Valid UTF-8, Chinese included, until line 4: GB18030 would decode the
    # whole file as garbage, so the import refuses and names the line.
    path = subscriber_file("email,name\na@example.com,王芳\nb@example.com,B\n".encode() + "c@example.com,王芳\n".encode("gbk"))
    assert refused(store, path).startswith(f"{path}:4: is UTF-8 up to this line, which has bytes that are not UTF-8")


def test_a_wrong_encoding_given(store, subscriber_file):
    path = subscriber_file("email,name\nann@example.com,王芳\n", "utf-16")
    assert refused(store, path, encoding="ascii") == (
        f"{path}:1: is not valid ascii (pass the encoding the file was saved in)")
    assert refused(store, path, encoding="klingon") == (
        "unknown encoding 'klingon' (try utf-8, gb18030, utf-16, cp1252 or latin-1)")


def test_names_with_line_breaks_invisible_and_right_to_left_characters(store, subscriber_file):
    path = subscriber_file(
        'email,name\nann@example.com,"Ann\r\nLee"\nbob@example.com,\u202eboB\u200b\u200f\n'
        "eve@example.com,\u2067evil\u2069 \u200dx\n")
    assert run(store, path).imported == 3
    assert person(store, "ann@example.com").name == "Ann Lee"
    assert person(store, "bob@example.com").name == "boB"
    assert person(store, "eve@example.com").name == "evil \u200dx"


def test_a_zero_width_character_in_an_address_rejects_the_row(store, subscriber_file):
    report = run(store, subscriber_file("email\nann\u200b@example.com\n"))
    assert "'ann\\u200b@example.com' is not a valid address" in next(iter(report.rejections)).reason


def test_a_directory_given_as_the_file(store, tmp_path):
    assert refused(store, tmp_path) == f"{tmp_path}: is a folder, not a file (give the CSV file inside it)"


def test_a_fifo_given_as_the_file(store, tmp_path):
    fifo = tmp_path / "list.csv"
    os.mkfifo(fifo)
    assert refused(store, fifo) == (
        f"{fifo}: is a named pipe (FIFO), not a file "
        "(give a regular file, or pipe the data into 'mailer subscribers import -')")


def test_a_file_that_does_not_exist(store, tmp_path):
    path = tmp_path / "gone.csv"
    assert refused(store, path) == f"{path}: no such file (check the path)"


def test_a_file_that_cannot_be_read(store):
    # Opens fine, fails on read: what a dying disk or a revoked share does.
    path = Path("/proc/self/mem")
    assert refused(store, path) == f"{path}: cannot read: Input/output error"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: see the test below")
def test_a_file_without_read_permission(store, subscriber_file):
    path = subscriber_file("email\nann@example.com\n")
    path.chmod(0)
    assert refused(store, path) == f"{path}: cannot open: Permission denied"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can drop the capabilities it has")
def test_a_file_without_read_permission_for_root_without_dac_override(workspace_dir):
    # Root reads any file only through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH;
    # a container that drops them (as many do) cannot read a file of mode 000.
    path = workspace_dir / "list.csv"
    path.write_text("email\nann@example.com\n", encoding="utf-8")
    path.chmod(0)
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is missing"
    result = subprocess.run(
        [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search",
         sys.executable, "-m", "mailer", "subscribers", "import", str(path)],
        cwd=workspace_dir, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"Error: {path}: cannot open: Permission denied\n"
    with Store.open(workspace_dir / "subscribers" / "mailer.db") as opened:
        assert opened.counts()["active"] == 0


def test_an_import_that_fails_late_writes_nothing(store, subscriber_file, tmp_path):
    store.add(parse_address("old@example.com"), actor="a")
    rows = "".join(f"p{i}@example.com\n" for i in range(30_000))
    path = subscriber_file("email,name\n" + rows.replace("\n", ",x\n") + 'z@example.com,"never closed\n')
    with pytest.raises(SubscriberFileError):
        run(store, path, rejects=tmp_path / "rejects.csv")
    assert store.counts()["active"] == 1
    assert not (tmp_path / "rejects.csv").exists()


def test_two_imports_at_once_apply_one_after_the_other_and_both_reports_are_true(workspace_dir):
    rows = 20_000
    path = workspace_dir / "big.csv"
    path.write_text("email,name\n" + "".join(f"p{i}@example.com,P {i}\n" for i in range(rows)))
    command = [sys.executable, "-m", "mailer", "subscribers", "import", str(path), "--json"]
    processes = [subprocess.Popen(command, cwd=workspace_dir, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        reports.append(json.loads(out))
    first, second = sorted(reports, key=lambda report: -report["imported"])
    assert (first["imported"], first["unchanged"]) == (rows, 0)
    assert (second["imported"], second["unchanged"]) == (0, rows)
    with Store.open(workspace_dir / "subscribers" / "mailer.db") as opened:
        assert opened.counts()["active"] == rows
