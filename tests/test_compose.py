"""The example issue rendered: nothing lost, golden output, email properties."""

from __future__ import annotations

import difflib
import http.server
import re
import threading
import unicodedata
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mailer.compose.render import PLACEHOLDERS, Recipient, compose
from mailer.errors import TemplateError
from mailer.compose.issue import parse_issue, read_issue

from .conftest import EXAMPLE_ISSUE
from .servers import SHUTDOWN_POLL

GOLDEN = Path(__file__).parent / "golden"


class _Visible(HTMLParser):
    """Visible text and link targets of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.hrefs: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script", "head"):
            self.skip += 1
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag):
        if tag in ("style", "script", "head"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.text.append(data)


def visible(html: str) -> _Visible:
    parser = _Visible()
    parser.feed(html)
    return parser


def squash(text: str) -> str:
    """Text without any whitespace, so wrapping and spacing cannot hide a loss."""
    return re.sub(r"\s+", "", unescape(text))


def source_pieces(markdown: str) -> list[str]:
    """Every piece of text the author wrote, with the Markdown markup taken off."""
    pieces = []
    for line in markdown.splitlines():
        line = re.sub(r"^#+\s*", "", line.strip())
        for segment in line.split("**"):
            segment = segment.strip().strip(":：").strip()
            if segment:
                pieces.append(segment)
    return pieces


@pytest.fixture
def rendered(workspace):
    return compose(read_issue(EXAMPLE_ISSUE), workspace.settings, workspace.templates_dir)


def test_every_piece_of_the_example_reaches_the_html(rendered):
    page = visible(rendered.html)
    text = squash("".join(page.text))
    source = EXAMPLE_ISSUE.read_text(encoding="utf-8")
    missing = [p for p in source_pieces(source) if squash(p) not in text]
    assert missing == []
    urls = re.findall(r"https?://\S+", source)
    assert len(urls) == 8
    assert [u for u in urls if u not in page.hrefs] == []


def test_every_piece_of_the_example_reaches_the_text_part(rendered):
    text = squash(rendered.text)
    source = EXAMPLE_ISSUE.read_text(encoding="utf-8")
    missing = [p for p in source_pieces(source) if squash(p) not in text]
    assert missing == []
    lines = rendered.text.splitlines()
    for url in re.findall(r"https?://\S+", source):
        assert any(url in line for line in lines), f"{url} is broken across lines"


def test_each_item_title_links_to_its_url(rendered):
    issue = rendered.issue
    for item in issue.items:
        pattern = rf'<a [^>]*href="{re.escape(item.url)}"[^>]*>{re.escape(str(item.title.html))}</a>'
        assert re.search(pattern, rendered.html), item.title.text


def test_html_is_a_complete_email_document(rendered):
    html = rendered.html
    assert html.lower().startswith("<!doctype html>")
    assert re.search(r'<html[^>]* lang="zh-CN"', html)
    assert f"<title>{rendered.subject}</title>" in html
    # The 600 px body, the phone layout and dark mode all survive inlining.
    assert "max-width:600px" in html.replace(" ", "")
    assert "@media only screen and (max-width: 480px)" in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert "!important" in html
    assert '<meta name="color-scheme" content="light dark">' in html


def test_css_is_inlined_with_a_cjk_font_stack(rendered):
    summary = re.search(r'<p class="item-summary" style="([^"]*)"', rendered.html)
    assert summary, "summary paragraphs carry their inlined style"
    assert "color:#374151" in summary.group(1).replace(" ", "")
    cell = re.search(r'<div style="([^"]*PingFang SC[^"]*)"', rendered.html)
    assert cell and "line-height:1.7" in cell.group(1).replace(" ", "")
    for font in ("PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC"):
        assert font in cell.group(1)
    url_style = re.search(r'<p class="item-url" style="([^"]*)"', rendered.html).group(1)
    assert "word-break:break-all" in url_style.replace(" ", "")


def test_preheader_is_hidden_and_defaults_to_the_first_summary(rendered):
    first = rendered.issue.items[0].summary.text
    assert rendered.preheader.startswith(first[:40])
    assert len(rendered.preheader) <= 111
    hidden = re.search(r'<div style="display:none[^"]*">([^<]*)', rendered.html)
    assert hidden and hidden.group(1).startswith(first[:20])


def test_front_matter_sets_subject_and_preheader(workspace):
    source = "---\nsubject: Week 26 <b>digest</b>\npreheader: Eight links on AI infra\n---\n" \
        + EXAMPLE_ISSUE.read_text(encoding="utf-8")
    issue = parse_issue(source, Path("2024-26.md"))
    rendered = compose(issue, workspace.settings, workspace.templates_dir)
    assert rendered.subject == "Week 26 <b>digest</b>"
    assert rendered.preheader == "Eight links on AI infra"
    # Jinja's autoescape keeps author text text, even in the <title>.
    assert "<title>Week 26 &lt;b&gt;digest&lt;/b&gt;</title>" in rendered.html


def test_html_stays_well_under_gmails_clip_limit(rendered):
    assert len(rendered.html.encode("utf-8")) < 80 * 1024


def test_footer_has_name_address_and_unsubscribe_in_both_parts(rendered, workspace):
    settings = workspace.settings.newsletter
    placeholder = PLACEHOLDERS["unsubscribe_url"]
    page = visible(rendered.html)
    assert placeholder in page.hrefs
    assert settings.postal_address in "".join(page.text)
    assert settings.postal_address in rendered.text
    assert placeholder in rendered.text
    footer = "".join(visible(rendered.html.split('class="footer"', 1)[1]).text)
    assert settings.name in footer and settings.postal_address in footer
    assert any(settings.name in line for line in rendered.text.splitlines()[-6:])


def test_text_part_wraps_to_the_configured_width(rendered, workspace):
    width = workspace.settings.compose.text_width
    for line in rendered.text.splitlines():
        if "://" not in line and "%%" not in line:
            assert sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line) <= width, line


def test_personalize_fills_and_escapes_per_recipient_values(rendered):
    recipient = Recipient("a@example.com", "<script>x</script>", "https://u.example/?t=a&b=1")
    html, text = rendered.personalize(recipient)
    assert "%%" not in html and "%%" not in text
    assert 'href="https://u.example/?t=a&amp;b=1"' in html
    assert "https://u.example/?t=a&b=1" in text
    # The rendered issue itself is untouched: built once, filled per message.
    assert PLACEHOLDERS["unsubscribe_url"] in rendered.html


def test_a_value_that_looks_like_a_placeholder_stays_as_typed(rendered):
    html, text = rendered.personalize(Recipient("a@example.com", "x", "https://u.example/%%EMAIL%%"))
    assert "https://u.example/%%EMAIL%%" in text
    assert 'href="https://u.example/%%EMAIL%%"' in html


def test_names_are_escaped_where_a_template_greets_the_reader(workspace):
    template = workspace.templates_dir / "newsletter.mjml.j2"
    source = template.read_text(encoding="utf-8")
    template.write_text(source.replace(
        '<p class="masthead">', '<p class="greeting">Hello {{ recipient.name }}</p><p class="masthead">'),
        encoding="utf-8")
    rendered = compose(read_issue(EXAMPLE_ISSUE), workspace.settings, workspace.templates_dir)
    html, _ = rendered.personalize(Recipient("a@example.com", "<img src=x onerror=alert(1)>", "https://x"))
    assert "Hello &lt;img src=x onerror=alert(1)&gt;" in html
    html, _ = rendered.personalize(Recipient("a@example.com", "", "https://x"), default_name="reader")
    assert "Hello reader" in html


def test_compose_is_deterministic(workspace):
    first = compose(read_issue(EXAMPLE_ISSUE), workspace.settings, workspace.templates_dir)
    second = compose(read_issue(EXAMPLE_ISSUE), workspace.settings, workspace.templates_dir)
    assert first.html == second.html and first.text == second.text


def _normalised_html(html: str) -> list[str]:
    """One line per tag or text run, whitespace collapsed: a structural view."""
    events: list[str] = []

    class Walk(HTMLParser):
        def handle_starttag(self, tag, attrs):
            events.append(f"<{tag} " + " ".join(f'{k}="{v}"' for k, v in attrs) + ">")

        def handle_endtag(self, tag):
            events.append(f"</{tag}>")

        def handle_data(self, data):
            if data.strip():
                events.append(" ".join(data.split()))

        def handle_comment(self, data):
            events.append(f"<!--{' '.join(data.split())}-->")

    Walk(convert_charrefs=True).feed(html)
    return events


@pytest.mark.parametrize("suffix", ["html", "txt"])
def test_example_issue_matches_its_golden_file(rendered, suffix, update_golden):
    """Golden output, reviewed as a diff; rewrite with pytest --update-golden."""
    golden = GOLDEN / f"2024-26.{suffix}"
    actual = rendered.html if suffix == "html" else rendered.text
    if update_golden:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    expected = golden.read_text(encoding="utf-8")
    if suffix == "html":
        expected_lines, actual_lines = _normalised_html(expected), _normalised_html(actual)
    else:
        expected_lines, actual_lines = expected.splitlines(), actual.splitlines()
    diff = list(difflib.unified_diff(expected_lines, actual_lines, "golden", "rendered", lineterm=""))
    assert not diff, "output differs from the golden file (pytest --update-golden to accept):\n" \
        + "\n".join(diff[:60])


def test_template_syntax_error_names_the_template_and_line(workspace):
    template = workspace.templates_dir / "newsletter.txt.j2"
    lines = template.read_text(encoding="utf-8").splitlines()
    lines.insert(6, "{% if issue.title %}")  # never closed
    template.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        compose(read_issue(EXAMPLE_ISSUE), workspace.settings, workspace.templates_dir)
    message = str(caught.value)
    assert message.startswith(f"{template}:")
    assert "template syntax error" in message


def test_undefined_variable_in_a_template_names_its_line(workspace):
    template = workspace.templates_dir / "newsletter.mjml.j2"
    lines = template.read_text(encoding="utf-8").split("\n")
    target = next(n for n, line in enumerate(lines) if "<mj-title>" in line)
    lines[target] = lines[target].replace("{{ subject }}", "{{ subjcet }}")
    template.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        compose(read_issue(EXAMPLE_ISSUE), workspace.settings, workspace.templates_dir)
    assert str(caught.value).startswith(f"{template}:{target + 1}: template failed: 'subjcet' is undefined")


def test_inlining_never_touches_the_network(workspace):
    """A stylesheet link in a template is left alone, never fetched."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"p { color: red }")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                              daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/remote.css"
        template = workspace.templates_dir / "newsletter.mjml.j2"
        source = template.read_text(encoding="utf-8")
        template.write_text(source.replace(
            "<mj-raw>", f'<mj-raw>\n      <link rel="stylesheet" href="{url}">', 1), encoding="utf-8")
        compose(read_issue(EXAMPLE_ISSUE), workspace.settings, workspace.templates_dir)
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []


def test_rich_content_reaches_both_parts_in_place(workspace):
    source = """# Title

An intro with a [link](https://example.com/intro) and `code`.

## Section

**1.** [Linked title](https://example.com/one)

**Summary:** First summary.

> A quote the editor added.

![A chart](https://example.com/chart.png)

- point one
- point two

<div class="note">Raw <b>HTML</b> note</div>

**2.** **Second**

https://example.com/two
"""
    issue = parse_issue(source, Path("x.md"))
    rendered = compose(issue, workspace.settings, workspace.templates_dir)
    html, text = rendered.html, rendered.text
    order = ["An intro with a", "Linked title", "First summary.", "A quote the editor added.",
             "point one", "Raw", "Second"]
    body = html.split('class="issue-title"', 1)[1]  # past the hidden preheader
    positions = [squash("".join(visible(body).text)).index(squash(p)) for p in order]
    assert positions == sorted(positions)
    assert '<img src="https://example.com/chart.png" alt="A chart"' in html
    assert "<blockquote" in html and '<div class="note"' in html
    text_positions = [squash(text).index(squash(p)) for p in order]
    assert text_positions == sorted(text_positions)
    assert "An intro with a link <https://example.com/intro> and code." in text
    assert "> A quote the editor added." in text
    assert "[A chart] <https://example.com/chart.png>" in text
    assert "- point one" in text and "- point two" in text
    assert "Raw HTML note" in text
    assert "https://example.com/one" in text and "https://example.com/two" in text

