"""MIME messages: parsed back with the standard library and checked."""

from __future__ import annotations

import email
from email import policy
from email.header import decode_header, make_header

import pytest

from mailer.compose.build import render_issue, sample_recipient
from mailer.compose.render import Recipient
from mailer.errors import HeaderError
from mailer.send.message import MessageTemplate, new_envelope

from .conftest import EXAMPLE_ISSUE


@pytest.fixture
def rendered(workspace):
    return render_issue(workspace, EXAMPLE_ISSUE)


def build(rendered, workspace, recipient):
    return MessageTemplate(rendered, workspace.settings).build(recipient, new_envelope(workspace.settings))


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def header_lines(raw: bytes) -> list[str]:
    """The raw header block, unfolded into one logical line per field."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return head.replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n")


def test_sample_message_has_the_headers_a_bulk_sender_needs(rendered, workspace):
    raw = build(rendered, workspace, sample_recipient(workspace))
    msg = parse(raw)
    settings = workspace.settings
    assert msg["From"].addresses[0].display_name == settings.newsletter.name
    assert msg["From"].addresses[0].addr_spec == settings.sender.address
    assert msg["To"].addresses[0].addr_spec == "reader@example.com"
    assert str(msg["Subject"]) == rendered.subject
    assert msg["Date"].datetime is not None
    assert msg["Message-ID"].endswith(f"@{settings.sender_domain}>")
    assert msg["MIME-Version"] == "1.0"
    unsubscribe = str(msg["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://newsletter.example.com/unsubscribe?t=")
    assert "<mailto:unsubscribe@newsletter.example.com" in unsubscribe
    # The reply to the mailto names the reader by the same token as the URL.
    token = unsubscribe.split("?t=", 1)[1].split(">", 1)[0]
    assert f"?subject=unsubscribe%20{token}>" in unsubscribe
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"<{settings.list_id}>" in str(msg["List-Id"])
    # Non-ASCII header text travels RFC 2047-encoded, never raw.
    assert all(line.isascii() for line in header_lines(raw))
    assert "=?utf-8?" in raw.split(b"\r\n\r\n")[0].decode("ascii")


def test_parts_are_text_then_html_in_utf8_with_the_same_unsubscribe_url(rendered, workspace):
    recipient = Recipient("reader@example.com", "读者", "https://newsletter.example.com/unsubscribe?t=abc")
    msg = parse(build(rendered, workspace, recipient))
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in parts)
    text, html = parts[0].get_content(), parts[1].get_content()
    assert rendered.issue.title.text in text and rendered.issue.title.text in html
    assert "https://newsletter.example.com/unsubscribe?t=abc" in text
    assert 'href="https://newsletter.example.com/unsubscribe?t=abc"' in html
    assert "%%" not in text and "%%" not in html


def test_no_line_exceeds_998_octets(rendered, workspace):
    recipient = Recipient("reader@example.com", "名" * 300, "https://newsletter.example.com/u?t=" + "a" * 300)
    raw = build(rendered, workspace, recipient)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    # RFC 2047 decoding (the stdlib's address parser keeps the folding spaces
    # between encoded words, which the RFC says a reader drops).
    to = next(line for line in header_lines(raw) if line.startswith("To: "))
    assert str(make_header(decode_header(to[4:]))) == "名" * 300 + " <reader@example.com>"


def test_a_hostile_encoded_word_name_adds_no_header_and_no_recipient(rendered, workspace):
    hostile = "=?utf-8?q?=0D=0ABcc:_victim@evil.example?="
    raw = build(rendered, workspace, Recipient("reader@example.com", hostile, "https://x.example/u"))
    names = [line.split(":", 1)[0].lower() for line in header_lines(raw)]
    assert "bcc" not in names and "cc" not in names
    msg = parse(raw)
    assert [a.addr_spec for a in msg["To"].addresses] == ["reader@example.com"]
    # The name arrives as the literal text typed, not decoded a second time.
    assert msg["To"].addresses[0].display_name == hostile


@pytest.mark.parametrize("name", ["Eve\r\nBcc: victim@evil.example", "Eve\nX: y", "Eve\x00"])
def test_line_breaks_in_a_name_are_refused(rendered, workspace, name):
    with pytest.raises(HeaderError, match="recipient contains a line break or control character"):
        build(rendered, workspace, Recipient("reader@example.com", name, "https://x.example/u"))


def test_quotes_in_an_ascii_name_are_escaped(rendered, workspace):
    raw = build(rendered, workspace, Recipient("r@example.com", 'Ann "the, reader"', "https://x.example/u"))
    to = parse(raw)["To"].addresses
    assert len(to) == 1 and to[0].display_name == 'Ann "the, reader"'


def test_idn_domains_are_encoded_and_bad_addresses_refused(rendered, workspace):
    raw = build(rendered, workspace, Recipient("reader@bücher.example", "", "https://x.example/u"))
    assert parse(raw)["To"].addresses[0].addr_spec == "reader@xn--bcher-kva.example"
    with pytest.raises(HeaderError, match="is not an email address"):
        build(rendered, workspace, Recipient("a@b.example, c@d.example", "", "https://x.example/u"))


def test_each_message_gets_a_unique_message_id(workspace):
    ids = {new_envelope(workspace.settings).message_id for _ in range(200)}
    assert len(ids) == 200


def test_a_hostile_subject_stays_one_subject(workspace):
    from pathlib import Path

    from mailer.compose.render import compose
    from mailer.compose.issue import parse_issue

    hostile = "=?utf-8?q?=0D=0ABcc:_victim@evil.example?= Week 26"
    issue = parse_issue(f"---\nsubject: '{hostile}'\n---\n# T\n", Path("x.md"))
    rendered = compose(issue, workspace.settings, workspace.templates_dir)
    raw = build(rendered, workspace, Recipient("reader@example.com", "", "https://x.example/u"))
    names = [line.split(":", 1)[0].lower() for line in header_lines(raw)]
    assert "bcc" not in names
    assert str(parse(raw)["Subject"]) == hostile


@pytest.mark.parametrize("text", [
    "x" * 70 + " " * 5 + "\n",          # the encoder makes this a 77-octet line
    "x" * 74 + " " * 5 + "\nnext",
    "é" * 24 + " " * 8 + "\n",
    " " * 200 + "\n",
])
def test_body_lines_never_pass_76_octets_and_decode_to_the_text(text):
    import quopri

    from mailer.send.message import quoted_printable

    encoded = quoted_printable(text)
    assert max(len(line) for line in encoded.split(b"\r\n")) <= 76
    assert quopri.decodestring(encoded).decode("utf-8").replace("\r\n", "\n") == text
