"""The prepared-template fast path means exactly what the email package builds."""

from __future__ import annotations

import email
import re
from email import policy
from email.header import decode_header, make_header

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.compose.build import render_issue
from mailer.compose.render import PLACEHOLDERS, Recipient, RenderedIssue
from mailer.send.message import MessageTemplate, build_message_stdlib, new_envelope

from .conftest import EXAMPLE_ISSUE

RECIPIENTS = [
    Recipient("reader@example.com", "", "https://newsletter.example.com/unsubscribe?t=abc"),
    Recipient("ann+news@example.org", "Ann Lee", "https://n.example/u?t=a&x=1=2"),
    Recipient("wang@example.cn", "王小明", "https://n.example/u?t=" + "Z" * 39),
    Recipient("long@example.com", "名字很长的读者" * 20, "https://n.example/u?t=q"),
    Recipient("quote@example.com", 'Ann "the, reader" O\'Neil', "https://n.example/u?t=r"),
]


def raw_headers(raw: bytes) -> dict[str, str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    fields = {}
    for line in re.split(r"\r\n(?![ \t])", head):
        name, _, value = line.partition(":")
        fields[name.lower()] = " ".join(value.split())
    return fields


def mailbox(value: str) -> tuple[str, str]:
    """(display name, address) of one mailbox, decoded as RFC 2047 says.

    Python 3.11's own address parser keeps the space between adjacent encoded
    words, which the RFC drops, so the phrase is decoded here instead.
    """
    phrase, _, addr = value.rpartition("<")
    phrase = phrase.strip()
    if phrase.startswith('"') and phrase.endswith('"'):
        name = re.sub(r"\\(.)", r"\1", phrase[1:-1])
    else:
        name = str(make_header(decode_header(phrase))) if phrase else ""
    return name, addr.rstrip(">").strip() if addr else value.strip()


def meaning(raw: bytes) -> dict:
    msg = email.message_from_bytes(raw, policy=policy.default)
    fields = raw_headers(raw)
    parts = list(msg.iter_parts())
    return {
        "from": mailbox(fields["from"]),
        "to": mailbox(fields["to"]),
        "subject": str(msg["Subject"]),
        "date": msg["Date"].datetime,
        "message-id": fields["message-id"],
        # The email package turns a URL longer than a line into encoded words
        # (which mail clients would not read as a URL); compare what it means.
        "list-unsubscribe": str(make_header(decode_header(fields["list-unsubscribe"]))),
        "list-unsubscribe-post": fields["list-unsubscribe-post"],
        "list-id": str(make_header(decode_header(fields["list-id"]))),
        "feedback-id": fields["feedback-id"],
        "mime-version": fields["mime-version"],
        "type": msg.get_content_type(),
        "parts": [(p.get_content_type(), p.get_content_charset(), p.get_content()) for p in parts],
    }


@pytest.fixture
def rendered(workspace):
    return render_issue(workspace, EXAMPLE_ISSUE)


@pytest.mark.parametrize("recipient", RECIPIENTS, ids=lambda r: r.email)
def test_fast_path_means_what_the_email_package_builds(rendered, workspace, recipient):
    envelope = new_envelope(workspace.settings)
    fast = MessageTemplate(rendered, workspace.settings).build(recipient, envelope)
    slow = build_message_stdlib(rendered, workspace.settings, recipient, envelope)
    assert meaning(fast) == meaning(slow)
    assert meaning(fast)["to"] == (recipient.name, recipient.email)


def test_one_template_serves_many_recipients_independently(rendered, workspace):
    template = MessageTemplate(rendered, workspace.settings)
    messages = [template.build(r, new_envelope(workspace.settings)) for r in RECIPIENTS]
    for recipient, raw in zip(RECIPIENTS, messages):
        text = meaning(raw)["parts"][0][2]
        assert recipient.unsubscribe_url in text
        others = [r.unsubscribe_url for r in RECIPIENTS if r.unsubscribe_url != recipient.unsubscribe_url]
        assert not any(f"{url}\n" in text for url in others)


_body_text = st.lists(
    st.sampled_from(list("ab =.\t-<>&\"'中文😀\u200b") + ["\n", "x" * 70, "=" * 30, " " * 5]
                    + list(PLACEHOLDERS.values())),
    max_size=60,
).map("".join)
_names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_body_text, html=_body_text, name=_names,
       token=st.text(st.sampled_from("AZaz09-_=&?%"), min_size=1, max_size=120))
def test_spliced_bodies_decode_to_the_personalised_text(rendered, workspace, text, html, name, token):
    """Placeholders anywhere — at line ends, beside '=' or spaces, next to
    multi-byte characters — decode to exactly what personalize() gives."""
    issue = RenderedIssue(rendered.issue, "S", "", html, text)
    recipient = Recipient("r@example.com", name.strip(), f"https://n.example/u?t={token}")
    raw = MessageTemplate(issue, workspace.settings).build(recipient, new_envelope(workspace.settings))
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    want_html, want_text = issue.personalize(recipient, workspace.settings.newsletter.default_name)
    parts = meaning(raw)["parts"]
    # The decoder turns CRLF back into the platform's newline; compare like for like.
    assert parts[0][2].replace("\r\n", "\n") == want_text.replace("\r\n", "\n").replace("\r", "\n")
    assert parts[1][2].replace("\r\n", "\n") == want_html.replace("\r\n", "\n").replace("\r", "\n")
    assert mailbox(raw_headers(raw)["to"]) == (recipient.name, "r@example.com")
