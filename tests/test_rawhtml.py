"""Raw HTML, comments, embeds and control characters, as real newsletters have them.

Each fixture in tests/data/rawhtml/ is a few lines reproducing one shape
found in public Markdown newsletters; each is composed end to end and both
parts are checked for what a reader would see.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
from markupsafe import Markup

from mailer.compose.issue import Fragment, parse_issue, read_issue
from mailer.compose.lint import lint
from mailer.compose.render import compose
from mailer.errors import RenderError

FIXTURES = Path(__file__).parent / "data" / "rawhtml"
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def rendered(workspace, name: str):
    return compose(read_issue(FIXTURES / name), workspace.settings, workspace.templates_dir)


def warnings(result) -> list[str]:
    return [f.format("x.md") for f in lint(result).findings if f.level == "warning"]


def test_unquoted_widths_keep_their_images(workspace):
    result = rendered(workspace, "unquoted-width.md")
    assert re.search(r'<img src="https://img.example.com/2024/cover.webp" alt="湖边的黄昏" width="900"',
                     result.html)
    # "width=230/" is 230 to a browser; Outlook reads only a number.
    assert re.search(r'<img src="https://img.example.com/2024/chart.png" alt="图表" width="230"', result.html)
    assert "[湖边的黄昏] <https://img.example.com/2024/cover.webp>" in result.text
    assert "[图表] <https://img.example.com/2024/chart.png>" in result.text


def test_end_tags_after_images_are_ignored_as_in_a_browser(workspace):
    result = rendered(workspace, "img-end-tags.md")
    assert "</img>" not in result.html
    assert result.html.count('src="https://img.example.com/') == 2
    assert "[A bridge] <https://img.example.com/a.jpg>\n\nA bridge at night." in result.text
    assert "<>" not in result.text


def test_stray_end_tags_and_an_unclosed_bold_render_as_in_a_browser(workspace):
    result = rendered(workspace, "stray-end-tags.md")
    assert re.search(r"<p[^>]*>A paragraph typed by hand.</p>", result.html)
    assert re.search(r"<li[^>]*>First</li>\s*<li[^>]*>Second</li>", result.html)
    # An unclosed <b> ends with its paragraph; the next one is not bold.
    assert re.search(r"Text after <b[^>]*>an unclosed bold.</b></p>", result.html)
    assert re.search(r"<p[^>]*>Next paragraph.</p>", result.html)
    assert "- First\n- Second\n\nText after an unclosed bold.\n\nNext paragraph." in result.text


def test_control_characters_are_dropped_and_lint_names_their_lines(workspace):
    result = rendered(workspace, "control-characters.md")
    assert not CONTROL.search(result.html) and not CONTROL.search(result.text)
    assert re.search(r'<a href="https://example.com/news"[^>]*>the announcement</a>', result.html)
    assert "Read the announcement <https://example.com/news> today." in result.text
    assert "Pasted from Word: the rest of the line." in result.text
    found = warnings(result)
    assert "x.md:5: warning: control character U+0002 dropped; it is invisible and no mail client shows it" in found
    assert "x.md:7: warning: control character U+000B dropped; it is invisible and no mail client shows it" in found


def test_no_text_can_make_the_mjml_renderer_fail(workspace):
    every_control = "".join(chr(c) for c in [*range(0x20), *range(0x7f, 0xa0)] if chr(c) not in "\n\r")
    source = f"# T\n\nA{every_control}B <b>x{every_control}</b> \ufffe\uffff\n"
    result = compose(parse_issue(source, Path("x.md")), workspace.settings, workspace.templates_dir)
    assert not CONTROL.search(result.html.replace("\t", "")) and not CONTROL.search(result.text)
    assert re.search(r"A\tB <b[^>]*>x\t</b>", result.html) and "A B x" in result.text


def test_comments_are_removed_from_both_parts_and_the_templates_stay(workspace):
    result = rendered(workspace, "comments.md")
    for note in ("co-editors", "inline remark", "Dear community contributors", "my_article"):
        assert note not in result.html and note not in result.text
    assert "Visible text." in result.text and "More visible text." in result.text
    # The only comments left are Outlook's conditional ones the template writes.
    assert "<!--[if mso" in result.html
    assert not re.search(r"<!--(?!\[if|<!\[endif\]|>)", result.html)


def test_embeds_become_links_with_a_youtube_thumbnail(workspace):
    result = rendered(workspace, "embeds.md")
    assert "<iframe" not in result.html
    watch = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert re.search(rf'<a [^>]*href="{re.escape(watch)}"[^>]*><img src="https://i.ytimg.com/vi/dQw4w9WgXcQ/'
                     r'hqdefault.jpg" alt="Conference keynote"', result.html)
    assert re.search(rf'<a href="{re.escape(watch)}"[^>]*>Conference keynote</a>', result.html)
    assert re.search(r'<a href="https://www.bilibili.com/video/BV17x411w7KC"[^>]*>bilibili.com</a>', result.html)
    assert f"Conference keynote <{watch}>" in result.text
    assert "bilibili.com <https://www.bilibili.com/video/BV17x411w7KC>" in result.text
    assert "ytimg" not in result.text
    found = warnings(result)
    assert (f"x.md:5: warning: <iframe> replaced by a link to {watch}: mail clients do not show embeds"
            in found)
    assert ("x.md:7: warning: <iframe> replaced by a link to https://www.bilibili.com/video/BV17x411w7KC: "
            "mail clients do not show embeds" in found)


def test_an_embed_inside_a_paragraph_becomes_a_link_there(workspace):
    source = ('# T\n\nWatch <video src="https://cdn.example.com/talk.mp4" title="The talk" controls>'
              "Your browser cannot play it.</video> now.\n")
    result = compose(parse_issue(source, Path("x.md")), workspace.settings, workspace.templates_dir)
    assert "<video" not in result.html and "Your browser" not in result.html
    assert re.search(r'Watch <a href="https://cdn.example.com/talk.mp4"[^>]*>The talk</a> now.', result.html)
    assert "Watch The talk <https://cdn.example.com/talk.mp4> now." in result.text
    assert ("x.md:3: warning: <video> replaced by a link to https://cdn.example.com/talk.mp4: "
            "mail clients do not show embeds") in warnings(result)


def test_type_parameters_in_prose_are_shown_as_typed(workspace):
    result = rendered(workspace, "rust-generics.md")
    html = result.html
    assert "Why impl&lt;T&gt; Try for Option&lt;T&gt; matters</a>" in html
    assert "FromIterator&lt;A&gt; into a Vec&lt;u8&gt;" in html
    assert "Result&lt;T, E&gt; from main" in html
    assert re.search(r"<p[^>]*>Option&lt;T&gt; is the type", html)
    assert not re.search(r"</?(t|u8)>|<a>", html, re.I)
    assert "- Why impl<T> Try for Option<T> matters <https://example.com/try>" in result.text
    assert "- Collecting with FromIterator<A> into a Vec<u8>" in result.text
    assert "Option<T> is the type of a value that may be missing." in result.text


def test_a_block_starting_with_a_made_up_tag_is_markdown(workspace):
    issue = parse_issue("# T\n\n<candy> is **sweet**\n- and a list\n\nEnd.\n", Path("x.md"))
    html = "".join(str(e.content.html) for e in issue.intro)
    assert "<p>&lt;candy&gt; is <strong>sweet</strong></p>" in html
    assert "<li>and a list</li>" in html
    assert issue.intro[0].content.text.startswith("<candy> is sweet")


def test_real_html_written_in_capitals_stays_html(workspace):
    issue = parse_issue('# T\n\nSee <A HREF="https://example.com">this</A> and <B>that</B>.\n', Path("x.md"))
    assert str(issue.intro[0].content.html) == '<p>See <a href="https://example.com">this</a> and <b>that</b>.</p>'


def test_content_the_renderer_refuses_is_blamed_on_its_line_not_the_template(workspace):
    issue = parse_issue("# T\n\nFirst.\n\nSecond.\n", Path("issues/x.md"))
    # Content built outside the parser, which does not pass through the HTML5 parser.
    broken = dataclasses.replace(issue.intro[1], content=Fragment(Markup("<b>"), "x"))
    issue = dataclasses.replace(issue, intro=(issue.intro[0], broken))
    with pytest.raises(RenderError) as caught:
        compose(issue, workspace.settings, workspace.templates_dir)
    assert str(caught.value).startswith("issues/x.md:5: MJML could not render this content")


def test_lint_reports_replacements_with_their_lines(run_mailer, workspace_dir):
    shutil.copy(FIXTURES / "embeds.md", workspace_dir / "issues" / "embeds.md")
    result = run_mailer("lint", "embeds")
    assert result.exit_code == 0, result.output
    assert (f"{workspace_dir / 'issues' / 'embeds.md'}:5: warning: <iframe> replaced by a link to "
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ: mail clients do not show embeds") in result.output


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.md")))
def test_every_fixture_fits_a_phone_without_horizontal_overflow(chromium, workspace, name):
    context = chromium.new_context(viewport={"width": 375, "height": 800})
    try:
        page = context.new_page()
        # Pictures load from nowhere: what counts is the width the markup asks for.
        page.route("**/*", lambda route: route.abort())
        page.set_content(rendered(workspace, name).html)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()


def test_scripts_forms_and_gists_become_what_email_can_show(workspace):
    source = """# T

<blockquote class="twitter-tweet"><p>A post.</p><a href="https://twitter.com/x/status/1">link</a></blockquote>
<script async src="https://platform.twitter.com/widgets.js" charset="utf-8"></script>

<script src="https://gist.github.com/someone/0123abcd.js"></script>

<form action="https://example.com/subscribe" title="Sign up"><input name=email><button>Go</button></form>
"""
    result = compose(parse_issue(source, Path("x.md")), workspace.settings, workspace.templates_dir)
    assert "<script" not in result.html and "<form" not in result.html and "<input" not in result.html
    assert re.search(r"<p[^>]*>A post.</p>", result.html)
    assert re.search(r'<a href="https://gist.github.com/someone/0123abcd"[^>]*>gist.github.com</a>', result.html)
    assert re.search(r'<a href="https://example.com/subscribe"[^>]*>Sign up</a>', result.html)
    assert "Sign up <https://example.com/subscribe>" in result.text
    found = warnings(result)
    assert "x.md:4: warning: <script> removed: mail clients do not run it and it links to no page" in found
    assert ("x.md:6: warning: <script> replaced by a link to https://gist.github.com/someone/0123abcd: "
            "mail clients do not show embeds") in found


def test_an_embed_in_a_list_is_reported_at_its_own_line(workspace):
    source = ("# T\n\n- first item\n- a talk, recorded:\n  watch it here\n"
              '  <video src="https://cdn.example.com/t.mp4" controls></video>\n')
    result = compose(parse_issue(source, Path("x.md")), workspace.settings, workspace.templates_dir)
    assert ("x.md:6: warning: <video> replaced by a link to https://cdn.example.com/t.mp4: "
            "mail clients do not show embeds") in warnings(result)
    assert "watch it here cdn.example.com\n  <https://cdn.example.com/t.mp4>" in result.text


def test_raw_text_elements_show_what_a_mail_client_would(workspace):
    source = ("# T\n\n<xmp><b>not bold</b></xmp>\n\n<style>/* <b> in a comment */ .x { color: red }</style>\n\n"
              "<noframes>Your browser has no frames.</noframes>\n\nEnd.\n")
    result = compose(parse_issue(source, Path("x.md")), workspace.settings, workspace.templates_dir)
    assert re.search(r"<pre[^>]*>&lt;b&gt;not bold&lt;/b&gt;</pre>", result.html)
    assert "no frames" not in result.html
    assert "End." in result.text


def test_type_parameters_inside_raw_html_stay_text(workspace):
    issue = parse_issue("# T\n\n<div class=note>\nReturns Option&lt;T&gt; or Vec<u8>, see <b>Box<dyn Error></b>\n</div>\n",
                        Path("x.md"))
    box = issue.intro[0].content
    assert "Vec&lt;u8&gt;" in box.html and "<b>Box&lt;dyn Error&gt;</b>" in box.html
    assert "Vec<u8>, see Box<dyn Error>" in box.text
