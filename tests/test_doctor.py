"""`mailer doctor` on the workspace itself, the unsubscribe URL and SMTP, through the CLI."""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading

import pytest

from tests.doctor_servers import lines

GOOD_DNS = {
    ("newsletter.example.com", "TXT"): ["v=spf1 include:_spf.relay.net ~all"],
    ("_dmarc.newsletter.example.com", "TXT"): ["v=DMARC1; p=none"],
}


def test_doctor_passes_the_example_workspace_on_the_outbox(run_mailer):
    result = run_mailer("doctor")
    assert result.exit_code == 0, result.output
    found = lines(result)
    assert found["settings"] == ("ok settings: '云计算技术追踪' from weekly@newsletter.example.com, "
                                 "transport outbox")
    assert found["issue"] == "ok issue: 2024-26.md renders: '云计算技术追踪 2024 年第二十六期'"
    assert found["lint"] == "ok lint: 2024-26.md: no errors, no warnings"
    assert found["unsubscribe"].startswith("warning unsubscribe: https://newsletter.example.com/unsubscribe "
                                           "is a placeholder")
    assert result.output.splitlines()[-1] == "4 ok, 1 warning(s), 0 problem(s)"


def test_doctor_reports_settings_that_do_not_load_and_stops_there(run_mailer, workspace_dir):
    path = workspace_dir / "newsletter.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("[compose]", "[compose]\nissue_dir = 'x'"),
                    encoding="utf-8")
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"problem settings: {path}: unknown key 'issue_dir' in [compose]; expected one of "
        "['issues', 'templates', 'text_width']",
        "0 ok, 0 warning(s), 1 problem(s)"]


def test_doctor_reports_a_newest_issue_that_does_not_render(run_mailer, workspace_dir):
    (workspace_dir / "issues" / "2024-27.md").write_text("---\nsubject: [broken\n---\n# Title\n", encoding="utf-8")
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["issue"].startswith("problem issue: 2024-27.md does not render: ")
    assert "broken front matter" in lines(result)["issue"]


def test_doctor_takes_the_newest_issue_whatever_its_markdown_suffix(run_mailer, workspace_dir):
    (workspace_dir / "issues" / "2024-27.markdown").write_text(
        "# Issue 27\n\nNews of the week.\n", encoding="utf-8")
    result = run_mailer("doctor")
    assert lines(result)["issue"] == "ok issue: 2024-27.markdown renders: 'Issue 27'"


def test_doctor_reports_lint_errors_as_a_problem(run_mailer, workspace_dir):
    (workspace_dir / "issues" / "2024-27.md").write_text(
        "# Issue 27\n\n## News\n\n**1.** [A post](/relative/post)\n\n**Summary:** words.\n", encoding="utf-8")
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["lint"].startswith("problem lint: 1 error(s), first: issues/2024-27.md:5: error: ")


def test_doctor_reports_lint_warnings_as_a_warning(run_mailer, workspace_dir):
    (workspace_dir / "issues" / "2024-27.md").write_text(
        "# Issue 27\n\n## News\n\n**1.** [A post](http://plain.example.org/post)\n\n**Summary:** words.\n",
        encoding="utf-8")
    result = run_mailer("doctor")
    assert result.exit_code == 0, result.output
    assert lines(result)["lint"].startswith("warning lint: ")
    assert "not https" in lines(result)["lint"]


def test_doctor_json_lists_every_check(run_mailer):
    result = run_mailer("doctor", "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert [c["name"] for c in report["checks"]] == ["settings", "issue", "lint", "transport", "unsubscribe"]
    assert report["problems"] == 0 and report["warnings"] == 1
    assert report["checks"][4]["hint"] == "set [unsubscribe] url to your unsubscribe page"


def test_doctor_calls_a_placeholder_unsubscribe_url_a_problem_where_mail_is_delivered(
        run_mailer, doctor_settings, nameserver, login_smtp_server):
    nameserver.records.update(GOOD_DNS)
    doctor_settings("smtp", unsubscribe="https://newsletter.example.com/unsubscribe",
                    extra=f'[smtp]\nhost = "127.0.0.1"\nport = {login_smtp_server}\nsecurity = "none"\n')
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["unsubscribe"] == (
        "problem unsubscribe: https://newsletter.example.com/unsubscribe is a placeholder no reader can reach "
        "(set [unsubscribe] url to your unsubscribe page)")


@pytest.fixture
def https_page(trusted_certificate):
    """An https server on 127.0.0.1 answering 400 to every GET, as `mailer serve` does to a bad token."""
    cert, key = trusted_certificate

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/unsubscribe"
    server.shutdown()
    server.server_close()


def test_doctor_online_finds_the_unsubscribe_page_answering(run_mailer, doctor_settings, https_page):
    doctor_settings("outbox", unsubscribe=https_page)
    result = run_mailer("doctor", "--online")
    found = lines(result)
    assert found["unsubscribe-online"] == (
        f"ok unsubscribe-online: {https_page} answers (HTTP 400 for a dummy token)")


def test_doctor_online_reports_an_unsubscribe_page_that_does_not_answer(run_mailer, doctor_settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"https://127.0.0.1:{probe.getsockname()[1]}/unsubscribe"
    doctor_settings("outbox", unsubscribe=closed)
    result = run_mailer("doctor", "--online")
    assert result.exit_code == 1
    assert lines(result)["unsubscribe-online"].startswith(f"problem unsubscribe-online: {closed} does not answer: ")


@pytest.fixture
def smtp_doctor(run_mailer, doctor_settings, nameserver, login_smtp_server, monkeypatch):
    """Runs `mailer doctor` on the smtp transport against the test server, with DNS in order."""
    nameserver.records.update(GOOD_DNS)

    def run(security: str = "none", password: str | None = "right password"):
        if password is None:
            monkeypatch.delenv("NEWS_SMTP_PASSWORD", raising=False)
        else:
            monkeypatch.setenv("NEWS_SMTP_PASSWORD", password)
        doctor_settings("smtp", extra=smtp_table(login_smtp_server, security))
        return run_mailer("doctor")

    run.port = login_smtp_server
    return run


def smtp_table(port: int, security: str = "none") -> str:
    return (f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\n'
            'username = "writer"\npassword_env = "NEWS_SMTP_PASSWORD"\ntimeout = 5\n')


def test_doctor_logs_in_to_the_smtp_server(smtp_doctor):
    result = smtp_doctor()
    assert result.exit_code == 0, result.output
    found = lines(result)
    assert found["smtp"] == f"ok smtp: connected to 127.0.0.1:{smtp_doctor.port}"
    assert found["smtp-tls"].startswith('warning smtp-tls: security = "none": ')
    assert found["smtp-login"] == "ok smtp-login: logged in as 'writer'"
    assert found["spf"] == "ok spf: newsletter.example.com: v=spf1 include:_spf.relay.net ~all"
    assert found["dmarc"].startswith("ok dmarc: p=none at _dmarc.newsletter.example.com")


@pytest.mark.parametrize("login_smtp_server", [{"starttls": True}], indirect=True)
def test_doctor_starts_tls_before_the_smtp_login(smtp_doctor):
    result = smtp_doctor("starttls")
    assert result.exit_code == 0, result.output
    assert lines(result)["smtp-tls"] == "ok smtp-tls: STARTTLS: the connection is encrypted"
    assert lines(result)["smtp-login"] == "ok smtp-login: logged in as 'writer'"


def test_doctor_reports_a_refused_smtp_login(smtp_doctor):
    result = smtp_doctor(password="wrong password")
    assert result.exit_code == 1
    assert lines(result)["smtp-login"].startswith("problem smtp-login: the server refused the login of 'writer': 535 ")


def test_doctor_reports_a_missing_smtp_password(smtp_doctor):
    result = smtp_doctor(password=None)
    assert result.exit_code == 1
    assert lines(result)["smtp-login"] == ("problem smtp-login: the environment variable NEWS_SMTP_PASSWORD is "
                                           "not set (export NEWS_SMTP_PASSWORD with the SMTP password)")


def test_doctor_reports_a_server_without_starttls(smtp_doctor):
    result = smtp_doctor("starttls")
    assert result.exit_code == 1
    assert lines(result)["smtp-tls"] == ('problem smtp-tls: 127.0.0.1 does not offer STARTTLS (use port 465 with '
                                         'security = "tls", or a relay that encrypts)')
    assert "smtp-login" not in lines(result)


def test_doctor_reports_an_smtp_server_it_cannot_reach(run_mailer, doctor_settings, nameserver):
    nameserver.records.update(GOOD_DNS)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    doctor_settings("smtp", extra=smtp_table(port))
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["smtp"].startswith(f"problem smtp: cannot connect to 127.0.0.1:{port}: ")
