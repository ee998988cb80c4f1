"""The Markdown dialect of issues: CommonMark with tables, strikethrough, bare links.

Bare links are linked the way GitHub links them: only text that starts with
``http://``, ``https://``, ``www.`` or ``mailto:``. linkify-it would also link
any word that ends in a top-level domain, and file names do: ``setup.py``,
``main.rs``, ``README.md`` and ``reader.name`` would become links to
``http://setup.py`` and so on, which no writer meant. ``ftp://`` and
protocol-relative ``//host`` links are left as text too, since a mail client
cannot open them.

A bare URL is text, so an entity in it is decoded once, as everywhere else
in the text: ``https://a.example/?a=1&amp;b=2`` links to ``?a=1&b=2``.
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

_LINKED_FORMS = re.compile(r"^(?:https?://|www\.|mailto:)", re.I)
_ENTITY = re.compile(r"&(?:#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[A-Za-z][A-Za-z0-9]{1,31});")


def _join_entities(state: StateCore) -> None:
    """Merge decoded entities into the text around them, so a bare link spans them.

    Only entities: a backslash escape stays apart, so ``www\\.example.com``
    remains a way to write a domain that is not linked.
    """
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        joined: list[Token] = []
        for token in block.children:
            if token.type == "text_special" and token.info == "entity":
                token = Token("text", "", 0, content=token.content)
            if token.type == "text" and joined and joined[-1].type == "text":
                joined[-1].content += token.content
            else:
                joined.append(token)
        block.children = joined


def _bare_links(state: StateCore) -> None:
    """Keep only the bare links GitHub makes, with their entities decoded once."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children = block.children
        kept: list[Token] = []
        n = 0
        while n < len(children):
            token = children[n]
            if token.type == "link_open" and token.markup == "linkify" and n + 2 < len(children):
                text, close = children[n + 1], children[n + 2]
                if not _LINKED_FORMS.match(text.content):
                    kept.append(Token("text", "", 0, content=text.content))
                    n += 3
                    continue
                decoded = _ENTITY.sub(lambda m: html.unescape(m.group()), text.content)
                if decoded != text.content:
                    href = _ENTITY.sub(lambda m: html.unescape(m.group()), str(token.attrs["href"]))
                    token.attrs["href"] = _parser.normalizeLink(href)
                    text.content = decoded
                kept.extend((token, text, close))
                n += 3
                continue
            kept.append(token)
            n += 1
        block.children = kept


def _make_parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": True, "linkify": True, "typographer": False})
    parser.enable(["table", "strikethrough", "linkify"])
    # Neither opens from an email: ftp:// links, and //host links without a scheme.
    parser.linkify.add("ftp:", None)
    parser.linkify.add("//", None)
    parser.core.ruler.before("linkify", "join_entities", _join_entities)
    parser.core.ruler.after("linkify", "bare_links", _bare_links)
    return parser


_parser = _make_parser()


def markdown_parser() -> MarkdownIt:
    """The one parser every issue is read with (it holds no per-document state)."""
    return _parser
