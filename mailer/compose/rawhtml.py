"""Raw HTML inside an issue's Markdown, read as a browser reads it.

Authors paste HTML as browsers accept it: ``<img … width=900>`` with an
unquoted value, ``</img>`` after every image, a stray ``</p>``, an
unclosed ``<b>``. Browsers show all of it; the MJML renderer refuses
anything that is not well-formed. So each rendered piece holding raw HTML
goes through an HTML5 parser (lexbor, through selectolax) and is written
back well-formed, as a browser would have built it.

Before that, at the level of Markdown's tokens, three things happen that a
browser would not do, because an email is not a web page:

- Only real HTML element names are tags. Markdown takes ``Option<T>``,
  ``Vec<u8>`` or ``FromIterator<A>`` in prose for HTML; a browser would
  hide them. They become text again, shown as typed, in both parts.
- Comments (notes to co-editors) are removed: they would reach every
  subscriber's mail source.
- Embeds (``<iframe>``, ``<video>``, ``<form>`` …) become the link a reader
  can use (see `embeds`), and each is recorded as a `Change` for lint.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from html import unescape
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from markdown_it.token import Token
from selectolax.lexbor import LexborHTMLParser

from .changes import Change
from .embeds import EMBED_TAGS, VOID_EMBEDS, Replacement, replace_embed
from .plaintext import closing

# The elements of the HTML standard, with the obsolete ones browsers still
# render, and SVG and MathML's roots. Anything else in angle brackets is
# the author's text.
ELEMENTS = frozenset("""
a abbr acronym address area article aside audio b base basefont bdi bdo big blink blockquote
body br button canvas caption center cite code col colgroup data datalist dd del details dfn
dialog dir div dl dt em embed fieldset figcaption figure font footer form frame frameset h1 h2
h3 h4 h5 h6 head header hgroup hr html i iframe img input ins kbd label legend li link main map
mark marquee math menu meta meter nav nobr noembed noframes noscript object ol optgroup option
output p param picture plaintext pre progress q rp rt ruby s samp script search section select
slot small source span strike strong style sub summary sup svg table tbody td template textarea
tfoot th thead time title tr track tt u ul var video wbr xmp
""".split())
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
# Tags whose end HTML lets authors leave out: they never hold a block open.
_OPTIONAL_END = frozenset("p li dt dd tr td th thead tbody tfoot option colgroup caption "
                          "html head body".split())

_ATTRS = r"""(?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*"""
_PIECE = re.compile(
    rf"<!--.*?(?:-->|\Z)|<(/?)([A-Za-z][A-Za-z0-9-]*)({_ATTRS})\s*(/?)>|<[!?][^>]*>", re.S)
_ATTR = re.compile(r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""")
_DIMENSION = re.compile(r"^\s*(\d+(?:\.\d+)?%?)")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_VOID_END = re.compile(r"</(?:area|base|br|col|embed|hr|img|input|link|meta|param|source|track|wbr)>")
# What the parser's reconstruction of an unclosed <b> leaves around the
# whitespace between blocks: the same thing a browser builds, but noise.
_EMPTY_FORMATTING = re.compile(
    r"<(a|b|big|code|em|font|i|nobr|s|small|strike|strong|tt|u)\b[^>]*>(\s*)</\1>")


def is_text(name: str, attrs: str, before: str, closing: bool = False) -> bool:
    """Whether the tag `name` (with `attrs`, after the character `before`) is prose, not HTML.

    A name outside HTML is prose (``<T>``, ``<u8>``, ``<candy>``). So is an
    attribute-less capitalised name glued to a word (``Result<Output>``,
    ``FromIterator<A>``): a type parameter, which HTML authors never write
    that way.
    """
    if name.lower() not in ELEMENTS:
        return True
    return (not closing and name != name.lower() and not attrs.strip()
            and (before.isalnum() or before == "_"))


def _attributes(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _ATTR.finditer(text):
        value = next((g for g in match.groups()[1:] if g is not None), "")
        found.setdefault(match.group(1).lower(), unescape(value))
    return found


def clean_tokens(tokens: list[Token], md: MarkdownIt, line: Callable[[Token], int]) -> list[Change]:
    """Rewrite the raw HTML in `tokens` in place; return what was replaced, by line."""
    changes: list[Change] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "html_block":
            first = _PIECE.search(token.content)
            if first and first.group(2) and is_text(first.group(2), first.group(3), ""):
                tokens[i:i + 1] = _as_markdown(token, first.start(), md)
                continue
            token.content = _clean_block(token.content, line(token), changes)
            if not token.content.strip():
                del tokens[i]
                continue
        elif token.type == "inline" and token.children:
            token.children = _clean_inline(token.children, line(token), changes)
        i += 1
    return changes


def _as_markdown(token: Token, at: int, md: MarkdownIt) -> list[Token]:
    """The block Markdown took for HTML because it starts with ``<T>``, parsed as Markdown."""
    source = token.content[:at] + "&lt;" + token.content[at + 1:]
    base = token.map[0] if token.map else 0
    parsed = md.parse(source)
    for new in parsed:
        new.level += token.level
        if new.map:
            new.map = [new.map[0] + base, new.map[1] + base]
    return parsed


def _clean_block(html: str, first_line: int, changes: list[Change]) -> str:
    """A raw HTML block without comments, with prose tags escaped and embeds replaced."""
    out: list[str] = []
    pos = 0
    for match in _PIECE.finditer(html):
        if match.start() < pos:
            continue
        out.append(html[pos:match.start()])
        pos = match.end()
        closing, name, attrs, _ = match.groups()
        piece = match.group(0)
        if piece.startswith("<!--"):
            continue
        if not name:
            out.append("&lt;" + piece[1:])
            continue
        before = html[match.start() - 1] if match.start() else ""
        lower = name.lower()
        if is_text(name, attrs, before, bool(closing)):
            out.append("&lt;" + piece[1:])
        elif lower in EMBED_TAGS and not closing:
            inner, pos = _embed_content(html, lower, pos)
            done = replace_embed(lower, _attributes(attrs), inner)
            _record(done, first_line + html.count("\n", 0, match.start()), changes)
            out.append(done.html)
        elif lower == "style" and not closing:
            end = re.compile(r"</style\s*>", re.I).search(html, pos)
            stop = end.end() if end else len(html)
            out.append(piece + html[pos:stop])
            pos = stop
        else:
            out.append(piece)
    out.append(html[pos:])
    return "".join(out)


def _embed_content(html: str, tag: str, pos: int) -> tuple[str, int]:
    """What lies inside the embed opened before `pos`, and where its end tag ends."""
    if tag in VOID_EMBEDS:
        return "", pos
    end = re.compile(rf"</{tag}\s*>", re.I).search(html, pos)
    # An embed never closed takes the rest of the block, as it does in a browser.
    return (html[pos:end.start()], end.end()) if end else (html[pos:], len(html))


def _record(done: Replacement, line: int, changes: list[Change]) -> None:
    if done.url:
        message = f"<{done.tag}> replaced by a link to {done.url}: mail clients do not show embeds"
    else:
        message = f"<{done.tag}> removed: mail clients do not run it and it links to no page"
    changes.append(Change(line, message))


def _clean_inline(children: list[Token], line: int, changes: list[Change]) -> list[Token]:
    """Inline tokens without comments, with prose tags as text and embeds replaced."""
    out: list[Token] = []
    skipping = ""
    for child in children:
        if child.type in ("softbreak", "hardbreak"):
            line += 1
        if skipping:
            if child.type == "html_inline" and re.match(rf"</{skipping}\s*>", child.content, re.I):
                skipping = ""
            continue
        if child.type != "html_inline":
            out.append(child)
            continue
        content = child.content
        match = _PIECE.fullmatch(content)
        if content.startswith("<!--"):
            pass
        elif match is None or not match.group(2):
            out.append(_text(child, content))
        elif is_text(match.group(2), match.group(3), _last_char(out), bool(match.group(1))):
            out.append(_text(child, content))
        elif match.group(1) and match.group(2).lower() in _VOID:
            pass  # </img>: a browser ignores it
        elif match.group(2).lower() in EMBED_TAGS and not match.group(1):
            tag = match.group(2).lower()
            done = replace_embed(tag, _attributes(match.group(3)))
            _record(done, line, changes)
            out.extend(_link_tokens(done, child))
            if tag not in VOID_EMBEDS and not match.group(4):
                skipping = tag
        else:
            out.append(child)
        line += content.count("\n")
    return out


def _last_char(tokens: list[Token]) -> str:
    last = tokens[-1] if tokens else None
    return last.content[-1:] if last is not None and last.type == "text" else ""


def _text(token: Token, content: str) -> Token:
    text = Token("text", "", 0)
    text.content = content
    text.level = token.level
    return text


def _link_tokens(done: Replacement, token: Token) -> list[Token]:
    """The replacement of an inline embed, as tokens that both parts understand."""
    if not done.url:
        return []
    pieces: list[Token] = []
    if done.picture:
        picture = Token("html_inline", "", 0)
        picture.content = done.picture + "<br>"
        pieces.append(picture)
    link_open = Token("link_open", "a", 1)
    link_open.attrs = {"href": done.url}
    link_close = Token("link_close", "a", -1)
    return [*pieces, link_open, _text(token, done.label), link_close]


def balanced_end(tokens: list[Token], i: int, end: int) -> int:
    """Extend the top-level block `i`..`end` whose raw HTML opens tags to where they close.

    Markdown ends an HTML block at a blank line, so ``<div>`` … Markdown …
    ``</div>`` arrives as three blocks; they must stay one, or the email's
    layout around them breaks. As in a browser, an end tag that closes
    nothing is ignored; a ``#`` or ``##`` heading ends the search, and what
    is still open there is closed by the HTML5 parser at the end of the block.
    """
    still_open: list[str] = []
    j = i
    while True:
        for token in tokens[j:end + 1]:
            if token.type == "html_block" and token.level == 0:
                _track(token.content, still_open)
        if not still_open or end + 1 >= len(tokens):
            return end
        nxt = tokens[end + 1]
        if nxt.type == "heading_open" and nxt.tag in ("h1", "h2"):
            return end
        j = end + 1
        end = closing(tokens, j)


def _track(html: str, still_open: list[str]) -> None:
    for match in _PIECE.finditer(html):
        closing, name, _, selfclosed = match.groups()
        if not name:
            continue
        tag = name.lower()
        if tag in _VOID or tag in _OPTIONAL_END or tag not in ELEMENTS:
            continue
        if not closing and not selfclosed:
            still_open.append(tag)
        elif closing and tag in still_open:
            # The end tag closes its element and everything opened inside it.
            del still_open[len(still_open) - 1 - still_open[::-1].index(tag):]


_parsers = threading.local()


def well_formed(html: str) -> str:
    """`html` as an HTML5 parser builds it, written back with every element closed.

    The parse is a fragment parse inside a ``<div>`` of one reused document
    per thread: a new document per piece costs several times more.
    """
    box = getattr(_parsers, "box", None)
    if box is None:
        _parsers.document = LexborHTMLParser("<div></div>")
        box = _parsers.box = _parsers.document.css_first("div")
    box.inner_html = html
    if _RAW_TEXT.search(html):
        _tame_raw_text(box, _parsers.document)
    for node in box.css("[width], [height]"):
        for key in ("width", "height"):
            value = node.attributes.get(key)
            if value is not None:
                _fix_dimension(node, key, value)
    out = box.inner_html
    box.inner_html = ""
    if "<!--" in out:
        out = _COMMENT.sub("", out)
    out = _EMPTY_FORMATTING.sub(r"\2", out)
    # Inside <svg> or <math> a <link> gets an end tag; the MJML renderer knows it as void.
    return _VOID_END.sub("", out) if "</" in out else out


# Elements whose content is written back unescaped. The MJML renderer reads
# a "<" in them as markup, so each becomes what a mail client shows of it.
_RAW_TEXT = re.compile(r"<(?:style|xmp|plaintext|noembed|noframes|noscript|template)\b", re.I)


def _tame_raw_text(box, document) -> None:
    # What a browser hides: a template, and the fallbacks of embeds and frames.
    for node in box.css("noembed, noframes, template"):
        node.decompose()
    for node in box.css("xmp, plaintext"):
        pre = document.create_node("pre")
        pre.insert_child(node.text())
        node.replace_with(pre)
    for node in box.css("style"):
        text = node.text()
        if "<" in text:
            style = document.create_node("style")
            style.insert_child(text.replace("<", "\\3c "))  # CSS's own escape for "<"
            node.replace_with(style)
    for node in box.css("noscript"):
        node.unwrap()  # mail clients run no scripts, so they show it


def _fix_dimension(node, key: str, value: str) -> None:
    """``width=230/`` means 230 to a browser; Outlook reads only the number."""
    found = _DIMENSION.match(value)
    if found is None:
        del node.attrs[key]
    elif found.group(1) != value:
        node.attrs[key] = found.group(1)


def has_raw_html(tokens: list[Token]) -> bool:
    """Whether any of `tokens` (or their inline children) is author-written HTML."""
    for token in tokens:
        if token.type in ("html_block", "html_inline"):
            return True
        if token.children and any(c.type == "html_inline" for c in token.children):
            return True
    return False


def raw_references(html: str) -> tuple[list[str], list[tuple[str, str | None]]]:
    """The link targets and the images (src, alt or None) in a piece of raw HTML."""
    finder = _References()
    finder.feed(html)
    return finder.links, finder.images


class _References(HTMLParser):
    """Links and images in a piece of raw HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href") is not None:
            self.links.append(values["href"] or "")
        elif tag == "img":
            alt = values.get("alt", None) if "alt" in values else None
            self.images.append((values.get("src") or "", alt))
