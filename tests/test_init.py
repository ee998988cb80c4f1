"""`mailer init`: a new workspace that renders, previews and sends at once."""

from __future__ import annotations

import dataclasses
import datetime
import re
import subprocess
import typing

import pytest
from click.testing import CliRunner

from mailer import starter
from mailer.cli import cli
from mailer.config import CONFIG_NAME, Settings, load_settings

ANSWERS = ["--name", "Cloud Weekly", "--sender", "weekly@example.com",
           "--unsubscribe-url", "https://example.com/unsubscribe"]
TODAY = datetime.date.today().isoformat()


@pytest.fixture
def mailer_in(tmp_path, monkeypatch):
    """Run `mailer ARGS` in a folder of tmp_path (made if missing)."""

    def invoke(folder, *args, input=None):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        monkeypatch.chdir(tmp_path / folder)
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def test_init_then_render_and_send_work_with_no_other_step(mailer_in, tmp_path):
    result = mailer_in(".", "init", "news", "--yes", *ANSWERS)
    assert result.exit_code == 0, result.output
    news = tmp_path / "news"
    assert mailer_in("news", "render", TODAY).exit_code == 0
    assert (news / "build" / f"{TODAY}.html").is_file()
    assert mailer_in("news", "subscribers", "add", "you@example.com").exit_code == 0
    sent = mailer_in("news", "send-issue", TODAY, "--yes")
    assert sent.exit_code == 0, sent.output
    messages = list((news / "outbox" / TODAY).glob("*.eml"))
    assert [m.name.split("-")[0] for m in messages] == ["you@example.com"]
    assert "Subject: Cloud Weekly, issue 1" in messages[0].read_text(encoding="utf-8")


def test_the_settings_file_loads_and_holds_every_key(tmp_path):
    starter.create_workspace(tmp_path, {"newsletter.name": "Cloud Weekly", "sender.address": "w@example.com",
                                        "newsletter.language": "zh-CN",
                                        "unsubscribe.url": "https://example.com/u"})
    settings = load_settings(tmp_path / CONFIG_NAME)
    assert (settings.newsletter.name, settings.newsletter.language, settings.sender.address,
            settings.unsubscribe.url) == ("Cloud Weekly", "zh-CN", "w@example.com", "https://example.com/u")
    text = (tmp_path / CONFIG_NAME).read_text(encoding="utf-8")
    hints = typing.get_type_hints(Settings)
    for section in dataclasses.fields(Settings):
        assert f"\n[{section.name}]\n" in text
        if dataclasses.is_dataclass(hints[section.name]):
            for field in dataclasses.fields(hints[section.name]):
                assert f"\n{field.name} = " in text or f"\n# {field.name} = " in text, (section.name, field.name)


def test_uncommenting_an_optional_key_gives_its_default(tmp_path):
    """The commented keys are TOML of the defaults config applies, not prose."""
    starter.create_workspace(tmp_path, {"newsletter.name": "N", "sender.address": "w@example.com",
                                        "newsletter.language": "en", "unsubscribe.url": "https://example.com/u"})
    path = tmp_path / CONFIG_NAME
    written = load_settings(path)
    text = path.read_text(encoding="utf-8")
    uncommented = re.sub(r"^# (\w+ = )", r"\1", text, flags=re.M)
    assert uncommented.count("\n") == text.count("\n") and uncommented != text
    path.write_text(uncommented, encoding="utf-8")
    assert load_settings(path) == written


def test_the_first_issue_speaks_the_newsletters_language(mailer_in, tmp_path):
    assert mailer_in(".", "init", "zh", "--yes", *ANSWERS, "--language", "zh-CN").exit_code == 0
    issue = (tmp_path / "zh" / "issues" / f"{TODAY}.md").read_text(encoding="utf-8")
    assert "# Cloud Weekly · 第 1 期" in issue and "**摘要:**" in issue
    lint = mailer_in("zh", "lint", TODAY)
    # The one warning: init leaves postal_address for the writer to fill in.
    assert lint.exit_code == 0 and lint.output.splitlines()[-1] == "0 error(s), 1 warning(s)"
    assert "warning: no postal address in the footer" in lint.output


def test_what_mailer_writes_stays_out_of_git(mailer_in, tmp_path):
    mailer_in(".", "init", "news", "--yes", *ANSWERS)
    mailer_in("news", "subscribers", "add", "you@example.com")
    mailer_in("news", "send-issue", TODAY, "--yes")
    mailer_in("news", "render", TODAY)
    news = tmp_path / "news"
    assert (news / "subscribers" / "secret.key").is_file()
    subprocess.run(["git", "init", "-q", str(news)], check=True)
    status = subprocess.run(["git", "-C", str(news), "status", "--porcelain", "--untracked-files=all"],
                            check=True, capture_output=True, text=True).stdout
    assert sorted(line[3:] for line in status.splitlines()) == [".gitignore", f"issues/{TODAY}.md", CONFIG_NAME]


def test_init_asks_again_after_a_bad_answer(mailer_in, tmp_path):
    typed = "Cloud Weekly\nnot-an-address\nweekly@example.com\n\nhttp://example.com/u\n\n\n"
    result = mailer_in(".", "init", "news", input=typed)
    assert result.exit_code == 0, result.output
    assert "Error: sender.address must be an email address, got 'not-an-address'" in result.output
    assert ("Error: unsubscribe.url must be an https:// URL (mailbox providers require it), "
            "got 'http://example.com/u'") in result.output
    settings = load_settings(tmp_path / "news" / CONFIG_NAME)
    # Enter takes the offers: English, the unsubscribe page on the sender's domain,
    # and the postal address for later.
    assert (settings.sender.address, settings.newsletter.language, settings.unsubscribe.url,
            settings.newsletter.postal_address) == (
        "weekly@example.com", "en", "https://example.com/unsubscribe", "")


def test_a_bad_option_with_yes_is_one_line_naming_it(mailer_in, tmp_path):
    result = mailer_in(".", "init", "news", "--yes", *ANSWERS, "--sender", "weekly")
    assert result.exit_code == 1
    assert result.output == "Error: --sender: sender.address must be an email address, got 'weekly'\n"
    assert not (tmp_path / "news").exists()


def test_a_missing_answer_with_yes_names_the_option(mailer_in, tmp_path):
    result = mailer_in(".", "init", "news", "--yes", "--name", "Cloud Weekly", "--sender", "w@example.com")
    assert result.exit_code == 1
    assert result.output == "Error: --unsubscribe-url is required with --yes\n"
    assert not (tmp_path / "news").exists()


def test_init_in_a_workspace_says_so_and_changes_nothing(mailer_in, tmp_path):
    mailer_in(".", "init", "--yes", *ANSWERS)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = mailer_in(".", "init", "--yes", "--name", "Other", "--sender", "o@example.org",
                       "--unsubscribe-url", "https://example.org/u")
    assert result.exit_code == 1
    assert result.output == (f"Error: {CONFIG_NAME}: this folder is a newsletter workspace already; nothing was "
                             "changed (edit that file, or give init another folder)\n")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_init_keeps_what_the_folder_already_has(mailer_in, tmp_path):
    (tmp_path / "issues").mkdir()
    (tmp_path / "issues" / f"{TODAY}.md").write_text("# Mine\n", encoding="utf-8")
    (tmp_path / ".gitignore").write_text("*.pyc\nbuild/", encoding="utf-8")
    result = mailer_in(".", "init", "--yes", *ANSWERS)
    assert result.exit_code == 0
    assert f"  kept issues/{TODAY}.md (already there)" in result.output.splitlines()
    assert (tmp_path / "issues" / f"{TODAY}.md").read_text(encoding="utf-8") == "# Mine\n"
    assert (tmp_path / ".gitignore").read_text(encoding="utf-8") == (
        "*.pyc\nbuild/\n\n# mailer\nsubscribers/*.db*\nsubscribers/secret.key\nsubscribers/send.lock\noutbox/\n")


def test_a_postal_address_given_to_init_reaches_the_footer_and_quiets_lint(mailer_in, tmp_path):
    address = "1 Main Street, Springfield"
    assert mailer_in(".", "init", "news", "--yes", *ANSWERS, "--postal-address", address).exit_code == 0
    assert f'postal_address = "{address}"' in (tmp_path / "news" / CONFIG_NAME).read_text(encoding="utf-8")
    lint = mailer_in("news", "lint", TODAY)
    assert lint.output.splitlines()[-1] == "0 error(s), 0 warning(s)"
    render = mailer_in("news", "render", TODAY)
    assert render.exit_code == 0
    assert address in (tmp_path / "news" / "build" / f"{TODAY}.html").read_text(encoding="utf-8")

