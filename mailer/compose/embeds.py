"""Embedded players and forms, replaced by what an email can show.

No mail client plays an ``<iframe>``, ``<video>`` or ``<object>``, runs a
``<script>`` or submits a ``<form>``; most drop them, and the fixed width
they carry (``width=600``) makes the whole email wider than a phone. What a
reader can use instead is a link to the page the embed shows, named by the
embed's title (else the site's host), and for a video a thumbnail to click,
where the video's page and picture follow from the embed's URL alone:
nothing is fetched while composing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from urllib.parse import parse_qs, urlsplit

# Elements whose content is the embed itself (a player's fallback text,
# <param>s, a form's fields): all of it goes with the element.
EMBED_TAGS = frozenset({"iframe", "video", "audio", "embed", "object", "script", "form"})
VOID_EMBEDS = frozenset({"embed"})

_YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "youtube-nocookie.com",
                  "www.youtube-nocookie.com"}
_YOUTUBE_ID = re.compile(r"^/(?:embed|v)/([A-Za-z0-9_-]{6,})")
_BVID = re.compile(r"^BV[0-9A-Za-z]{8,}$")
_SOURCE_SRC = re.compile(r"""<source\b[^>]*?\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


@dataclass(frozen=True)
class Replacement:
    """What an embed became: a link to `url` named `label`, after an optional thumbnail.

    `picture` is a whole ``<a class="thumbnail">`` around the image, which
    the text part leaves out: the link after it says the same.
    """

    tag: str
    url: str = ""
    label: str = ""
    picture: str = ""

    @property
    def html(self) -> str:
        """The block that takes the embed's place; nothing for an embed that links nowhere."""
        if not self.url:
            return ""
        picture = f"{self.picture}<br>" if self.picture else ""
        return f'<p class="embed">{picture}<a href="{escape(self.url)}">{escape(self.label)}</a></p>'


def replace_embed(tag: str, attrs: dict[str, str], inner: str = "") -> Replacement:
    """The link (and thumbnail) that stands for the embed `tag` with `attrs`.

    `inner` is the element's raw content, where a ``<video>`` keeps its
    ``<source>``. An embed that points nowhere (an inline script) becomes
    nothing, and `url` is empty.
    """
    source = _source(tag, attrs, inner)
    page, thumbnail = _page(source)
    # A script's own URL is code, not a page; only a known widget has one.
    if not page or (tag == "script" and page == source):
        return Replacement(tag)
    host = urlsplit(page).hostname or page
    title = " ".join((attrs.get("title") or attrs.get("aria-label") or "").split())
    label = title or host.removeprefix("www.")
    thumbnail = thumbnail or (attrs.get("poster", "") if tag == "video" else "")
    picture = ""
    if thumbnail:
        picture = (f'<a class="thumbnail" href="{escape(page)}"><img src="{escape(_absolute(thumbnail))}" '
                   f'alt="{escape(label)}" width="480"></a>')
    return Replacement(tag, page, label, picture)


def _source(tag: str, attrs: dict[str, str], inner: str) -> str:
    """The URL the embed shows: its src, data or form action, or a video's first <source>."""
    key = {"object": "data", "form": "action"}.get(tag, "src")
    url = attrs.get(key, "").strip()
    if not url and tag in ("video", "audio"):
        found = _SOURCE_SRC.search(inner)
        url = next((g for g in found.groups() if g), "") if found else ""
    return _absolute(url) if url else ""


def _absolute(url: str) -> str:
    """Protocol-relative embed URLs (``//player.bilibili.com/…``) are https."""
    return "https:" + url if url.startswith("//") else url


def _page(url: str) -> tuple[str, str]:
    """The page a reader should open for embed URL `url`, and its thumbnail if one follows."""
    if not url or urlsplit(url).scheme not in ("http", "https"):
        return "", ""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    query = parse_qs(parts.query)
    if host in _YOUTUBE_HOSTS:
        found = _YOUTUBE_ID.match(parts.path)
        if found:
            video = found.group(1)
            start = (query.get("start") or [""])[0]
            suffix = f"&t={start}s" if start.isdigit() else ""
            return (f"https://www.youtube.com/watch?v={video}{suffix}",
                    f"https://i.ytimg.com/vi/{video}/hqdefault.jpg")
    if host == "player.bilibili.com":
        bvid = (query.get("bvid") or [""])[0]
        aid = (query.get("aid") or [""])[0]
        page = (query.get("p") or [""])[0]
        suffix = f"?p={page}" if page.isdigit() and page != "1" else ""
        if _BVID.match(bvid):
            return f"https://www.bilibili.com/video/{bvid}{suffix}", ""
        if aid.isdigit():
            return f"https://www.bilibili.com/video/av{aid}{suffix}", ""
    if host == "player.vimeo.com" and parts.path.startswith("/video/"):
        return f"https://vimeo.com/{parts.path.split('/')[2]}", ""
    if host == "codepen.io" and "/embed/" in parts.path:
        return f"https://codepen.io{parts.path.replace('/embed/preview/', '/pen/').replace('/embed/', '/pen/')}", ""
    if host == "gist.github.com" and parts.path.endswith(".js"):
        return f"https://gist.github.com{parts.path[:-3]}", ""
    return url, ""
