"""An issue file (Markdown, with metadata as `metadata` reads it) to an `Issue`.

The format is the one weekly digests are written in: an H1 title, ``##``
sections, and numbered items::

    **1.** **Title**            (or  **1.** [Title](https://…))

    https://example.com/article

    **摘要:** One paragraph of summary.    (or  **Summary:** …)

Everything else — an intro paragraph, an image, a quote, a list, raw HTML —
is kept as a `Block` in its place, with its HTML and its plain text, so that
nothing the author wrote is lost on the way to either part. Parsing is pure:
the same text always gives the same `Issue`.

The title is the metadata's, else an H1 that opens the document, else the
file name made readable; sections start at the highest heading level used
besides the title, so ``#`` sections (Pelican's) work like ``##`` ones.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from markdown_it.token import Token
from markupsafe import Markup

from ..errors import IssueError, os_reason
from .changes import Change, drop_control_characters
from .markdown import markdown_parser
from .metadata import preheader_of, read_metadata, title_from_name
from .plaintext import blocks_text, closing, inline_text
from .rawhtml import (
    balanced_end,
    clean_tokens,
    has_raw_html,
    raw_references,
    well_formed,
)

_md = markdown_parser()

_NUMBER = re.compile(r"^\s*(\d{1,3})\s*[.、)]?\s*$")
_SUMMARY_LABEL = re.compile(r"^\s*(摘要|简介|概要|导读|summary|abstract|tl;dr)\s*[:：]?\s*$", re.I)
_PLAIN_SUMMARY = re.compile(r"^\s*(摘要|简介|概要|导读|summary|abstract|tl;dr)\s*[:：]\s*", re.I)
_SECTION_LEVEL = 2
_COMMENT = re.compile(r"^\s*(?:<!--.*?-->\s*)+$", re.S)
_BARE_URL = re.compile(r"^\s*<?((?:https?)://[^\s<>]+?)>?\s*$")


@dataclass(frozen=True)
class Fragment:
    """A piece of content in both forms: safe HTML, and plain logical lines."""

    html: Markup
    text: str


@dataclass(frozen=True)
class Block:
    """Content that is not an item, kept in its place as rich text."""

    content: Fragment
    line: int
    kind: str = "block"


@dataclass(frozen=True)
class Item:
    """One numbered entry of a digest: title, link and summary."""

    number: str
    title: Fragment
    url: str
    summary: Fragment | None
    summary_label: str
    body: tuple[Block, ...]
    line: int
    end: int
    kind: str = "item"

    def covers(self, line: int) -> bool:
        """Whether source `line` is one of the item's own lines (title, URL, summary)."""
        return self.line <= line <= self.end


Entry = Union[Item, Block]


@dataclass(frozen=True)
class Section:
    """A ``##`` heading and what follows it up to the next one."""

    title: Fragment
    entries: tuple[Entry, ...]
    line: int

    @property
    def items(self) -> list[Item]:
        return [e for e in self.entries if isinstance(e, Item)]


@dataclass(frozen=True)
class Link:
    """A link target found in the issue, with the line it is on."""

    url: str
    line: int


@dataclass(frozen=True)
class Image:
    """An image in the issue; `alt` is None when the attribute is absent."""

    src: str
    alt: str | None
    line: int


@dataclass(frozen=True)
class Issue:
    """A parsed issue: everything the templates need, nothing rendered yet."""

    path: Path
    title: Fragment
    subject: str
    preheader: str
    date: str
    meta: dict[str, Any]
    intro: tuple[Entry, ...]
    sections: tuple[Section, ...]
    links: tuple[Link, ...] = field(default=())
    images: tuple[Image, ...] = field(default=())
    # Where the title came from: "metadata", "heading" or "file name".
    title_from: str = "heading"
    # What composing dropped or replaced (control characters, embeds), for lint.
    changes: tuple[Change, ...] = field(default=())

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def items(self) -> list[Item]:
        """Every item, in order."""
        found = [e for e in self.intro if isinstance(e, Item)]
        for section in self.sections:
            found.extend(section.items)
        return found

    @property
    def first_summary(self) -> str:
        for item in self.items:
            if item.summary and item.summary.text.strip():
                return item.summary.text
        return ""


def read_issue(path: Path) -> Issue:
    """Read and parse the issue file at `path`."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise IssueError("is a folder, not an issue file", path=path) from None
    except OSError as exc:
        raise IssueError(f"cannot read: {os_reason(exc)}", path=path) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise IssueError(
            f"not UTF-8 (byte 0x{data[exc.start]:02x})", path=path, line=line,
            hint="save the file as UTF-8",
        ) from None
    return parse_issue(text, path)


def parse_issue(text: str, path: Path) -> Issue:
    """Parse issue source `text`; `path` is used for messages and the stem."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, changes = drop_control_characters(text)
    found = read_metadata(text, path)
    return _Parser(path, found.offset, changes).parse(found.body, found.meta)


def _format_date(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return "" if value is None else str(value)


class _Parser:
    """One pass over the top-level Markdown blocks, building sections and items."""

    def __init__(self, path: Path, offset: int, changes: list[Change]) -> None:
        self.path = path
        self.changes = changes
        self.offset = offset
        self.tokens: list[Token] = []
        # The tokens of the H1 that is the title, which the body leaves out.
        self.title_span: tuple[int, int] | None = None
        self.intro: list[Entry] = []
        self.sections: list[Section] = []
        self.section: tuple[Fragment, int] | None = None
        self.entries: list[Entry] = []
        self.item: dict[str, Any] | None = None
        self.links: list[Link] = []
        self.images: list[Image] = []

    def line(self, token: Token) -> int:
        return (token.map[0] if token.map else 0) + self.offset + 1

    def parse(self, body: str, meta: dict[str, Any]) -> Issue:
        self.tokens = _md.parse(body)
        self.changes += clean_tokens(self.tokens, _md, self.line)
        self._collect_references()
        title, title_from = self._title(meta)
        self._shift_headings(title_from)
        i = 0
        while i < len(self.tokens):
            i = self._top_level(i)
        self._close_section()
        return Issue(
            path=self.path,
            title=title,
            subject=meta.get("subject") or " ".join(title.text.split()),
            preheader=preheader_of(meta),
            date=_format_date(meta.get("date")),
            meta=meta,
            intro=tuple(self.intro),
            sections=tuple(self.sections),
            links=tuple(self.links),
            images=tuple(self.images),
            title_from=title_from,
            changes=tuple(sorted(self.changes, key=lambda c: c.line)),
        )

    # -- the title -------------------------------------------------------------

    def _title(self, meta: dict[str, Any]) -> tuple[Fragment, str]:
        """The title and where it came from: the metadata, the leading H1, or the file name.

        Only an H1 that opens the document is its title; a ``#`` further down
        is a section, kept where it stands.
        """
        first = next((n for n, t in enumerate(self.tokens)
                      if t.nesting >= 0 and not _comment_only(t)), None)
        heading = None
        if first is not None and self.tokens[first].type == "heading_open" and self.tokens[first].tag == "h1":
            heading = self._inline_fragment(self.tokens[first + 1].children or [])
        written = str(meta.get("title") or "").strip()
        if written:
            # A leading H1 saying the title again is the same title, said twice.
            if heading is not None and heading.text == written:
                self.title_span = (first, closing(self.tokens, first))
            return Fragment(Markup.escape(written), written), "metadata"
        if heading is not None and heading.text.strip():
            self.title_span = (first, closing(self.tokens, first))
            return heading, "heading"
        name = title_from_name(self.path.stem)
        return Fragment(Markup.escape(name), name), "file name"

    def _shift_headings(self, title_from: str) -> None:
        """Move every heading so that the highest level present starts sections.

        A Pelican issue or one titled by its file name uses ``#`` for its
        sections, where a digest with an H1 title uses ``##``; in such a
        digest a stray ``#`` further down stays a heading in its section
        rather than turning every ``##`` into a sub-heading.
        """
        title = range(self.title_span[0], self.title_span[1] + 1) if self.title_span else range(0)
        headings = [t for n, t in enumerate(self.tokens)
                    if t.type in ("heading_open", "heading_close") and n not in title]
        levels = {int(t.tag[1]) for t in headings}
        if not levels or (title_from == "heading" and _SECTION_LEVEL in levels):
            return
        shift = _SECTION_LEVEL - min(levels)
        for token in headings:
            token.tag = f"h{max(1, min(6, int(token.tag[1]) + shift))}"

    # -- top level -----------------------------------------------------------

    def _top_level(self, i: int) -> int:
        token = self.tokens[i]
        end = closing(self.tokens, i)
        if self.title_span and i == self.title_span[0]:
            return self.title_span[1] + 1
        if token.type == "heading_open" and token.tag == f"h{_SECTION_LEVEL}":
            self._close_section()
            self.section = (self._inline_fragment(self.tokens[i + 1].children or []), self.line(token))
            return end + 1
        if token.type == "heading_open":
            self._close_item()
            self._add(Block(self._fragment(i, end + 1), self.line(token)))
            return end + 1
        if token.type == "paragraph_open" and self._paragraph(i):
            return end + 1
        end = balanced_end(self.tokens, i, end)
        fragment = self._fragment(i, end + 1)
        # Raw HTML a browser shows as nothing (a stray </table>) makes no block.
        if fragment.html or fragment.text:
            self._add(Block(fragment, self.line(token)))
        return end + 1

    def _paragraph(self, i: int) -> bool:
        """Take the paragraph at `i` as part of an item, if it is one."""
        children = self.tokens[i + 1].children or []
        line = self.line(self.tokens[i])
        header = _item_header(children)
        if header is not None:
            number, title_children, url, rest = header
            self._close_item()
            self.item = {"number": number, "title": self._inline_fragment(title_children),
                         "url": url, "summary": None, "label": "", "body": [], "line": line, "end": line}
            for piece in rest:
                if not self._item_part(piece):
                    self.item["body"].append(Block(self._inline_fragment(piece), line))
            return True
        if self.item is not None and not self.item["body"] and self._item_part(children):
            self.item["end"] = line
            return True
        return False

    def _item_part(self, children: list[Token]) -> bool:
        """Take `children` as the open item's URL line or summary, if they are one."""
        assert self.item is not None
        content = "".join(t.content for t in children if t.type in ("text", "link_open")).strip()
        text = "".join(t.content for t in children if t.type == "text")
        bare = _BARE_URL.match(text) if _only_link(children) else None
        if bare and not self.item["summary"]:
            url = _md.normalizeLink(bare.group(1))
            # A URL line repeating the title's link is the same link, said twice.
            if self.item["url"] in ("", url):
                self.item["url"] = url
                return True
        if self.item["summary"] is None and content:
            split = _summary(children)
            if split is not None:
                self.item["label"], summary_children = split
                self.item["summary"] = self._inline_fragment(summary_children)
                return True
        return False

    def _add(self, block: Block) -> None:
        if self.item is not None:
            self.item["body"].append(block)
        else:
            self.entries.append(block)

    def _close_item(self) -> None:
        if self.item is None:
            return
        item = self.item
        self.item = None
        self.entries.append(Item(
            number=item["number"], title=item["title"], url=item["url"] or "",
            summary=item["summary"], summary_label=item["label"],
            body=tuple(item["body"]), line=item["line"], end=item["end"],
        ))

    def _close_section(self) -> None:
        self._close_item()
        if self.section is None:
            self.intro.extend(self.entries)
        else:
            title, line = self.section
            self.sections.append(Section(title, tuple(self.entries), line))
        self.entries = []

    # -- rendering pieces ----------------------------------------------------

    def _fragment(self, start: int, stop: int) -> Fragment:
        tokens = self.tokens[start:stop]
        html = _md.renderer.render(tokens, _md.options, {})
        if has_raw_html(tokens):
            html = well_formed(html)
        return Fragment(Markup(html.strip()), blocks_text(tokens))

    def _inline_fragment(self, children: list[Token]) -> Fragment:
        html = _md.renderer.renderInline(children, _md.options, {})
        if has_raw_html(children):
            html = well_formed(html)
        return Fragment(Markup(html.strip()), inline_text(children).strip())

    def _collect_references(self) -> None:
        for token in self.tokens:
            line = self.line(token)
            if token.type == "html_block":
                self._html_references(token.content, line)
            for child in token.children or []:
                if child.type == "link_open":
                    self.links.append(Link(str(child.attrs.get("href", "")), line))
                elif child.type == "image":
                    self.images.append(Image(str(child.attrs.get("src", "")), child.content, line))
                elif child.type == "html_inline":
                    self._html_references(child.content, line)

    def _html_references(self, html: str, line: int) -> None:
        hrefs, images = raw_references(html)
        self.links.extend(Link(href, line) for href in hrefs)
        self.images.extend(Image(src, alt, line) for src, alt in images)


def _comment_only(token: Token) -> bool:
    """An HTML block of comments only: no reader sees it, so it opens nothing."""
    return token.type == "html_block" and bool(_COMMENT.match(token.content))


def _significant(children: list[Token]) -> list[Token]:
    return [t for t in children if not (t.type == "text" and not t.content.strip())]


def _only_link(children: list[Token]) -> bool:
    kinds = [t.type for t in _significant(children)]
    return kinds in (["link_open", "text", "link_close"], ["text"])


def _split_lines(children: list[Token]) -> list[list[Token]]:
    lines: list[list[Token]] = [[]]
    for child in children:
        if child.type in ("softbreak", "hardbreak"):
            lines.append([])
        else:
            lines[-1].append(child)
    return [line for line in lines if _significant(line)]


def _item_header(children: list[Token]):
    """(number, title tokens, url, further lines) if this paragraph opens an item."""
    lines = _split_lines(children)
    if not lines:
        return None
    first = lines[0]
    sig = _significant(first)
    if len(sig) < 4 or [t.type for t in sig[:3]] != ["strong_open", "text", "strong_close"]:
        return None
    number = _NUMBER.match(sig[1].content)
    if not number:
        return None
    start = first.index(sig[2]) + 1
    title = first[start:]
    if title and title[0].type == "text":
        title = [_with_content(title[0], title[0].content.lstrip()), *title[1:]]
    title, url = _unwrap_title(title)
    if not _significant(title):
        return None
    return number.group(1), title, url, lines[1:]


def _with_content(token: Token, content: str) -> Token:
    """A copy of `token` with other text; the parsed tokens stay untouched."""
    return dataclasses.replace(token, content=content)


def _unwrap_title(title: list[Token]) -> tuple[list[Token], str]:
    """Peel a bold wrapper and a link wrapper off an item title; return its link."""
    url = ""
    while True:
        sig = _significant(title)
        if len(sig) < 3:
            return title, url
        first, last = sig[0], sig[-1]
        pair = (first.type, last.type)
        if pair not in (("strong_open", "strong_close"), ("link_open", "link_close")):
            return title, url
        if _closing_index(sig) != len(sig) - 1:
            return title, url
        if first.type == "link_open":
            url = str(first.attrs.get("href", ""))
        title = sig[1:-1]


def _closing_index(tokens: list[Token]) -> int:
    depth = 0
    for n, tok in enumerate(tokens):
        depth += tok.nesting
        if depth == 0:
            return n
    return -1


def _summary(children: list[Token]) -> tuple[str, list[Token]] | None:
    """(label, summary tokens) if the paragraph is a labelled summary."""
    sig = _significant(children)
    if len(sig) >= 3 and [t.type for t in sig[:3]] == ["strong_open", "text", "strong_close"]:
        label = _SUMMARY_LABEL.match(sig[1].content)
        if label:
            rest = children[children.index(sig[2]) + 1:]
            if rest and rest[0].type == "text":
                rest = [_with_content(rest[0], re.sub(r"^\s*[:：]?\s*", "", rest[0].content)), *rest[1:]]
            return sig[1].content.strip().rstrip(":：").strip(), rest
    if sig and sig[0].type == "text":
        label = _PLAIN_SUMMARY.match(sig[0].content)
        if label:
            first = _with_content(sig[0], sig[0].content[label.end():])
            return label.group(1), [first, *children[children.index(sig[0]) + 1:]]
    return None
