"""The unsubscribe page, served on a free port of 127.0.0.1 and driven over real HTTP."""

from __future__ import annotations

import http.client
import random
import sqlite3
import threading
import time
from urllib.parse import quote

import pytest

from mailer.subscribers.addresses import parse_address
from mailer.store import Store
from mailer.tokens import SECRET_ENV, Signer
from mailer.web.unsubscribe import create_app
from mailer.web.unsubscribe_server import make_server

from .servers import SHUTDOWN_POLL

SECRET = "s" * 32
LIST_ID = "cloud-weekly.newsletter.example.com"  # newsletter.toml's


@pytest.fixture
def server(workspace, monkeypatch):
    """`mailer serve` of the workspace copy on a free port; yields (host, port, store path)."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with Store.open(workspace.store_path) as store:
        for n, email in enumerate(["ann@example.com", "bob@example.com", "cy@example.com"]):
            store.add(parse_address(email), actor="test")
        send = store.begin_send("2024-26", "hash", "Subject")
    logged: list[str] = []
    app = create_app(workspace.root)
    app.log = logged.append
    httpd = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                              daemon=True)
    thread.start()
    yield httpd.server_address[1], workspace.store_path, send.id, logged
    httpd.shutdown()
    httpd.server_close()


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode("utf-8")
    finally:
        conn.close()


def token(store_path, subscriber_id: int, send_id: int = 1) -> str:
    """The token a send from the store at `store_path` gives `subscriber_id`."""
    with Store.open(store_path) as store:
        return store.signer(SECRET.encode(), LIST_ID).issue(subscriber_id, send_id)


def status_of(store_path, email: str) -> str:
    with Store.open(store_path) as store:
        return store.require(parse_address(email)).status


def history_of(store_path, email: str) -> list:
    with Store.open(store_path) as store:
        return store.history(store.require(parse_address(email)))


ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


def test_get_shows_the_address_and_a_button_and_changes_nothing(server):
    port, store_path, send_id, _ = server
    for _ in range(3):  # a link scanner, a security gateway, the reader
        status, headers, page = request(port, "GET", f"/unsubscribe?t={token(store_path, 1, send_id)}")
        assert status == 200
        assert "ann@example.com" in page and "云计算技术追踪" in page
        assert '<form method="post"' in page and 'value="unsubscribe"' in page
    assert request(port, "HEAD", f"/unsubscribe?t={token(store_path, 1, send_id)}")[0] == 200
    assert status_of(store_path, "ann@example.com") == "active"
    assert [e.kind for e in history_of(store_path, "ann@example.com")] == ["subscribed"]


def test_one_click_post_unsubscribes_once_and_a_replay_is_harmless(server):
    port, store_path, send_id, _ = server
    path = f"/unsubscribe?t={token(store_path, 2, send_id)}"
    for _ in range(3):
        status, _, page = request(port, "POST", path, b"List-Unsubscribe=One-Click", ONE_CLICK)
        assert status == 200
        assert "bob@example.com" in page and "已退订" in page
    assert status_of(store_path, "bob@example.com") == "unsubscribed"
    events = [e for e in history_of(store_path, "bob@example.com") if e.kind == "unsubscribed"]
    assert len(events) == 1
    assert "one-click" in events[0].reason and "2024-26" in events[0].reason and events[0].at
    assert status_of(store_path, "ann@example.com") == "active"
    with Store.open(store_path) as store:
        assert store.feedback_counts(send_id)["unsubscribed"] == 1


def test_one_click_as_multipart_form_data_is_honoured(server):
    port, store_path, send_id, _ = server
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n"
            b"One-Click\r\n--XyZ--\r\n")
    status, _, _ = request(port, "POST", f"/unsubscribe?t={token(store_path, 3, send_id)}", body,
                           {"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert status == 200
    assert status_of(store_path, "cy@example.com") == "unsubscribed"


def test_the_button_unsubscribes_and_the_next_one_subscribes_again(server):
    port, store_path, send_id, _ = server
    path = f"/unsubscribe?t={token(store_path, 1, send_id)}"
    status, _, page = request(port, "POST", path, b"action=unsubscribe", ONE_CLICK)
    assert status == 200 and 'value="resubscribe"' in page
    assert status_of(store_path, "ann@example.com") == "unsubscribed"
    status, _, page = request(port, "GET", path)
    assert "此前已退订" in page and 'value="resubscribe"' in page
    status, _, page = request(port, "POST", path, b"action=resubscribe", ONE_CLICK)
    assert status == 200 and "欢迎回来" in page
    assert status_of(store_path, "ann@example.com") == "active"
    assert [e.kind for e in history_of(store_path, "ann@example.com")] == [
        "subscribed", "unsubscribed", "resubscribed"]


def test_a_bounced_reader_cannot_subscribe_again_through_the_page(server):
    port, store_path, send_id, _ = server
    with Store.open(store_path) as store:
        store.set_status(parse_address("bob@example.com"), "bounced", actor="test")
    path = f"/unsubscribe?t={token(store_path, 2, send_id)}"
    assert "value=" not in request(port, "GET", path)[2]
    request(port, "POST", path, b"action=resubscribe", ONE_CLICK)
    request(port, "POST", path, b"List-Unsubscribe=One-Click", ONE_CLICK)
    assert status_of(store_path, "bob@example.com") == "bounced"


def test_forged_altered_and_truncated_tokens_are_refused_and_change_nothing(server):
    port, store_path, send_id, logged = server
    good = token(store_path, 1, send_id)
    rng = random.Random(8058)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    forged = [
        Signer(b"another secret of enough length", "0" * 32, LIST_ID).issue(1, send_id),  # signed with another key
        good[:-1], good[:20], good + "A", good + "=", "=" + good, good[:-1] + "\u00e9",
        good + "%00", " " + good, good.lower(), "", "t", "%E4%B8%AD%E6%96%87",
        good[:-1] + chr(ord(good[-1]) ^ 1),  # flips a spare bit: must not decode to the same token
    ]
    forged += ["".join(rng.choice(alphabet) for _ in range(length)) for length in (32, 39) * 30]
    for _ in range(60):  # one character of the real token changed
        at = rng.randrange(len(good))
        replacement = rng.choice(alphabet.replace(good[at], ""))
        forged.append(good[:at] + replacement + good[at + 1:])
    for bad in forged:
        for method, body in (("GET", b""), ("POST", b"List-Unsubscribe=One-Click")):
            status, _, page = request(port, method, f"/unsubscribe?t={quote(bad, safe='%')}", body, ONE_CLICK)
            assert status == 400, bad
            assert "ann@example.com" not in page
    # Two tokens, or a body token that disagrees with the URL's, are refused as well.
    assert request(port, "GET", f"/unsubscribe?t={good}&t={good}")[0] == 400
    assert request(port, "POST", f"/unsubscribe?t={good}", f"t={token(store_path, 2, send_id)}".encode(), ONE_CLICK)[0] == 400
    assert request(port, "POST", "/unsubscribe", b"List-Unsubscribe=One-Click", ONE_CLICK)[0] == 400
    assert status_of(store_path, "ann@example.com") == "active"
    assert status_of(store_path, "bob@example.com") == "active"
    assert logged == []


def test_raw_non_ascii_bytes_in_the_request_are_a_400_not_a_500(server):
    port, _, _, logged = server
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /unsubscribe?t=\xe4\xb8\xad\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400")
    assert logged == []


def test_a_test_message_token_gets_a_page_and_records_nothing(server):
    port, store_path, _, _ = server
    test_token = token(store_path, 0, 0)
    status, _, page = request(port, "GET", f"/unsubscribe?t={test_token}")
    assert status == 200 and "测试邮件" in page
    status, _, page = request(port, "POST", f"/unsubscribe?t={test_token}", b"List-Unsubscribe=One-Click", ONE_CLICK)
    assert status == 200 and "测试邮件" in page
    for email in ("ann@example.com", "bob@example.com", "cy@example.com"):
        assert status_of(store_path, email) == "active"


def test_a_token_for_an_erased_subscriber_is_answered_calmly(server):
    port, store_path, send_id, _ = server
    with Store.open(store_path) as store:
        store.erase(parse_address("cy@example.com"), actor="test")
    for method in ("GET", "POST"):
        status, _, page = request(port, method, f"/unsubscribe?t={token(store_path, 3, send_id)}",
                                  b"List-Unsubscribe=One-Click", ONE_CLICK)
        assert status == 200 and "不在订阅列表中" in page


def test_pages_carry_security_headers_and_never_redirect_or_show_the_secret(server):
    port, store_path, send_id, _ = server
    for method, path in (("GET", f"/unsubscribe?t={token(store_path, 1, send_id)}"), ("GET", "/unsubscribe?t=bad"),
                         ("GET", "/elsewhere?next=https://evil.example"), ("PUT", "/unsubscribe"),
                         ("GET", "//evil.example/unsubscribe")):
        status, headers, page = request(port, method, path)
        assert status in (200, 400, 404, 405)
        assert "Location" not in headers
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"
        assert SECRET not in page and "evil.example" not in page


def test_a_huge_body_is_refused_and_the_server_keeps_serving(server):
    port, store_path, send_id, _ = server
    status, _, _ = request(port, "POST", f"/unsubscribe?t={token(store_path, 1, send_id)}", b"x" * 100_000, ONE_CLICK)
    assert status == 413
    status, _, _ = request(port, "POST", f"/unsubscribe?t={token(store_path, 1, send_id)}", b"{}",
                           {"Content-Type": "application/json"})
    assert status == 415
    assert request(port, "GET", f"/unsubscribe?t={token(store_path, 1, send_id)}")[0] == 200
    assert status_of(store_path, "ann@example.com") == "active"


def test_the_page_speaks_english_for_an_english_newsletter_with_overrides(workspace_dir, monkeypatch):
    from mailer.web.unsubscribe import page_strings
    from mailer.workspace import Workspace

    config = workspace_dir / "newsletter.toml"
    text = config.read_text(encoding="utf-8").replace('language = "zh-CN"', 'language = "en-GB"')
    config.write_text(text + '\n[vars.unsubscribe_page]\nconfirm_button = "x"\ndone_title = "Done, {newsletter}"\n',
                      encoding="utf-8")
    strings = page_strings(Workspace(workspace_dir).settings)
    assert strings["confirm_title"] == "Unsubscribe from {newsletter}?"
    assert strings["done_title"] == "Done, {newsletter}"
    assert "confirm_button" not in strings


def test_the_log_never_holds_a_token(server, capfd):
    port, store_path, send_id, _ = server
    good = token(store_path, 1, send_id)
    request(port, "GET", f"/unsubscribe?t={good}")
    request(port, "GET", f"/unsubscribe?x=1&t={good}&y=2")
    # The server writes its log line after the answer has gone out.
    logged, deadline = "", time.monotonic() + 10
    while "&y=2" not in logged and time.monotonic() < deadline:
        time.sleep(0.02)
        logged += capfd.readouterr().err
    assert "GET /unsubscribe?t=… " in logged and "&t=…&y=2" in logged
    assert good not in logged and SECRET not in logged


def test_serve_on_a_port_in_use_ends_in_one_line(workspace, run_mailer, monkeypatch):
    import socket

    monkeypatch.setenv(SECRET_ENV, SECRET)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_mailer("serve", "--port", str(port))
    assert result.exit_code == 1
    assert result.output == (f"Error: cannot listen on 127.0.0.1:{port}: Address already in use "
                             "(pick another --port or --host)\n")


def test_a_burst_of_one_click_posts_is_answered_and_recorded_with_no_connection_reset(server):
    """After a send, mailbox providers post one-click unsubscribes in bursts: 50 clients at
    once, 4 each, every one a different reader. Each is answered 200 and recorded."""
    port, store_path, send_id, _ = server
    with Store.open(store_path) as store:
        ids = [store.add(parse_address(f"reader{n}@example.com"), actor="test")[1].id for n in range(200)]
        signer = store.signer(SECRET.encode(), LIST_ID)
        tokens = [signer.issue(subscriber_id, send_id) for subscriber_id in ids]
    start = threading.Barrier(50)
    answers: list[object] = []

    def client(mine: list[str]) -> None:
        start.wait(timeout=30)
        for one in mine:
            try:
                answers.append(request(port, "POST", f"/unsubscribe?t={one}",
                                       b"List-Unsubscribe=One-Click", ONE_CLICK)[0])
            except OSError as exc:  # a reset, a refused connection, a timeout
                answers.append(type(exc).__name__)

    clients = [threading.Thread(target=client, args=(tokens[n::50],)) for n in range(50)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(timeout=120)
    assert answers == [200] * 200
    with Store.open(store_path) as store:
        assert store.counts().get("unsubscribed") == 200


def test_a_post_while_another_command_writes_is_a_503_and_changes_nothing_until_retried(server):
    port, store_path, send_id, _ = server
    path = f"/unsubscribe?t={token(store_path, 2, send_id)}"
    writer = sqlite3.connect(store_path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # what a send, an import or a sync holds while it writes
        status, headers, page = request(port, "POST", path, b"List-Unsubscribe=One-Click", ONE_CLICK)
        assert status == 503
        assert int(headers["Retry-After"]) > 0
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    assert status_of(store_path, "bob@example.com") == "active"
    assert request(port, "POST", path, b"List-Unsubscribe=One-Click", ONE_CLICK)[0] == 200
    assert status_of(store_path, "bob@example.com") == "unsubscribed"


def test_clients_that_never_finish_their_request_do_not_keep_readers_out(server):
    """Half-sent requests, more of them than the server has threads, while a reader posts."""
    port, store_path, send_id, _ = server
    import socket

    silent = []
    try:
        for _ in range(40):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"POST /unsubscribe?t=")  # and nothing more
            silent.append(sock)
        assert request(port, "POST", f"/unsubscribe?t={token(store_path, 3, send_id)}", b"List-Unsubscribe=One-Click",
                       ONE_CLICK)[0] == 200
    finally:
        for sock in silent:
            sock.close()
    assert status_of(store_path, "cy@example.com") == "unsubscribed"


def test_a_client_can_keep_its_connection_for_several_requests(server):
    port, store_path, send_id, _ = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", f"/unsubscribe?t={token(store_path, 1, send_id)}")
        first = conn.getresponse()
        first.read()
        kept = conn.sock
        conn.request("POST", f"/unsubscribe?t={token(store_path, 2, send_id)}", body=b"List-Unsubscribe=One-Click",
                     headers=ONE_CLICK)
        second = conn.getresponse()
        second.read()
        assert (first.status, second.status) == (200, 200)
        assert kept is not None and conn.sock is kept
    finally:
        conn.close()
    assert status_of(store_path, "bob@example.com") == "unsubscribed"


def test_the_servers_own_messages_never_hold_a_token(server, caplog):
    """waitress logs a request's trouble itself (a client gone, an error while serving)."""
    import logging

    port, store_path, send_id, _ = server
    good = token(store_path, 1, send_id)
    logging.getLogger("waitress").warning("Exception while serving %s", f"/unsubscribe?t={good}&x=1")
    assert "/unsubscribe?t=…&x=1" in caplog.text and good not in caplog.text
