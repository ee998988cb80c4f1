"""Titles and metadata as real newsletters write them: Pelican headers, file names, no heading."""

from __future__ import annotations

import re
import shutil
from html import unescape
from pathlib import Path

import pytest

from mailer.compose.issue import parse_issue, read_issue
from mailer.compose.lint import lint
from mailer.compose.render import compose
from mailer.errors import IssueError

ISSUES = Path(__file__).parent / "data" / "issues"


def parse(source: str, name: str = "issue.md"):
    return parse_issue(source, Path(name))


def rendered(workspace, name: str):
    return compose(read_issue(ISSUES / name), workspace.settings, workspace.templates_dir)


def headings(html: str) -> list[tuple[str, str]]:
    """Every heading of the HTML in order, as (tag, text)."""
    return [(tag, unescape(re.sub(r"<[^>]+>", "", text)).strip())
            for tag, text in re.findall(r"<(h[1-6])\b[^>]*>(.*?)</\1>", html, re.S)]


def title_warnings(result) -> list[str]:
    return [f.format(result.issue.path.name) for f in lint(result).findings if "file name" in f.message]


def test_pelican_header_is_metadata_and_its_hash_headings_are_sections(workspace):
    result = rendered(workspace, "this-week-in-rust-587.md")
    issue = result.issue
    assert issue.title.text == "This Week in Rust 587"
    assert issue.date == "2025-02-19"
    assert issue.meta == {"title": "This Week in Rust 587", "number": "587", "date": "2025-02-19",
                          "category": "This Week in Rust"}
    assert [s.title.text for s in issue.sections] == [
        "Updates from Rust Community", "Crate of the Week", "Quote of the Week"]
    for part in (result.html, result.text):
        assert "Title:" not in part and "Category:" not in part
    assert "Quote of the Week\n-----------------\n\n> Types are the cheapest tests" in result.text
    assert title_warnings(result) == []


def test_no_heading_of_a_pelican_issue_is_lost_or_moved(workspace):
    html = rendered(workspace, "this-week-in-rust-587.md").html
    assert headings(html) == [
        ("h1", "This Week in Rust 587"),
        ("h2", "Updates from Rust Community"),
        ("h3", "Newsletters"),
        ("h3", "Project/Tooling Updates"),
        ("h2", "Crate of the Week"),
        ("h2", "Quote of the Week"),
    ]
    # Each section keeps its own content after its heading.
    assert html.index("Quote of the Week") < html.index("Types are the cheapest tests")
    assert html.index("Crate of the Week") < html.index("tinyjson") < html.index("Quote of the Week")


def test_front_matter_with_only_a_date_is_titled_by_its_file_name(workspace):
    result = rendered(workspace, "01-安吉黄昏.md")
    assert result.issue.title.text == "安吉黄昏"
    assert result.subject == "安吉黄昏"
    assert result.issue.date == "2024-10-05"
    assert headings(result.html)[0] == ("h1", "安吉黄昏")
    assert result.text.split("\n")[2:4] == ["安吉黄昏", "========"]
    assert "傍晚的竹林里" in result.html and "回程的路上" in result.text
    assert title_warnings(result) == [
        "01-安吉黄昏.md:1: warning: the title '安吉黄昏' comes from the file name 01-安吉黄昏.md; "
        "start the issue with a '# Title' line or set 'title:' in the front matter"]


def test_an_issue_without_any_heading_renders_with_its_prose_intact(workspace):
    result = rendered(workspace, "issue-538.markdown")
    issue = result.issue
    assert issue.title.text == "Issue 538"
    assert issue.meta == {}
    assert issue.intro[0].content.text.startswith("Welcome to another issue of the weekly digest:")
    assert issue.intro[1].content.text == "Note: the digest skips next week."
    assert [item.title.text for item in issue.items] == [
        "Why small pull requests get merged", "A field guide to flaky tests"]
    assert "Welcome to another issue" in result.text and "Note: the digest skips" in result.html
    assert len(title_warnings(result)) == 1


@pytest.mark.parametrize("stem, title", [
    ("01-安吉黄昏", "安吉黄昏"),
    ("issue-538", "Issue 538"),
    ("2013-06-07-this-week-in-rust", "This week in rust"),
    ("weekly-2024-05", "Weekly 2024-05"),
    ("2024-26", "2024-26"),
])
def test_file_names_are_made_readable(stem, title):
    assert parse("Just text.\n", f"{stem}.md").title.text == title


def test_markdown_extension_is_found_like_md(workspace_dir, run_mailer):
    shutil.copy(ISSUES / "issue-538.markdown", workspace_dir / "issues")
    result = run_mailer("render", "issue-538")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Rendered 'Issue 538':")
    assert (workspace_dir / "build" / "issue-538.html").is_file()


def test_preview_lists_markdown_extension_issues(workspace, workspace_dir):
    from mailer.web.preview import PreviewServer

    shutil.copy(ISSUES / "issue-538.markdown", workspace_dir / "issues")
    with PreviewServer(workspace) as server:
        data = server.preview.render("issue-538")
        assert data["issues"] == ["2024-26", "issue-538"]
        assert data["error"] is None
        assert data["email"]["subject"] == "Issue 538"


@pytest.mark.parametrize("opening", [
    "Note: this week we skip the links.",
    "Welcome to another issue of the digest.",
    "Summary: a quiet week.",
    "Title: fine\nbut this line is prose.",
    "See https://example.com: it moved.",
    "Reading: one book\nListening: one album",
])
def test_a_first_paragraph_that_only_looks_like_metadata_stays_prose(opening):
    issue = parse(f"{opening}\n\n# Later\n\nText.\n")
    assert issue.meta == {}
    assert issue.intro[0].content.text == " ".join(opening.split("\n"))
    assert issue.title_from == "file name"


def test_a_header_without_a_title_needs_known_keys():
    issue = parse("Date: 2024-06-28\nTags: rust, weekly\n\n# The title\n\n## A section\n")
    assert issue.meta == {"date": "2024-06-28", "tags": "rust, weekly"}
    assert (issue.title.text, issue.title_from) == ("The title", "heading")
    assert [s.title.text for s in issue.sections] == ["A section"]


def test_header_keys_are_lower_cased_and_continuation_lines_join():
    issue = parse("Title: T\nBase Header Level: 2\nAuthors: Ann,\n    Bob\n\nBody.\n")
    assert issue.meta == {"title": "T", "base_header_level": "2", "authors": "Ann, Bob"}


def test_header_summary_is_the_default_preheader(workspace):
    issue = parse("Title: T\nSummary: Five links and a tool.\n\nBody.\n")
    result = compose(issue, workspace.settings, workspace.templates_dir)
    assert result.preheader == "Five links and a tool."
    assert "Five links and a tool." in result.html


def test_lines_after_a_header_keep_their_numbers():
    issue = parse("Title: T\nDate: 2024-06-28\n\n# S\n\n**1.** **A**\n")
    assert issue.sections[0].line == 4
    assert issue.items[0].line == 6


def test_a_key_set_twice_in_a_header_is_an_error_with_its_line():
    with pytest.raises(IssueError, match=r"^issue.md:2: metadata header sets title twice"):
        parse("Title: A\nTitle: B\n\nBody.\n")


def test_only_a_leading_h1_is_the_title():
    issue = parse("An intro.\n\n# First\n\nOne.\n\n# Second\n\nTwo.\n", "issue-9.md")
    assert issue.title.text == "Issue 9"
    assert issue.intro[0].content.text == "An intro."
    assert [(s.title.text, s.entries[0].content.text) for s in issue.sections] == [
        ("First", "One."), ("Second", "Two.")]


def test_a_leading_h1_repeating_the_metadata_title_is_shown_once(workspace):
    issue = parse("---\ntitle: Weekly 12\n---\n# Weekly 12\n\n## News\n\nText.\n")
    html = compose(issue, workspace.settings, workspace.templates_dir).html
    assert headings(html) == [("h1", "Weekly 12"), ("h2", "News")]


def test_front_matter_title_makes_hash_headings_sections():
    issue = parse("---\ntitle: From front matter\n---\nIntro.\n\n# One\n\n## Inside\n\n# Two\n")
    assert issue.title.text == "From front matter"
    assert [s.title.text for s in issue.sections] == ["One", "Two"]
    assert "<h3>Inside</h3>" in issue.sections[0].entries[0].content.html


def test_a_stray_h1_in_a_digest_keeps_the_sections_of_its_h2s():
    issue = parse("# Weekly 12\n\n## News\n\nText.\n\n## Tools\n\n# Appendix\n\nMore.\n")
    assert issue.title.text == "Weekly 12"
    assert [s.title.text for s in issue.sections] == ["News", "Tools"]
    appendix = issue.sections[1].entries[0]
    assert "<h1>Appendix</h1>" in appendix.content.html


def test_a_digest_titled_by_an_h1_with_hash_sections_gets_them_as_sections():
    issue = parse("# Weekly 12\n\nIntro.\n\n# News\n\nText.\n\n# Tools\n")
    assert issue.title.text == "Weekly 12"
    assert [s.title.text for s in issue.sections] == ["News", "Tools"]


def test_front_matter_keys_of_the_issue_are_read_whatever_their_case(tmp_path):
    text = "---\nTitle: Weekly 12\nDate: 2024-05-01\nSummary: What happened this week\n---\n\nSome news.\n"
    issue = parse_issue(text, tmp_path / "2024-05-01.md")
    assert (issue.title.text, issue.title_from, issue.date) == ("Weekly 12", "metadata", "2024-05-01")
    assert issue.meta["Title"] == "Weekly 12"  # as written, for templates that use it


def test_a_title_over_two_lines_in_capitalised_front_matter_names_its_line(tmp_path):
    text = "---\nDate: 2024-05-01\nTitle: |\n  two\n  lines\n---\n\nSome news.\n"
    with pytest.raises(IssueError) as caught:
        parse_issue(text, tmp_path / "x.md")
    assert caught.value.line == 3

