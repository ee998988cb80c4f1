"""The email on a phone and within Gmail's clip: what readers of long issues see."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.long_issue import long_issue
from mailer.compose.issue import parse_issue, read_issue
from mailer.compose.lint import GMAIL_CLIP_BYTES
from mailer.compose.render import compose

from .conftest import EXAMPLE_ISSUE

WIDE_CONTENT = Path(__file__).parent / "data" / "issues" / "wide-content.md"
PHONE = {"width": 375, "height": 800}


def test_a_long_chinese_weekly_stays_under_gmails_clip(workspace):
    """40 entries with 40 images, 28 KB of Markdown: its footer must not be clipped away."""
    source = long_issue(items=40, images=40, shape="weekly")
    assert 27_000 < len(source.encode()) < 30_000
    rendered = compose(parse_issue(source, Path("issues/2024-30.md")), workspace.settings,
                       workspace.templates_dir)
    assert rendered.html.count("<img") == 40
    assert len(rendered.html.encode()) < GMAIL_CLIP_BYTES


def _phone_page(chromium, html: str):
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_content(html)
    return context, page


@pytest.mark.parametrize("path", [EXAMPLE_ISSUE, WIDE_CONTENT], ids=["example", "wide-content"])
def test_nothing_is_wider_than_a_phone(chromium, workspace, path):
    rendered = compose(read_issue(path), workspace.settings, workspace.templates_dir)
    context, page = _phone_page(chromium, rendered.html)
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
    finally:
        context.close()
    assert width <= PHONE["width"]


def test_tables_keep_words_whole_and_their_own_padding_on_a_phone(chromium, workspace):
    rendered = compose(read_issue(WIDE_CONTENT), workspace.settings, workspace.templates_dir)
    context, page = _phone_page(chromium, rendered.html)
    try:
        cells = page.evaluate("""() => [...document.querySelectorAll('.rich th, .rich td')].map(cell => {
            const range = document.createRange();
            range.selectNodeContents(cell);
            const lineHeight = parseFloat(getComputedStyle(cell).lineHeight);
            return {text: cell.textContent, lines: Math.round(range.getBoundingClientRect().height / lineHeight),
                    words: cell.textContent.split(/[\\s-]+/).length,
                    padding: getComputedStyle(cell).paddingLeft};
        })""")
        table = page.evaluate("""() => { const t = document.querySelector('.rich table');
            return {scroll: t.scrollWidth, client: t.clientWidth}; }""")
    finally:
        context.close()
    assert {c["text"] for c in cells} >= {"Regressions", "1,234,567", "Improvements", "2,556"}
    for cell in cells:
        # A cell breaks at most between its words (and at hyphens), never inside one.
        assert cell["lines"] <= cell["words"], cell
        assert cell["padding"] == "8px", cell
    # Too wide for the phone, the table scrolls inside the card.
    assert table["scroll"] > table["client"]


def test_code_blocks_wrap_at_spaces_first(chromium, workspace):
    rendered = compose(read_issue(WIDE_CONTENT), workspace.settings, workspace.templates_dir)
    context, page = _phone_page(chromium, rendered.html)
    try:
        ends = page.evaluate("""() => {
            const code = document.querySelector('.rich pre code');
            const text = code.firstChild.textContent, range = document.createRange();
            const ends = [];
            let top = null;
            for (let i = 0; i < text.length; i++) {
                range.setStart(code.firstChild, i); range.setEnd(code.firstChild, i + 1);
                const rect = range.getClientRects()[0];
                if (!rect) continue;
                if (top !== null && rect.top > top + 2) ends.push(text.slice(Math.max(0, i - 1), i + 1));
                top = rect.top;
            }
            return ends;
        }""")
    finally:
        context.close()
    assert ends, "the code block is wider than a phone and wraps"
    first_line_breaks = [pair for pair in ends if "\n" not in pair]
    # The long first line wraps after a space, not in the middle of `results.iter()`.
    assert first_line_breaks[0][0] == " ", ends
