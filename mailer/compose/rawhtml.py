"""Raw HTML inside an issue's Markdown: whether its tags balance, and what it links to.

Authors paste HTML as browsers accept it — a ``<div>`` wrapping Markdown,
an embed, an ``<img>`` with or without alt text — and Markdown sees only
blocks of it, each ending at a blank line. The issue's parser asks here
whether what those blocks open they close again, so that the email's layout
around them holds, and which links and images they hold, so that lint sees
every one the reader will, not only those written in Markdown.
"""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from markdown_it.token import Token

from ..errors import IssueError
from .plaintext import closing

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
         "source", "track", "wbr"}
# Tags whose end tag HTML lets authors leave out.
_OPTIONAL_END = {"p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot",
                 "option", "colgroup", "caption", "html", "head", "body"}


def balanced_end(tokens: list[Token], i: int, end: int, path: Path, line: Callable[[Token], int]) -> int:
    """Extend the top-level block `i`..`end` whose raw HTML opens tags to where they close again.

    Markdown ends an HTML block at a blank line, so ``<div>`` … Markdown …
    ``</div>`` arrives as three blocks; they must stay one, or the email's
    layout around them breaks. A ``#`` or ``##`` heading ends the search:
    a tag still open there is an error at the line that opened it.
    """
    depth = _HTMLBalance(path)
    j = i
    while True:
        depth.add(tokens[j:end + 1], line(tokens[j]))
        if depth.balanced or end + 1 >= len(tokens):
            break
        nxt = tokens[end + 1]
        if nxt.type == "heading_open" and nxt.tag in ("h1", "h2"):
            break
        j = end + 1
        end = closing(tokens, j)
    depth.check()
    return end


class _HTMLBalance(HTMLParser):
    """Tracks raw HTML tags opened and closed across consecutive blocks."""

    def __init__(self, path: Path) -> None:
        super().__init__(convert_charrefs=True)
        self.path = path
        self.open: list[tuple[str, int]] = []
        self.first_line = 1

    @property
    def balanced(self) -> bool:
        return not self.open

    def add(self, tokens: list[Token], line: int) -> None:
        """Scan the raw HTML in one top-level block starting on `line`."""
        for token in tokens:
            if token.type == "html_block":
                self._scan(token.content, line)
            for child in token.children or []:
                if child.type == "html_inline":
                    self._scan(child.content, line)

    def _scan(self, html: str, line: int) -> None:
        self.reset()
        self.first_line = line
        self.feed(html)
        self.close()

    def _line(self) -> int:
        return self.first_line + self.getpos()[0] - 1

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in _VOID and tag not in _OPTIONAL_END:
            self.open.append((tag, self._line()))

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        """A self-closed tag opens nothing."""

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or tag in _OPTIONAL_END:
            return
        if all(opened != tag for opened, _ in self.open):
            raise IssueError(
                f"raw HTML closes <{tag}> that was never opened", path=self.path,
                line=self._line(), hint=f"remove the stray </{tag}>",
            )
        opened, line = self.open.pop()
        if opened != tag:
            raise IssueError(
                f"raw HTML <{opened}> is not closed before </{tag}>", path=self.path,
                line=line, hint=f"add </{opened}>",
            )

    def check(self) -> None:
        if self.open:
            tag, line = self.open[0]
            raise IssueError(
                f"raw HTML <{tag}> is never closed", path=self.path, line=line,
                hint=f"add </{tag}> before the next section",
            )


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
