"""The plain-text part: Markdown tokens to text, and wrapping that suits CJK.

A plain-text part is read in terminals and in mail apps that show a fixed
column count, so it is wrapped — but never inside a URL (a broken URL is a
dead link), and with each CJK character counted as two columns, since that
is what it occupies on screen. CJK text has no spaces, so a line may break
between any two CJK characters, except before closing punctuation or after
opening punctuation (the kinsoku rule every Chinese and Japanese typesetter
follows).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from html.parser import HTMLParser

from markdown_it.token import Token

# Never broken: URLs (bare or in angle brackets) and per-recipient placeholders.
_ATOM = re.compile(r"<(?:https?|mailto):[^>\s]*>|(?:https?|mailto):\S+|%%[A-Z_]+%%")
# Characters that must not begin a line, and ones that must not end one.
_NO_START = set("，。、；：！？）」』》〉】〕〗…‥・ー%,.;:!?)]}’”")
_NO_END = set("（「『《〈【〔〖([{‘“")
# A list marker, quote marker or code indent that later lines of the same
# paragraph hang under.
_PREFIX = re.compile(r"^( *)((?:> ?)*)((?:[-*+•]|\d+[.)]) )?")
_CODE_INDENT = "    "


@functools.lru_cache(maxsize=4096)
def char_width(char: str) -> int:
    """Columns a character takes in a terminal: 2 for wide CJK, 0 for combining."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def text_width(text: str) -> int:
    """Columns `text` takes on screen."""
    if text.isascii():
        return len(text)
    return sum(map(char_width, text))


def _is_wide(char: str) -> bool:
    return char_width(char) == 2


# The scripts written without spaces, where a line may break between any two
# characters: CJK ideographs, kana, hangul, and full-width forms.
_BREAKABLE = (
    "\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
    "\U00020000-\U0003fffd"
)
_PIECE = re.compile(
    rf"(\s*)(?:({_ATOM.pattern})|([{_BREAKABLE}])|([^\s{_BREAKABLE}]+))"
)


def _tokens(text: str) -> list[tuple[str, bool, int]]:
    """Unbreakable pieces, each with whether a space preceded it and its width."""
    pieces: list[tuple[str, bool, int]] = []
    for space, atom, wide, run in _PIECE.findall(text):
        piece = atom or wide or run
        # Every character of the breakable scripts is wide: two columns.
        size = 2 if wide else text_width(piece)
        if not space and pieces and (piece[0] in _NO_START or pieces[-1][0][-1] in _NO_END):
            last, last_space, last_size = pieces[-1]
            pieces[-1] = (last + piece, last_space, last_size + size)
        else:
            pieces.append((piece, bool(space), size))
    return pieces


def wrap_line(line: str, width: int) -> list[str]:
    """Wrap one logical line; list items and quotes hang under their marker."""
    if line.startswith(_CODE_INDENT) or not line.strip():
        return [line.rstrip()]
    match = _PREFIX.match(line)
    first_prefix = match.group(0)
    indent, quote, marker = match.group(1), match.group(2), match.group(3) or ""
    next_prefix = indent + quote + " " * len(marker)
    hang = text_width(next_prefix)
    lines: list[str] = []
    current = [first_prefix]
    used = text_width(first_prefix)
    empty = True
    for piece, space, size in _tokens(line[len(first_prefix):]):
        gap = space and not empty
        if not empty and used + gap + size > width:
            lines.append("".join(current).rstrip())
            current, used, gap = [next_prefix], hang, False
        if gap:
            current.append(" ")
        current.append(piece)
        used += gap + size
        empty = False
    lines.append("".join(current).rstrip())
    return lines


def wrap(text: str, width: int = 72, indent: str = "") -> str:
    """Wrap every line of `text` to `width` columns, each prefixed by `indent`."""
    out: list[str] = []
    for line in str(text).split("\n"):
        for wrapped in wrap_line(line, width - text_width(indent)):
            out.append((indent + wrapped).rstrip() if wrapped else "")
    return "\n".join(out)


# --- Markdown tokens to logical lines -------------------------------------


def _joins_without_space(left: str, right: str) -> bool:
    """A soft line break between two CJK characters is no space at all."""
    return bool(left) and bool(right) and _is_wide(left[-1]) and _is_wide(right[0])


def inline_text(children: list[Token]) -> str:
    """Plain text of inline tokens: markup dropped, link targets kept as <url>."""
    parts: list[str] = []
    links: list[tuple[str, int]] = []
    for tok in children:
        kind = tok.type
        if kind == "text" or kind == "code_inline":
            parts.append(tok.content)
        elif kind == "softbreak":
            parts.append("\x00")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "link_open":
            links.append((str(tok.attrs.get("href", "")), len(parts)))
        elif kind == "link_close" and links:
            href, start = links.pop()
            parts.append(_link_suffix("".join(parts[start:]), href))
        elif kind == "image":
            parts.append(_image_text(tok.content, str(tok.attrs.get("src", ""))))
        elif kind == "html_inline":
            parts.append(_inline_html_text(tok.content, links, parts))
    text = "".join(parts)
    # Resolve soft breaks now that both neighbours are known.
    pieces = text.split("\x00")
    joined = pieces[0]
    for piece in pieces[1:]:
        joined += ("" if _joins_without_space(joined, piece) else " ") + piece
    return joined


def _link_suffix(label: str, href: str) -> str:
    label = label.strip()
    # A bare www. link goes to http://www…: the text already says where.
    if not href or href in (label, f"mailto:{label}", f"http://{label}") or href.startswith("#"):
        return ""
    return f" <{href}>" if label else f"<{href}>"


def _image_text(alt: str, src: str) -> str:
    return f"[{alt}] <{src}>" if alt else f"<{src}>"


_THUMBNAIL = '<a class="thumbnail"'
_TAG = re.compile(r"<\s*(/?)\s*([a-zA-Z][a-zA-Z0-9]*)([^>]*)>")
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_SRC = re.compile(r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


def _attr(pattern: re.Pattern[str], attrs: str) -> str:
    match = pattern.search(attrs)
    return next((g for g in match.groups() if g is not None), "") if match else ""


def _inline_html_text(tag: str, links: list[tuple[str, int]], parts: list[str]) -> str:
    match = _TAG.match(tag.strip())
    # An embed's thumbnail: the link that follows it says the same.
    if not match or _THUMBNAIL in tag:
        return ""
    closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
    if name == "br":
        return "\n"
    if name == "img":
        return _image_text(_attr(_ALT, attrs), _attr(_SRC, attrs))
    if name == "a" and not closing:
        links.append((_attr(_HREF, attrs), len(parts) + 1))
    elif name == "a" and closing and links:
        href, start = links.pop()
        return _link_suffix("".join(parts[start:]), href)
    return ""


class _HTMLText(HTMLParser):
    """Text of a raw HTML block, keeping line structure, link and image targets."""

    _BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6",
               "table", "blockquote", "section", "ul", "ol", "hr", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.links: list[tuple[str, int]] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in ("style", "script") or (tag == "a" and values.get("class") == "thumbnail"):
            self.skip += 1
        elif self.skip:
            return
        elif tag == "img":
            self.out.append(_image_text(values.get("alt", ""), values.get("src", "")))
        elif tag == "a":
            self.links.append((values.get("href", ""), len(self.out)))
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script") or (tag == "a" and self.skip):
            self.skip = max(0, self.skip - 1)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            self.out.append(_link_suffix("".join(self.out[start:]), href))
        elif tag in self._BLOCKS:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(" ".join(data.split(" ")).replace("\n", " "))


def html_text(html: str) -> str:
    """Readable text of author-written HTML."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.out).split("\n")]
    return "\n".join(line for line in lines if line)


def blocks_text(tokens: list[Token]) -> str:
    """Logical lines of a run of block tokens, blocks separated by a blank line."""
    blocks: list[str] = []
    i = 0
    while i < len(tokens):
        text, i = _block(tokens, i)
        if text.strip():
            blocks.append(text)
    return "\n\n".join(blocks)


def closing(tokens: list[Token], i: int) -> int:
    """Index of the token closing the block opened at `i` (the last token if none does)."""
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _prefix_lines(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join((first if n == 0 else rest) + line if line else line
                     for n, line in enumerate(lines))


def _block(tokens: list[Token], i: int) -> tuple[str, int]:
    """Text of the block starting at `i`, and the index after it."""
    tok = tokens[i]
    kind = tok.type
    if kind in ("paragraph_open", "heading_open"):
        end = closing(tokens, i)
        inner = tokens[i + 1]
        return (inline_text(inner.children or []) if inner.type == "inline" else ""), end + 1
    if kind in ("fence", "code_block"):
        code = tok.content.rstrip("\n")
        return "\n".join(_CODE_INDENT + line if line else "" for line in code.split("\n")), i + 1
    if kind == "html_block":
        return html_text(tok.content), i + 1
    if kind == "hr":
        return "-" * 20, i + 1
    if kind == "inline":
        return inline_text(tok.children or []), i + 1
    if kind in ("bullet_list_open", "ordered_list_open"):
        end = closing(tokens, i)
        number = int(tok.attrs.get("start", 1) or 1)
        items: list[str] = []
        j = i + 1
        while j < end:
            item_end = closing(tokens, j)
            marker = f"{number}. " if kind == "ordered_list_open" else "- "
            # List items stay compact: their paragraphs join without blank lines.
            body = blocks_text(tokens[j + 1:item_end]).replace("\n\n", "\n")
            items.append(_prefix_lines(body, marker, " " * len(marker)))
            number += 1
            j = item_end + 1
        return "\n".join(items), end + 1
    if kind == "blockquote_open":
        end = closing(tokens, i)
        body = blocks_text(tokens[i + 1:end])
        return "\n".join("> " + line if line else ">" for line in body.split("\n")), end + 1
    if kind == "table_open":
        end = closing(tokens, i)
        rows: list[str] = []
        cells: list[str] = []
        for t in tokens[i:end]:
            if t.type == "inline":
                cells.append(inline_text(t.children or []))
            elif t.type == "tr_close":
                rows.append(" | ".join(cells))
                cells = []
        return "\n".join(rows), end + 1
    if tok.nesting == 1:
        end = closing(tokens, i)
        return blocks_text(tokens[i + 1:end]), end + 1
    return "", i + 1

