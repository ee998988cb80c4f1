"""Parsing issue files: the digest format, front matter, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.errors import IssueError
from mailer.compose.issue import Block, Item, parse_issue, read_issue

from .conftest import EXAMPLE_ISSUE


def parse(source: str):
    return parse_issue(source, Path("issue.md"))


def test_example_issue_has_its_sections_and_items():
    issue = read_issue(EXAMPLE_ISSUE)
    assert issue.title.text == "云计算技术追踪 2024 年第二十六期"
    assert issue.subject == issue.title.text
    assert [s.title.text for s in issue.sections] == ["分布式系统", "云计算技术", "大模型技术", "技术之外"]
    assert [len(s.items) for s in issue.sections] == [2, 2, 2, 2]
    first = issue.sections[0].items[0]
    assert first.number == "1"
    assert first.title.text == "多DC联合训练：谷歌，微软和OpenAI的AI Infra之争"
    assert first.url == "https://mp.weixin.qq.com/s/xvPidXyHOUmVy6yQvZCAXQ"
    assert first.summary_label == "摘要"
    assert first.summary.text.startswith("多 DC 联合训练是当前国内智算行业热门话题")
    assert first.line == 5
    assert issue.sections[3].items[1].url == "https://mp.weixin.qq.com/s/-R5eT6D-BzGAnJueXMgPBw"


def test_item_title_can_be_a_markdown_link():
    issue = parse("# T\n\n**1.** [Read *this*](https://example.com/a)\n\n**Summary:** Why.\n")
    item = issue.items[0]
    assert item.url == "https://example.com/a"
    assert item.title.text == "Read this"
    assert str(item.title.html) == "Read <em>this</em>"
    assert item.summary_label == "Summary" and item.summary.text == "Why."


def test_item_parts_may_share_one_paragraph():
    issue = parse("# T\n\n**3.** **Packed**\nhttps://example.com/p\n**摘要：** 紧凑的写法。\n")
    item = issue.items[0]
    assert (item.number, item.title.text, item.url) == ("3", "Packed", "https://example.com/p")
    assert item.summary.text == "紧凑的写法。"


def test_item_without_url_or_summary_is_still_an_item():
    issue = parse("# T\n\n## S\n\n**1.** **Only a title**\n\n**2.** **Next**\n")
    assert [(i.title.text, i.url, i.summary) for i in issue.items] == [
        ("Only a title", "", None), ("Next", "", None)]


def test_other_content_is_kept_in_place_as_blocks():
    issue = parse("""# T

Intro paragraph.

## S

Section lead.

**1.** **Item**

https://example.com/1

**Summary:** S.

A note after the summary.

### A sub-heading

<p>raw</p>
""")
    assert [type(e) for e in issue.intro] == [Block]
    assert issue.intro[0].content.text == "Intro paragraph."
    entries = issue.sections[0].entries
    assert [type(e) for e in entries] == [Block, Item, Block, Block]
    assert entries[1].body[0].content.text == "A note after the summary."
    assert entries[2].content.text == "A sub-heading"
    assert "<h3>A sub-heading</h3>" in entries[2].content.html
    assert entries[3].content.text == "raw"


def test_raw_html_wrapping_markdown_stays_one_block():
    issue = parse("# T\n\n<div class=\"box\">\n\nInside **bold**.\n\n</div>\n\nAfter.\n")
    assert len(issue.intro) == 2
    box = issue.intro[0].content
    assert box.html.startswith('<div class="box">') and box.html.endswith("</div>")
    assert "<strong>bold</strong>" in box.html
    assert issue.intro[1].content.text == "After."


def test_unclosed_raw_html_is_closed_before_the_next_section_as_a_browser_would():
    issue = parse("# T\n\n## S\n\n<div>\n\nnever closed\n\n## Next\n\nAfter.\n")
    box = issue.sections[0].entries[0].content
    assert box.html == "<div>\n<p>never closed</p>\n</div>"
    assert issue.sections[1].entries[0].content.text == "After."


def test_stray_closing_tag_is_dropped_as_a_browser_would():
    issue = parse("# T\n\n</table>\n\nText.\n")
    assert [str(e.content.html) for e in issue.intro] == ["<p>Text.</p>"]


def test_front_matter_fields_and_free_values():
    issue = parse("---\nsubject: Custom\npreheader: Teaser\ndate: 2024-06-28\nhero: pic.png\n---\n# Title\n")
    assert issue.subject == "Custom"
    assert issue.preheader == "Teaser"
    assert issue.date == "2024-06-28"
    assert issue.meta["hero"] == "pic.png"
    assert issue.title.text == "Title"


def test_line_numbers_count_the_front_matter():
    issue = parse("---\nsubject: S\n---\n# T\n\n**1.** **A**\n")
    assert issue.items[0].line == 6


def test_title_may_come_from_front_matter():
    issue = parse("---\ntitle: From front matter\n---\nJust text.\n")
    assert issue.title.text == "From front matter"
    assert issue.intro[0].content.text == "Just text."


def test_broken_front_matter_names_its_line():
    with pytest.raises(IssueError) as caught:
        parse("---\nsubject: fine\npreheader: [unclosed\n---\n# T\n")
    message = str(caught.value)
    assert message.startswith("issue.md:")
    assert "broken front matter" in message and "fix the YAML" in message
    line = int(message.split(":")[1])
    assert 3 <= line <= 4


def test_unclosed_front_matter_is_an_error():
    with pytest.raises(IssueError, match=r"^issue.md:1: front matter opened with --- is never closed"):
        parse("---\nsubject: x\n# T\n")


def test_front_matter_must_be_a_mapping():
    with pytest.raises(IssueError, match="front matter must be 'key: value' lines"):
        parse("---\n- a\n- b\n---\n# T\n")


def test_subject_with_a_line_break_is_refused():
    with pytest.raises(IssueError, match=r"^issue.md:2: front matter subject must be one line"):
        parse('---\nsubject: "one\\ntwo"\n---\n# T\n')


def test_toml_front_matter_gets_a_clear_error():
    with pytest.raises(IssueError, match=r"TOML front matter \(\+\+\+\) is not supported"):
        parse("+++\nsubject = 'x'\n+++\n# T\n")


def test_an_issue_without_a_title_is_titled_by_its_file_name():
    issue = parse("Just a paragraph.\n")
    assert (issue.title.text, issue.title_from) == ("Issue", "file name")
    assert issue.intro[0].content.text == "Just a paragraph."
    assert parse("").title.text == "Issue"


def test_not_utf8_names_the_line_of_the_bad_byte(tmp_path):
    path = tmp_path / "gbk.md"
    path.write_bytes("# 标题\n\n正文\n".encode("utf-8") + "第三行".encode("gbk"))
    with pytest.raises(IssueError) as caught:
        read_issue(path)
    assert str(caught.value).startswith(f"{path}:4: not UTF-8")
    assert "save the file as UTF-8" in str(caught.value)


def test_bom_and_windows_line_endings_are_accepted(tmp_path):
    path = tmp_path / "win.md"
    path.write_bytes(b"\xef\xbb\xbf---\r\nsubject: S\r\n---\r\n# T\r\n\r\n**1.** **A**\r\n\r\nhttps://e.example/a\r\n")
    issue = read_issue(path)
    assert issue.subject == "S"
    assert issue.items[0].url == "https://e.example/a"


def test_unreadable_paths_are_clear_errors(tmp_path):
    with pytest.raises(IssueError, match="cannot read"):
        read_issue(tmp_path / "missing.md")
    with pytest.raises(IssueError, match="is a folder"):
        read_issue(tmp_path)


def test_broken_markdown_is_kept_not_lost():
    issue = parse("# T\n\nAn **unclosed bold and a [dangling link(\n\n**1.** **A**\n")
    assert issue.intro[0].content.text == "An **unclosed bold and a [dangling link("
    assert issue.items[0].title.text == "A"


def test_links_and_images_are_collected_with_lines():
    issue = parse('# T\n\n[a](https://a.example)\n\n![](https://i.example/x.png)\n\n<img src="https://i.example/y.png" alt="Y">\n')
    assert [(link.url, link.line) for link in issue.links] == [("https://a.example", 3)]
    assert [(i.src, i.alt, i.line) for i in issue.images] == [
        ("https://i.example/x.png", "", 5), ("https://i.example/y.png", "Y", 7)]


def test_url_line_repeating_a_linked_title_is_part_of_the_item():
    issue = parse("# T\n\n**1.** [A](https://e.example/a)\n\nhttps://e.example/a\n\n**Summary:** s\n")
    item = issue.items[0]
    assert (item.url, item.body, item.summary.text) == ("https://e.example/a", (), "s")
