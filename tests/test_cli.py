"""The command line: files written, workspace found, one-line errors."""

from __future__ import annotations

import email
import os
from email import policy
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mailer.cli import cli


@pytest.fixture
def run(workspace_dir, monkeypatch):
    """Run `mailer ARGS` from inside the workspace (or `cwd`)."""

    def invoke(*args: str, cwd: Path | None = None):
        monkeypatch.chdir(cwd or workspace_dir)
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_every_command_has_help_with_an_example():
    def walk(group: click.Group, prefix: str = ""):
        for name, command in group.commands.items():
            yield prefix + name, command
            if isinstance(command, click.Group):
                yield from walk(command, prefix + name + " ")

    for name, command in walk(cli):
        assert command.help and command.help.strip(), f"{name} has no help"
        if not isinstance(command, click.Group):
            assert "Example:" in command.help, f"{name} help has no example"


def test_render_writes_html_text_and_eml(run, tmp_path, workspace_dir):
    out = tmp_path / "out"
    result = run("render", "issues/2024-26.md", "--out", str(out))
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.iterdir())
    assert files == ["2024-26.eml", "2024-26.html", "2024-26.txt"]
    for name in files:
        assert str(out / name) in result.output
    html = (out / "2024-26.html").read_text(encoding="utf-8")
    assert "云计算技术追踪 2024 年第二十六期" in html and "%%" not in html
    msg = email.message_from_bytes((out / "2024-26.eml").read_bytes(), policy=policy.default)
    assert str(msg["Subject"]) == "云计算技术追踪 2024 年第二十六期"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_render_defaults_to_build_in_the_workspace_and_takes_a_stem(run, workspace_dir):
    nested = workspace_dir / "issues"
    result = run("render", "2024-26", cwd=nested)
    assert result.exit_code == 0, result.output
    assert (workspace_dir / "build" / "2024-26.html").is_file()


def test_workspace_option_works_from_anywhere(run, tmp_path, workspace_dir):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run("--workspace", str(workspace_dir), "lint", "2024-26", cwd=elsewhere)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("0 error(s), 0 warning(s)")


def test_outside_a_workspace_is_a_one_line_error(run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run("render", "x.md", cwd=elsewhere)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: no newsletter.toml in {elsewhere} or any folder above it "
        "(run inside a workspace or pass --workspace DIR)\n")


def test_unknown_issue_is_a_one_line_error(run):
    result = run("render", "2099-01")
    assert result.exit_code == 1
    assert result.output.startswith("Error: 2099-01: no such issue (give a path, or the name of a file in ")
    assert len(result.output.splitlines()) == 1


def test_broken_front_matter_is_one_line_with_file_and_line(run, workspace_dir):
    issue = workspace_dir / "issues" / "broken.md"
    issue.write_text("---\nsubject: ok\npreheader: \"unterminated\n---\n# T\n", encoding="utf-8")
    result = run("render", "broken")
    assert result.exit_code == 1
    assert len(result.output.splitlines()) == 1
    assert result.output.startswith(f"Error: {workspace_dir / 'issues' / 'broken.md'}:")
    assert "broken front matter" in result.output and "Traceback" not in result.output


def test_template_error_is_one_line_with_template_and_line(run, workspace_dir):
    template = workspace_dir / "templates" / "newsletter.mjml.j2"
    template.write_text(template.read_text(encoding="utf-8").replace("{{ subject }}", "{{ subject", 1),
                        encoding="utf-8")
    result = run("render", "2024-26")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {template}:")
    assert "template syntax error" in result.output
    assert len(result.output.splitlines()) == 1


def test_unreadable_issue_is_one_line(run, workspace_dir):
    if os.geteuid() == 0:
        target = workspace_dir / "issues" / "dir.md"
        target.mkdir()
        result = run("render", "issues/dir.md")
        assert result.exit_code == 1
        assert result.output == "Error: issues/dir.md: is not a file (give an issue's .md file)\n"
    else:
        target = workspace_dir / "issues" / "locked.md"
        target.write_text("# T\n", encoding="utf-8")
        target.chmod(0)
        result = run("render", "locked")
        assert result.exit_code == 1 and "cannot read" in result.output


def test_lint_exits_1_on_errors_and_lists_them(run, workspace_dir):
    issue = workspace_dir / "issues" / "bad.md"
    issue.write_text("# T\n\n[home](/index.html)\n", encoding="utf-8")
    result = run("lint", "bad")
    assert result.exit_code == 1
    assert f"{issue}:3: error: link '/index.html' is relative" in result.output
    assert result.output.strip().endswith("1 error(s), 1 warning(s)")


def test_bad_settings_are_one_line_naming_the_setting(run, workspace_dir):
    config = workspace_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("[sender]", "[sender]\nadress = \"x\""),
                      encoding="utf-8")
    result = run("render", "2024-26")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {config}: unknown key 'adress' in [sender]; expected one of "
        "['address', 'name', 'reply_to']\n")
