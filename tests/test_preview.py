"""The preview server: its HTTP answers, its command, and the page in Chromium.

Every test runs a real server on a free port of 127.0.0.1 over a copy of the
example workspace, and edits files there the way an editor saves them. No
test asserts on time: each waits for what it expects, with a timeout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import expect

from mailer.cli import cli
from mailer.web.preview import Preview

TITLE = "云计算技术追踪 2024 年第二十六期"
SUMMARY = "Singularity 是微软的全球分布式调度服务"
BROKEN_FRONT_MATTER = "---\nsubject: [broken\n---\n"


def get(server, path: str, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(server.url.rstrip("/") + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def render(server, issue: str = "") -> dict:
    status, body = get(server, f"/api/render?issue={issue}")
    assert status == 200
    return json.loads(body)


def wait_until(condition, timeout: float = 10.0):
    """Poll `condition` until it returns something true; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)


def save(path: Path, text: str) -> None:
    """Write `text` to `path` as editors that save in place do."""
    path.write_text(text, encoding="utf-8")


def rendered_after_change(server, previous_epoch: int, issue: str = "") -> dict:
    wait_until(lambda: server.preview.epoch > previous_epoch)
    return render(server, issue)


# -- the HTTP side ----------------------------------------------------------


def test_render_gives_the_issue_as_the_sample_subscriber_sees_it(preview_server):
    data = render(preview_server)
    assert data["issue"] == "2024-26" and data["error"] is None
    email = data["email"]
    assert email["subject"] == TITLE
    assert email["from_name"] == "云计算技术追踪"
    assert email["from_address"] == "weekly@newsletter.example.com"
    assert email["preheader"].startswith("多 DC 联合训练")
    assert TITLE in email["html"] and SUMMARY in email["html"]
    assert SUMMARY in email["text"]
    assert "%%" not in email["html"] and "%%" not in email["text"]
    assert "t=SAMPLE" in email["html"]
    assert 0 < email["size"] < email["clip_limit"] == 102_000
    assert email["lint"] == []
    assert email["source"] == os.path.join("issues", "2024-26.md")


def test_epoch_long_poll_answers_when_the_issue_is_saved(preview_server, workspace_dir):
    first = render(preview_server)
    answer: dict = {}

    def poll():
        status, body = get(preview_server, f"/api/epoch?since={first['epoch']}&server={first['server']}")
        answer.update(json.loads(body))

    poller = threading.Thread(target=poll)
    poller.start()
    issue = workspace_dir / "issues" / "2024-26.md"
    save(issue, issue.read_text(encoding="utf-8").replace(TITLE, "改过的标题"))
    poller.join(timeout=15)
    assert answer["epoch"] > first["epoch"]
    assert render(preview_server)["email"]["subject"] == "改过的标题"


def test_epoch_of_a_previous_server_run_is_answered_at_once(preview_server):
    status, body = get(preview_server, "/api/epoch?since=1&server=0123456789ab")
    assert status == 200
    assert json.loads(body)["server"] == preview_server.preview.server_id


def test_a_render_error_names_the_line_and_keeps_the_last_good_version(preview_server, workspace_dir):
    good = render(preview_server)
    issue = workspace_dir / "issues" / "2024-26.md"
    source = issue.read_text(encoding="utf-8")
    save(issue, BROKEN_FRONT_MATTER + source)
    data = rendered_after_change(preview_server, good["epoch"])
    where = os.path.join("issues", "2024-26.md") + ":2"
    assert data["error"]["where"] == where
    assert data["error"]["text"].startswith(where + ": broken front matter")
    assert data["email"]["html"] == good["email"]["html"]
    save(issue, "---\nsubject: 修好了\n---\n" + source)
    fixed = rendered_after_change(preview_server, data["epoch"])
    assert fixed["error"] is None and fixed["email"]["subject"] == "修好了"


def test_a_template_error_names_the_template_and_line(preview_server, workspace_dir):
    first = render(preview_server)
    template = workspace_dir / "templates" / "newsletter.txt.j2"
    source = template.read_text(encoding="utf-8").rstrip("\n")
    save(template, source + "\n{{ issue.title.text | no_such_filter }}\n")
    data = rendered_after_change(preview_server, first["epoch"])
    line = source.count("\n") + 2
    assert data["error"]["where"] == os.path.join("templates", "newsletter.txt.j2") + f":{line}"
    assert "no_such_filter" in data["error"]["message"]


def test_a_crash_inside_the_renderer_is_shown_and_the_server_goes_on(preview_server, monkeypatch):
    from mailer.compose import build

    def crash(workspace, path):
        raise KeyError("boom")

    monkeypatch.setattr(build, "render_issue", crash)
    preview_server.preview.bump()
    data = render(preview_server)
    assert data["error"]["text"].startswith("internal error: KeyError")
    monkeypatch.undo()
    preview_server.preview.bump()
    assert render(preview_server)["error"] is None


def test_settings_changes_are_picked_up(preview_server, workspace_dir):
    first = render(preview_server)
    settings = workspace_dir / "newsletter.toml"
    text = settings.read_text(encoding="utf-8")
    save(settings, text.replace('[sender]\n', '[sender]\nname = "Cloud Weekly"\n'))
    data = rendered_after_change(preview_server, first["epoch"])
    assert data["email"]["from_name"] == "Cloud Weekly"
    save(settings, text.replace("[sender]", "[sendr]"))
    broken = rendered_after_change(preview_server, data["epoch"])
    assert broken["error"]["where"] == "newsletter.toml"
    assert "unknown key 'sendr'" in broken["error"]["message"]


def test_the_newest_issue_opens_first_and_every_issue_is_listed(workspace, workspace_dir):
    from mailer.web.preview import PreviewServer

    older = workspace_dir / "issues" / "2024-25.md"
    save(older, "# 第二十五期\n\n## 一\n\n**1.** **旧文章**\n\nhttps://example.com/a\n\n**摘要:** 旧的摘要。\n")
    with PreviewServer(workspace) as server:
        data = render(server)
        assert data["issue"] == "2024-26"
        assert data["issues"] == ["2024-25", "2024-26"]
        assert render(server, "2024-25")["email"]["subject"] == "第二十五期"
    with PreviewServer(workspace, older) as server:
        assert render(server)["issue"] == "2024-25"


def test_an_empty_issues_folder_waits_for_the_first_issue(workspace, workspace_dir):
    from mailer.web.preview import PreviewServer

    (workspace_dir / "issues" / "2024-26.md").unlink()
    with PreviewServer(workspace) as server:
        empty = render(server)
        assert empty["issue"] is None and empty["email"] is None
        assert empty["error"]["message"] == "no issues yet"
        save(workspace_dir / "issues" / "2024-27.md", "# 第二十七期\n\n正文。\n")
        first = rendered_after_change(server, empty["epoch"])
        assert first["issue"] == "2024-27" and first["email"]["subject"] == "第二十七期"


def test_an_unknown_issue_in_the_address_is_an_error_in_the_page(preview_server):
    data = render(preview_server, "1999-01")
    assert data["email"] is None
    assert data["error"]["message"] == "no such issue"


def test_the_email_alone_is_served_for_other_browsers(preview_server):
    status, body = get(preview_server, "/email?issue=2024-26")
    assert status == 200
    assert body.startswith("<!doctype html>") and TITLE in body and "%%" not in body


def test_other_host_names_are_refused(preview_server):
    port = preview_server.httpd.server_address[1]
    assert get(preview_server, "/", Host=f"localhost:{port}")[0] == 200
    assert get(preview_server, "/api/render", Host=f"attacker.example:{port}")[0] == 403


def test_editor_swap_files_and_newly_opened_issues_are_not_changes(workspace):
    preview = Preview(workspace)
    before = preview.snapshot()
    (workspace.templates_dir / ".newsletter.txt.j2.swp").write_text("x")
    (workspace.templates_dir / "newsletter.txt.j2~").write_text("x")
    (workspace.issues_dir / ".2024-26.md.swp").write_text("x")
    preview.render("2024-26")
    assert not preview.changed(before, preview.snapshot())
    (workspace.templates_dir / "partials").mkdir()
    (workspace.templates_dir / "partials" / "footer.j2").write_text("x")
    assert preview.changed(before, preview.snapshot())


# -- the command --------------------------------------------------------------


def test_preview_of_an_unknown_issue_is_a_one_line_error(workspace_dir, monkeypatch):
    monkeypatch.chdir(workspace_dir)
    result = CliRunner().invoke(cli, ["preview", "1999-01", "--no-open"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: 1999-01: no such issue (")
    assert result.output.count("\n") == 1


def test_preview_on_a_taken_port_is_a_one_line_error(workspace_dir, monkeypatch):
    monkeypatch.chdir(workspace_dir)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["preview", "--port", str(port), "--no-open"])
    assert result.exit_code == 1
    assert result.output == (f"Error: port {port} is in use "
                             "(pick another with --port, or leave it out for a free one)\n")


def test_preview_command_serves_until_interrupted(workspace_dir):
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer", "preview", "--no-open"], cwd=workspace_dir,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.match(r"Previewing 2024-26 at (http://127\.0\.0\.1:\d+/) \(Ctrl\+C to stop\)", line)
        assert match, line
        with urllib.request.urlopen(match.group(1) + "api/render", timeout=30) as response:
            assert json.load(response)["email"]["subject"] == TITLE
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "Traceback" not in err
    assert "Rendered 2024-26 in" in err


# -- the page in Chromium -----------------------------------------------------


def email_frame(page):
    return page.frame_locator("#stage iframe.current")


def open_preview(page, server):
    page.goto(server.url)
    expect(email_frame(page).locator("h1")).to_have_text(TITLE)


def test_page_shows_the_email_and_its_envelope(browser_page, preview_server):
    page = browser_page
    open_preview(page, preview_server)
    frame = email_frame(page)
    expect(frame.locator("body")).to_contain_text(SUMMARY)
    expect(page.locator("#subject")).to_have_text(TITLE)
    expect(page.locator("#from-name")).to_have_text("云计算技术追踪")
    expect(page.locator("#from-address")).to_have_text("<weekly@newsletter.example.com>")
    expect(page.locator("#preheader")).to_contain_text("多 DC 联合训练")
    expect(page.locator("#counts")).to_have_text("✓ No problems found")
    expect(page.locator("#size-label")).to_contain_text("of Gmail's 102.0 KB clipping limit")
    assert "%%" not in frame.locator("html").inner_html()
    assert page.url.endswith("?issue=2024-26")


def test_phone_width_shows_the_email_without_horizontal_overflow(browser_page, preview_server):
    page = browser_page
    open_preview(page, preview_server)
    page.click("[data-width=phone]")
    frame = page.locator("#stage iframe.current")
    expect(frame).to_have_js_property("clientWidth", 375)
    html = email_frame(page).locator("html")
    assert html.evaluate("e => e.clientWidth") == 375
    assert html.evaluate("e => e.scrollWidth") <= 375
    widest = html.evaluate(
        "e => Math.max(...[...e.ownerDocument.querySelectorAll('body *')]"
        ".map(n => n.getBoundingClientRect().right))")
    assert widest <= 375


def test_text_and_html_tabs_show_the_two_parts(browser_page, preview_server):
    page = browser_page
    open_preview(page, preview_server)
    page.click("[data-tab=text]")
    expect(page.locator("#text")).to_be_visible()
    expect(page.locator("#text")).to_contain_text(SUMMARY)
    expect(page.locator("#text")).to_contain_text("https://mp.weixin.qq.com/s/uN4fl9l8j4ync1pcZBhrDA")
    expect(page.locator("#stage")).to_be_hidden()
    page.click("[data-tab=html]")
    expect(page.locator("#source")).to_be_visible()
    expect(page.locator("#source")).to_contain_text("<!doctype html>")


def test_saving_the_issue_updates_the_page_without_a_reload(browser_page, preview_server, workspace_dir):
    page = browser_page
    open_preview(page, preview_server)
    page.click("[data-width=phone]")
    page.evaluate("window.notReloaded = true")
    page.evaluate("window.scrollTo(0, 900)")
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 800

    issue = workspace_dir / "issues" / "2024-26.md"
    save(issue, issue.read_text(encoding="utf-8").replace(SUMMARY, "这是刚刚改过的摘要"))
    expect(email_frame(page).locator("body")).to_contain_text("这是刚刚改过的摘要")

    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("[data-width=phone]")).to_have_attribute("aria-pressed", "true")
    assert page.locator("#stage iframe").count() == 1
    assert abs(page.evaluate("window.scrollY") - scrolled) < 2

    page.click("[data-tab=text]")
    save(issue, issue.read_text(encoding="utf-8").replace("这是刚刚改过的摘要", "第二次修改"))
    expect(page.locator("#text")).to_contain_text("第二次修改")
    expect(page.locator("[data-tab=text]")).to_have_attribute("aria-selected", "true")


def test_broken_front_matter_is_shown_with_its_line_and_the_page_recovers(
        browser_page, preview_server, workspace_dir):
    page = browser_page
    open_preview(page, preview_server)
    issue = workspace_dir / "issues" / "2024-26.md"
    source = issue.read_text(encoding="utf-8")

    save(issue, BROKEN_FRONT_MATTER + source)
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(os.path.join("issues", "2024-26.md") + ":2:")
    expect(error).to_contain_text("broken front matter")
    expect(error).to_contain_text("fix the YAML between the --- lines")
    # The last good version stays in view while the error is shown.
    expect(email_frame(page).locator("h1")).to_have_text(TITLE)

    save(issue, "---\nsubject: 修好了的主题\n---\n" + source)
    expect(error).to_be_hidden()
    expect(page.locator("#subject")).to_have_text("修好了的主题")
    expect(page.locator("#status")).to_contain_text("live")


def test_dark_view_applies_the_emails_dark_mode_rules(browser_page, preview_server):
    page = browser_page
    open_preview(page, preview_server)
    title = email_frame(page).locator("h1")
    light = title.evaluate("e => getComputedStyle(e).color")
    page.click("#dark")
    expect(email_frame(page).locator("h1")).not_to_have_css("color", light)
    expect(email_frame(page).locator("h1")).to_have_css("color", "rgb(243, 244, 246)")
    card = email_frame(page).locator(".card").first
    expect(card).to_have_css("background-color", "rgb(26, 29, 35)")
    page.click("#dark")
    expect(email_frame(page).locator("h1")).to_have_css("color", light)


def test_lint_findings_follow_each_render(browser_page, preview_server, workspace_dir):
    page = browser_page
    open_preview(page, preview_server)
    issue = workspace_dir / "issues" / "2024-26.md"
    source = issue.read_text(encoding="utf-8")
    save(issue, source.replace("https://mp.weixin.qq.com/s/uN4fl9l8j4ync1pcZBhrDA",
                               "http://mp.weixin.qq.com/s/uN4fl9l8j4ync1pcZBhrDA"))
    findings = page.locator("#findings li")
    expect(findings).to_have_count(1)
    expect(findings.first).to_contain_text("is not https")
    expect(findings.first).to_contain_text(os.path.join("issues", "2024-26.md") + ":13")
    expect(page.locator("#counts")).to_have_text("0 errors, 1 warning")
    save(issue, source)
    expect(page.locator("#counts")).to_have_text("✓ No problems found")


def test_a_new_issue_appears_in_the_list_and_can_be_opened(browser_page, preview_server, workspace_dir):
    page = browser_page
    open_preview(page, preview_server)
    save(workspace_dir / "issues" / "2024-27.md",
         "# 第二十七期\n\n## 一\n\n**1.** **新文章**\n\nhttps://example.com/n\n\n**摘要:** 新的摘要。\n")
    expect(page.locator("#issue option")).to_have_count(2)
    page.select_option("#issue", "2024-27")
    expect(email_frame(page).locator("h1")).to_have_text("第二十七期")
    expect(page.locator("#subject")).to_have_text("第二十七期")
    assert page.url.endswith("?issue=2024-27")
