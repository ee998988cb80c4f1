"""Lint: what a careful editor wants to hear before an issue goes out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailer.compose.render import compose
from mailer.compose.issue import parse_issue, read_issue
from mailer.compose.lint import lint

from .conftest import EXAMPLE_ISSUE


def findings(workspace, source: str) -> list[str]:
    rendered = compose(parse_issue(source, Path("x.md")), workspace.settings, workspace.templates_dir)
    return [f.format("x.md") for f in lint(rendered).findings]


def test_example_issue_is_clean(workspace):
    report = lint(compose(read_issue(EXAMPLE_ISSUE), workspace.settings, workspace.templates_dir))
    assert report.findings == ()


def test_problems_are_reported_with_their_lines(workspace):
    source = """# T

## Empty

## Links

**1.** **Plain http**

http://insecure.example/a

**Summary:** s.

**2.** [Same link twice](https://dup.example/x)

https://dup.example/x

**Summary:** Once in the title, once in the URL line: one link.

See [again](https://dup.example/x) and [relative](/about) and <a href="javascript:alert(1)">bad</a>.

![](https://img.example/no-alt.png)

![Chart](images/local.png)
"""
    found = findings(workspace, source)
    assert "x.md:3: warning: section 'Empty' is empty" in found
    assert "x.md:9: warning: link http://insecure.example/a is not https" in found
    assert "x.md:13: warning: link https://dup.example/x appears 2 times (lines 13, 19)" in found
    assert "x.md:19: error: link '/about' is relative; an email needs absolute https:// links" in found
    assert "x.md:19: error: link 'javascript:alert(1)' cannot work in an email" in found
    assert any(f.startswith("x.md:21: warning: image https://img.example/no-alt.png has no alt text")
               for f in found)
    assert "x.md:23: error: image 'images/local.png' is not an absolute URL and cannot load in an email" \
        in found


def test_missing_preheader_is_a_warning(workspace):
    found = findings(workspace, "# T\n\nNo items, so no summary to borrow.\n")
    assert any("warning: no preheader" in f for f in found)


def _items(count: int, summary_chars: int, image: bool = False) -> str:
    picture = "![Chart](https://img.example/{n}.png)\n\n" if image else ""
    return "# T\n\n" + "".join(
        f"**{n}.** **Item {n}**\n\nhttps://e.example/{n}\n\n**Summary:** " + "长" * summary_chars
        + "\n\n" + picture.format(n=n) for n in range(1, count + 1))


def test_html_over_gmails_clip_limit_says_how_much_and_what_takes_the_room(workspace):
    found = findings(workspace, _items(90, 400, image=True))
    error = next(f for f in found if "error: HTML is" in f)
    match = re.fullmatch(
        r"x\.md: error: HTML is (\d+\.\d) KB, (\d+\.\d) KB over Gmail's 102\.0 KB clipping limit, "
        r"which hides the rest and the unsubscribe link \((.*)\); shorten the issue or split it in two",
        error)
    assert match, error
    assert float(match.group(2)) == pytest.approx(float(match.group(1)) - 102.0, abs=0.15)
    parts = dict(re.fullmatch(r"(.+) (\d+\.\d) KB", p).groups() for p in match.group(3).split(", "))
    # 90 summaries of 400 three-byte characters: the text is what takes the room.
    assert list(parts)[0] == "text" and float(parts["text"]) > 108
    assert "90 images" in parts and "inline styles" in parts and "link addresses" in parts
    assert sorted(parts.values(), key=float, reverse=True) == list(parts.values())


def test_html_near_the_clip_limit_is_a_warning(workspace):
    found = findings(workspace, _items(45, 400))
    assert any(re.search(r"warning: HTML is \d+\.\d KB, close to Gmail's 102\.0 KB clipping limit", f)
               for f in found), found


def test_template_syntax_left_in_the_output_is_an_error(workspace):
    source = "---\npreheader: Hello {{ name }}\n---\n# T\n"
    found = findings(workspace, source)
    assert not any("unrendered" in f for f in found), "the author's own braces are not a template error"
    template = workspace.templates_dir / "newsletter.txt.j2"
    template.write_text(template.read_text(encoding="utf-8") + "{{ '{{ first_name }}' }}\n",
                        encoding="utf-8")
    found = findings(workspace, "# T\n")
    assert "x.md: error: unrendered template syntax '{{' in the text part; " \
           "check the templates and the front matter" in found


def test_a_template_without_an_unsubscribe_link_is_an_error(workspace):
    template = workspace.templates_dir / "newsletter.mjml.j2"
    template.write_text(template.read_text(encoding="utf-8").replace(
        '<a href="{{ recipient.unsubscribe_url }}">', "<a>"), encoding="utf-8")
    found = findings(workspace, "# T\n")
    assert any("error: no unsubscribe link in the HTML part" in f for f in found)


def test_lint_help_lists_every_check_lint_makes(run_mailer):
    from mailer.compose.lint import CHECKS

    result = run_mailer("lint", "--help")
    listed = [" ".join(line.split()) for line in result.output.splitlines() if line.strip().startswith("- ")]
    assert listed == [f"- {c.describes}" for c in CHECKS]
    assert any("postal address" in line for line in listed)
    assert any("preheader" in line for line in listed) and any("subject" in line for line in listed)


def test_an_empty_postal_address_is_a_warning(run_mailer, workspace_dir):
    config = workspace_dir / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text("\n".join(l for l in text.splitlines() if not l.startswith("postal_address")),
                      encoding="utf-8")
    result = run_mailer("lint", "2024-26")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{workspace_dir / 'issues' / '2024-26.md'}: warning: no postal address in the footer, which the law "
        "requires in many countries (CAN-SPAM in the US): set [newsletter] postal_address in newsletter.toml",
        "0 error(s), 1 warning(s)"]
