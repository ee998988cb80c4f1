"""Bare text becomes a link only in the forms GitHub links: http(s)://, www. and mailto:."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.compose.issue import parse_issue, read_issue
from mailer.compose.render import compose

from .test_compose import visible

ISSUES = Path(__file__).parent / "data" / "issues"


@pytest.fixture
def bare_links(workspace):
    return compose(read_issue(ISSUES / "bare-links.md"), workspace.settings, workspace.templates_dir)


def content_hrefs(html: str) -> list[str]:
    """Link targets of the issue's content, without the template's footer links."""
    return [h for h in visible(html).hrefs if "newsletter.example.com" not in h and "%%" not in h]


def test_only_urls_www_and_mailto_are_linked_in_the_html(bare_links):
    assert content_hrefs(bare_links.html) == [
        "mailto:editor@example.com",
        "http://www.example.com",
        "https://a.example/?a=1&b=2",
    ]
    text = "".join(visible(bare_links.html).text)
    for word in ("setup.py", "main.rs", "foo.sh", "README.md", "x.io", "reader.name", "editor@example.com"):
        assert word in text
    assert "&amp;amp;" not in bare_links.html


def test_the_text_part_shows_the_same_links(bare_links):
    text = " ".join(bare_links.text.split())
    assert "Run setup.py, then main.rs and foo.sh; README.md explains x.io and reader.name." in text
    assert "Mail ideas to editor@example.com or mailto:editor@example.com, read www.example.com," in text
    assert "see https://a.example/?a=1&b=2 for the query" in text
    assert "http://setup.py" not in text and "&amp;" not in text


@pytest.mark.parametrize("source, href", [
    ("ftp://files.example.org/a", None),
    ("//cdn.example.org/a.js", None),
    ("HTTPS://EXAMPLE.ORG/Up", "HTTPS://EXAMPLE.ORG/Up"),
    ("www.example.com/?a=1&amp;b=2", "http://www.example.com/?a=1&b=2"),
    ("https://example.org/a_b_c", "https://example.org/a_b_c"),
])
def test_bare_link_forms(source, href):
    issue = parse_issue(f"# T\n\nSee {source} here.\n", Path("issue.md"))
    assert [link.url for link in issue.links] == ([] if href is None else [href])


def test_an_item_url_line_with_an_entity_is_decoded_once():
    issue = parse_issue("# T\n\n**1.** **A**\n\nhttps://a.example/?a=1&amp;b=2\n", Path("issue.md"))
    assert issue.items[0].url == "https://a.example/?a=1&b=2"
