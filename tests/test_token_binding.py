"""Old unsubscribe links never act on somebody else: tokens are bound to their store and list.

Driven as a user meets it: the command line, the outbox's real messages,
and the unsubscribe app served over HTTP on a free port.
"""

from __future__ import annotations

import base64
import email
import hashlib
import hmac
import http.client
import json
import shutil
import threading
from contextlib import contextmanager
from email import policy
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from bench.workspace_copy import copy_workspace
from mailer.cli import cli
from mailer.store import Store, schema
from mailer.subscribers.addresses import parse_address
from mailer.tokens import SECRET_ENV, load_secret
from mailer.web.unsubscribe import create_app
from mailer.web.unsubscribe_server import make_server

from .conftest import REPO
from .servers import SHUTDOWN_POLL

PEOPLE = ["ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com"]
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(autouse=True)
def secret_file(monkeypatch):
    """The secret of subscribers/secret.key, as a workspace without MAILER_SECRET has it."""
    monkeypatch.delenv(SECRET_ENV, raising=False)


def mailer(root: Path, *args: str):
    result = CliRunner().invoke(cli, ["--workspace", str(root), *args], catch_exceptions=False)
    return result


def import_people(root: Path) -> None:
    (root / "people.csv").write_text("email\n" + "\n".join(PEOPLE) + "\n", encoding="utf-8")
    assert mailer(root, "subscribers", "import", str(root / "people.csv")).exit_code == 0


def send_and_collect_links(root: Path) -> dict[str, str]:
    """Send the example issue to the outbox; each recipient's unsubscribe token."""
    result = mailer(root, "send-issue", "2024-26", "--yes", "--rate", "1000")
    assert result.exit_code == 0, result.output
    links = {}
    for path in (root / "outbox" / "2024-26").glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        url = str(msg["List-Unsubscribe"]).split(">")[0].lstrip("<")
        links[msg["To"].addresses[0].addr_spec] = parse_qs(urlsplit(url).query)["t"][0]
    return links


def status(root: Path, address: str) -> str | None:
    with Store.open(root / "subscribers" / "mailer.db") as store:
        found = store.get(parse_address(address))
    return found.status if found else None


@contextmanager
def serving(root: Path):
    """`mailer serve` of the workspace at `root` on a free port; yields a request function."""
    app = create_app(root)
    app.log = lambda line: None
    httpd = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                              daemon=True)
    thread.start()

    def request(method: str, token: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=10)
        try:
            body = b"List-Unsubscribe=One-Click" if method == "POST" else None
            conn.request(method, f"/unsubscribe?t={token}", body=body, headers=ONE_CLICK if body else {})
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8")
        finally:
            conn.close()

    try:
        yield request
    finally:
        httpd.shutdown()
        httpd.server_close()


def move_store_away(root: Path) -> None:
    """What the damaged-store hint advises: move mailer.db away (secret.key stays)."""
    folder = root / "subscribers"
    for name in ("mailer.db", "mailer.db-wal", "mailer.db-shm"):
        if (folder / name).exists():
            shutil.move(folder / name, root / f"old-{name}")


def test_links_of_a_store_moved_away_act_on_nobody_in_the_store_made_from_its_export(workspace_dir):
    root = workspace_dir
    import_people(root)
    links = send_and_collect_links(root)
    assert sorted(links) == PEOPLE
    assert mailer(root, "subscribers", "delete", "bob@example.com", "--yes").exit_code == 0
    assert mailer(root, "subscribers", "export", str(root / "backup.csv")).exit_code == 0
    move_store_away(root)
    assert (root / "subscribers" / "secret.key").exists()
    imported = mailer(root, "subscribers", "import", str(root / "backup.csv"), "--json")
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.output)["imported"] == 3

    with serving(root) as request:
        # bob's old link now has id 2, cat's, in the new store; cat's has dan's.
        for method in ("GET", "POST"):
            for who in ("bob@example.com", "cat@example.com"):
                code, page = request(method, links[who])
                assert code == 400
                assert "cat@example.com" not in page and "dan@example.com" not in page
    assert (status(root, "cat@example.com"), status(root, "dan@example.com")) == ("active", "active")
    assert status(root, "bob@example.com") is None


def test_an_erasure_survives_export_and_import_into_a_new_store(workspace_dir):
    root = workspace_dir
    import_people(root)
    assert mailer(root, "subscribers", "delete", "bob@example.com", "--yes").exit_code == 0
    assert mailer(root, "subscribers", "export", str(root / "backup.csv")).exit_code == 0
    move_store_away(root)
    imported = mailer(root, "subscribers", "import", str(root / "backup.csv"))
    assert imported.exit_code == 0, imported.output
    assert "  erased           1  erasures carried by the file: kept, never imported" in imported.output
    assert mailer(root, "subscribers", "list").output.split() == ["ann@example.com", "cat@example.com",
                                                                 "dan@example.com"]
    added = mailer(root, "subscribers", "add", "bob@example.com")
    assert added.exit_code == 1
    assert added.output == ("Error: bob@example.com was erased on request and is suppressed"
                            " (pass --resubscribe if they asked to join again)\n")
    again = CliRunner().invoke(cli, ["--workspace", str(root), "subscribers", "import", "-", "--json"],
                               input="email\nbob@example.com\n")
    assert json.loads(again.output)["skipped"] == 1
    # And the next export still carries it, once.
    assert mailer(root, "subscribers", "export", str(root / "second.csv")).exit_code == 0
    rows = (root / "second.csv").read_text(encoding="utf-8").splitlines()
    bob_hash = hashlib.sha256(parse_address("bob@example.com").key.encode()).hexdigest()
    assert [row for row in rows if bob_hash in row] == [rows[1]]
    assert rows[1].startswith(",,erased,")


def export_with_bob_erased(root: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The export of a store where bob was erased, and another workspace where bob is active."""
    import_people(root)
    assert mailer(root, "subscribers", "delete", "bob@example.com", "--yes").exit_code == 0
    assert mailer(root, "subscribers", "export", str(tmp_path / "backup.csv")).exit_code == 0
    other = copy_workspace(REPO, tmp_path / "other")
    import_people(other)
    return tmp_path / "backup.csv", other


def test_an_imported_erasure_erases_that_person_in_the_store_too(workspace_dir, tmp_path):
    backup, other = export_with_bob_erased(workspace_dir, tmp_path)
    imported = mailer(other, "subscribers", "import", str(backup), "--json")
    assert json.loads(imported.output)["erased"] == 1
    assert status(other, "bob@example.com") is None
    assert json.loads(mailer(other, "subscribers", "stats", "--json").output)["erased"] == 1


def test_a_checked_import_keeps_no_erasure(workspace_dir, tmp_path):
    backup, other = export_with_bob_erased(workspace_dir, tmp_path)
    checked = mailer(other, "subscribers", "import", str(backup), "--dry-run", "--json")
    assert json.loads(checked.output)["erased"] == 1
    assert status(other, "bob@example.com") == "active"


def test_a_bad_erasure_row_is_rejected_with_its_line(workspace_dir):
    root = workspace_dir
    (root / "edited.csv").write_text(
        "email,status,erased\n,erased,not-a-hash\nann@example.com,active," + "0" * 64 + "\n",
        encoding="utf-8")
    result = mailer(root, "subscribers", "import", str(root / "edited.csv"))
    assert result.exit_code == 0, result.output
    assert "line 2: column 'erased' is not the hash of an erased address" in result.output
    assert "line 3: has both an address and an erasure in column 'erased'" in result.output


def test_an_empty_store_file_is_refused_and_unsubscribes_nobody(workspace_dir):
    root = workspace_dir
    import_people(root)
    links = send_and_collect_links(root)
    move_store_away(root)
    (root / "subscribers" / "mailer.db").write_bytes(b"")
    result = mailer(root, "subscribers", "import", str(root / "people.csv"))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert "is an empty file, not a subscriber store" in result.output
    with serving(root) as request:
        code, page = request("POST", links["cat@example.com"])
    assert code == 500 and "cat@example.com" not in page
    assert (root / "subscribers" / "mailer.db").stat().st_size == 0


def test_a_workspace_refuses_the_links_of_another_sharing_its_secret(workspace_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "one secret for both workspaces " + "x" * 16)
    other = copy_workspace(REPO, tmp_path / "other")
    for root in (workspace_dir, other):
        import_people(root)
    links = send_and_collect_links(workspace_dir)
    with serving(other) as request:
        for who, token in links.items():
            assert request("POST", token)[0] == 400
    assert [status(other, who) for who in PEOPLE] == ["active"] * 4
    with serving(workspace_dir) as request:
        assert request("POST", links["cat@example.com"])[0] == 200
    assert status(workspace_dir, "cat@example.com") == "unsubscribed"


def v1_token(secret: bytes, subscriber_id: int, send_id: int) -> str:
    """A link as mailer wrote them before stores had an id (token version 1), byte for byte."""
    body = bytes([1]) + subscriber_id.to_bytes(8, "big") + send_id.to_bytes(4, "big")
    tag = hmac.new(secret, b"mailer-unsubscribe\x00" + body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode("ascii")


def test_a_version_1_link_still_unsubscribes_in_the_store_that_sent_it(workspace_dir, monkeypatch):
    root = workspace_dir
    # A store as the release before made it: schema version 3, a send begun.
    with monkeypatch.context() as before:
        before.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])
        with Store.open(root / "subscribers" / "mailer.db") as store:
            for address in PEOPLE:
                store.add(parse_address(address), actor="test")
            send = store.begin_send("2024-26", "hash", "Subject")
            cat = store.require(parse_address("cat@example.com")).id
    secret = load_secret(root / "subscribers")  # secret.key, as that release made it
    old_link = v1_token(secret, cat, send.id)
    with serving(root) as request:  # opening the store migrates it
        code, page = request("GET", old_link)
        assert code == 200 and "cat@example.com" in page
        assert request("POST", old_link)[0] == 200
        # A send made after the migration never issued version-1 links.
        assert request("POST", v1_token(secret, cat, send.id + 1))[0] == 400
    assert status(root, "cat@example.com") == "unsubscribed"


def test_a_version_1_link_is_refused_by_a_store_made_since(workspace_dir):
    root = workspace_dir
    import_people(root)
    links = send_and_collect_links(root)
    assert all(len(token) == 32 for token in links.values())
    secret = load_secret(root / "subscribers")
    with serving(root) as request:
        assert request("POST", v1_token(secret, 3, 1))[0] == 400
    assert status(root, "cat@example.com") == "active"
