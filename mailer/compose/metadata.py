"""The settings at the top of an issue file, in the formats static sites use.

Two formats are read, so that the Markdown a writer already keeps for a
blog or a static site works as it is:

- **YAML front matter** between ``---`` lines (Jekyll, Hugo, Eleventy …).
- **A metadata header** of ``Key: value`` lines (Pelican, MultiMarkdown),
  with no ``---``, ended by the first blank line::

      Title: This Week in Rust 587
      Number: 587
      Date: 2025-02-19
      Category: This Week in Rust

  A first paragraph is only taken for such a header when it cannot be prose:
  every line of it is ``Key: value`` (or an indented continuation of the
  line above), every key is a name (letters, digits, spaces, ``-`` or
  ``_``, starting with a letter, at most 32 characters, never a URL scheme
  such as ``https``), and either a ``Title`` key is among them, or there are
  at least two lines and every key is one the two formats define (`KNOWN_KEYS`).
  So "Note: this week …" or "Welcome to another issue of …" stay paragraphs.
  Keys are lower-cased with spaces as ``_`` (``Base Header Level`` →
  ``base_header_level``); values are text.

Either way the result is one dict, `Issue.meta` for the templates. Its
``title``, ``subject``, ``preheader`` and ``date`` are the issue's own, and a
``summary`` or ``description`` is the preheader when no ``preheader`` is set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import IssueError

# Keys whose value goes into a mail header or the preheader: one line of text.
SINGLE_LINE_KEYS = ("title", "subject", "preheader")
# The keys mailer itself reads from the metadata.
_OWN_KEYS = frozenset({*SINGLE_LINE_KEYS, "date", "summary", "description"})
# Keys Pelican and MultiMarkdown define; a header made only of these needs no Title.
KNOWN_KEYS = frozenset({
    "title", "subject", "number", "date", "modified", "category", "tags", "author", "authors",
    "summary", "description", "slug", "status", "lang", "language", "save_as", "url", "template",
    "keywords", "subtitle", "preheader", "translation", "base_header_level", "css", "copyright",
})
PREHEADER_KEYS = ("preheader", "summary", "description")

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_HEADER_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9 _-]{0,31}):(?:[ \t]+(.*))?$")
_CONTINUATION = re.compile(r"^(?: {2,}|\t)\S")
_SCHEMES = frozenset({"http", "https", "ftp", "mailto", "tel", "file", "data"})


@dataclass(frozen=True)
class Metadata:
    """An issue file split in two: its settings, and the Markdown after them."""

    meta: dict[str, Any]
    body: str
    # How many lines come before `body`, so that its lines keep their numbers.
    offset: int


def read_metadata(text: str, path: Any) -> Metadata:
    """The metadata at the top of issue source `text`, in whichever format it is."""
    lines = text.split("\n")
    opener = lines[0].rstrip()
    if opener == "+++":
        raise IssueError(
            "TOML front matter (+++) is not supported", path=path, line=1,
            hint="write the front matter as YAML between --- lines",
        )
    if opener == "---":
        return _front_matter(lines, path)
    header = _header(lines, path)
    if header is not None:
        return header
    return Metadata({}, text, 0)


def preheader_of(meta: dict[str, Any]) -> str:
    """The preheader the metadata sets, if any: its preheader, else its summary."""
    for key in PREHEADER_KEYS:
        value = meta.get(key)
        if isinstance(value, (str, int, float)) and str(value).strip():
            return " ".join(str(value).split())
    return ""


# -- YAML front matter ---------------------------------------------------------


def _front_matter(lines: list[str], path: Any) -> Metadata:
    end = next((n for n in range(1, len(lines)) if lines[n].rstrip() in ("---", "...")), None)
    if end is None:
        raise IssueError(
            "front matter opened with --- is never closed", path=path, line=1,
            hint="add a line with --- after the last setting",
        )
    source = "\n".join(lines[1:end])
    try:
        meta = yaml.safe_load(source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 2 if mark else 1
        raise IssueError(
            f"broken front matter: {exc.problem or exc.context}", path=path, line=line,
            hint="fix the YAML between the --- lines",
        ) from None
    except yaml.YAMLError as exc:
        raise IssueError(f"broken front matter: {exc}", path=path, line=1) from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise IssueError(
            "front matter must be 'key: value' lines", path=path, line=2,
            hint="for example 'subject: My subject'",
        )
    for key in [k for k in meta if isinstance(k, str)]:
        # Front matter written for Hugo or Jekyll by hand often says `Title:`;
        # the issue's own keys are read whatever their case (the key as written
        # stays too, for templates that use it).
        if key.lower() in _OWN_KEYS and key != key.lower() and key.lower() not in meta:
            meta[key.lower()] = meta[key]
    for key, value in list(meta.items()):
        line = _key_line(lines[1:end], key)
        if not isinstance(key, str):
            raise IssueError(f"front matter key {key!r} must be a name", path=path, line=line)
        if key in SINGLE_LINE_KEYS or key == "date":
            if isinstance(value, (list, dict)) or value is None:
                raise IssueError(f"front matter {key} must be a single value", path=path, line=line)
        if key in SINGLE_LINE_KEYS:
            meta[key] = _one_line(str(value), key, path, line, "front matter")
    return Metadata(meta, "\n".join(lines[end + 1:]), end + 1)


def _key_line(lines: list[str], key: Any) -> int:
    for n, line in enumerate(lines):
        if line.lower().startswith(f"{str(key).lower()}:"):
            return n + 2
    return 2


def _one_line(value: str, key: str, path: Any, line: int, where: str) -> str:
    if "\n" in value.strip() or _CONTROL.search(value):
        raise IssueError(
            f"{where} {key} must be one line of text", path=path, line=line,
            hint="it goes into a mail header",
        )
    return value.strip()


# -- Pelican / MultiMarkdown header ----------------------------------------------


def _header(lines: list[str], path: Any) -> Metadata | None:
    """The ``Key: value`` header at the top of `lines`, or None if the file has none."""
    entries: list[list[Any]] = []  # [key, value, line]
    end = 0
    for n, line in enumerate(lines):
        if not line.strip():
            break
        end = n + 1
        match = _HEADER_LINE.match(line.rstrip())
        if match and not _url_like(match.group(1), match.group(2) or ""):
            entries.append([_key(match.group(1)), (match.group(2) or "").strip(), n + 1])
        elif entries and _CONTINUATION.match(line):
            entries[-1][1] = f"{entries[-1][1]} {line.strip()}".strip()
        else:
            return None
    keys = [key for key, _, _ in entries]
    if not keys:
        return None
    if "title" not in keys and (len(keys) < 2 or not set(keys) <= KNOWN_KEYS):
        return None
    meta: dict[str, Any] = {}
    for key, value, line in entries:
        if key in meta:
            raise IssueError(f"metadata header sets {key} twice", path=path, line=line,
                             hint="keep one of the two lines")
        meta[key] = _one_line(value, key, path, line, "metadata") if key in SINGLE_LINE_KEYS else value
    return Metadata(meta, "\n".join(lines[end:]), end)


def _key(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip().lower())


def _url_like(key: str, value: str) -> bool:
    """``https://…`` splits as key ``https``, value ``//…``: a link, not a setting."""
    return key.lower() in _SCHEMES or value.startswith("//")


# -- the file name -----------------------------------------------------------------

_ORDER_PREFIX = re.compile(r"^[\d._ -]*[._ -](?=\D)")
_WORD_SEPARATOR = re.compile(r"(?<!\d)[-_]+|[-_]+(?!\d)")


def title_from_name(stem: str) -> str:
    """A title made from a file's name, for an issue that sets none.

    An ordering or date prefix goes (``01-安吉黄昏`` → ``安吉黄昏``,
    ``2013-06-07-this-week-in-rust`` → ``This week in rust``), dashes and
    underscores between words become spaces while those between numbers stay
    (``issue-538`` → ``Issue 538``, ``weekly-2024-05`` → ``Weekly 2024-05``),
    and a name all in lower case gets a capital. A name of numbers only
    (``2024-26``) is kept as it is: any word added would be in one language.
    """
    name = _ORDER_PREFIX.sub("", stem.strip()) or stem.strip()
    name = " ".join(_WORD_SEPARATOR.sub(" ", name).split()) or stem
    if name[:1].islower() and name == name.lower():
        name = name[:1].upper() + name[1:]
    return name
