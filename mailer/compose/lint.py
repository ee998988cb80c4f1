"""Checks on a rendered issue, run before anything is sent.

Errors are things that break the email for readers or the law (Gmail
clipping it, a link that cannot work, template syntax left in the text, no
unsubscribe link); warnings are things a careful editor fixes (a missing
preheader or alt text, an http link, a duplicate link, an empty section, a
title made from the file name, no postal address).

Every check is one entry of `CHECKS`, registered with `@check("what it
looks for")`: `lint` runs them all and `mailer lint --help` lists them from
the same table, so a new check is documented by being added.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import Settings
from .issue import Block, Fragment, Issue, Item
from .render import PLACEHOLDERS, RenderedIssue

# Gmail hides everything past about 102 KB of HTML behind "[Message
# clipped]", including the unsubscribe link in the footer. Sizes are counted
# in bytes of the UTF-8 HTML, and a KB here is 1,000 of them, as Gmail's
# limit is usually quoted.
GMAIL_CLIP_BYTES = 102_000
CLIP_WARNING_BYTES = 80_000
SUBJECT_WARNING_CHARS = 80

_TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
_PLACEHOLDER = re.compile(r"%%[A-Z_]+%%")


@dataclass(frozen=True)
class Finding:
    """One problem found: 'error' or 'warning', with the issue line if known."""

    level: str
    message: str
    line: int | None = None

    def format(self, path: str) -> str:
        where = f"{path}:{self.line}" if self.line else path
        return f"{where}: {self.level}: {self.message}"


@dataclass(frozen=True)
class LintReport:
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]


CheckFunction = Callable[[RenderedIssue, Settings | None], list[Finding]]


@dataclass(frozen=True)
class Check:
    """One check of lint: what it looks for, as `mailer lint --help` says it, and the
    function that looks (given the rendered issue and the settings, when known)."""

    describes: str
    run: CheckFunction


CHECKS: list[Check] = []


def check(describes: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as a check that looks for `describes`."""
    def register(function: CheckFunction) -> CheckFunction:
        CHECKS.append(Check(describes, function))
        return function
    return register


def describe_checks() -> list[str]:
    """What lint looks for, one line per check, in the order it checks."""
    return [c.describes for c in CHECKS]


def lint(rendered: RenderedIssue, settings: Settings | None = None) -> LintReport:
    """Every finding for `rendered`, errors and warnings, in source order.

    Checks of the settings (the postal address) run when `settings` are given.
    """
    findings: list[Finding] = []
    for each in CHECKS:
        findings += each.run(rendered, settings)
    ordered = sorted(findings, key=lambda f: (f.line or 0, f.level != "error"))
    return LintReport(tuple(ordered))


@check("HTML size: an error over Gmail's 102 KB clipping limit, a warning over 80 KB")
def _size(rendered: RenderedIssue, settings: Settings | None) -> list[Finding]:
    size = len(rendered.html.encode("utf-8"))
    if size >= GMAIL_CLIP_BYTES:
        return [Finding("error", f"HTML is {_kb(size)}, {_kb(size - GMAIL_CLIP_BYTES + 1)} over "
                                 f"Gmail's {_kb(GMAIL_CLIP_BYTES)} clipping limit, which hides the rest "
                                 f"and the unsubscribe link ({_room(rendered.html)}); "
                                 "shorten the issue or split it in two")]
    if size >= CLIP_WARNING_BYTES:
        return [Finding("warning", f"HTML is {_kb(size)}, close to Gmail's "
                                   f"{_kb(GMAIL_CLIP_BYTES)} clipping limit")]
    return []


_STYLE_ATTR = re.compile(rb'\sstyle="[^"]*"')
_IMG_TAG = re.compile(rb"<img\b[^>]*>", re.I)
_HREF_ATTR = re.compile(rb'\shref="[^"]*"')
_TAG = re.compile(rb"<[^>]*>")


def _room(html: str) -> str:
    """What the HTML's bytes are spent on, largest first: what to cut when it is too long."""
    data = html.encode("utf-8")
    head_end = data.find(b"<body")
    head, body = (data[:head_end], data[head_end:]) if head_end >= 0 else (b"", data)
    styles = sum(len(m) for m in _STYLE_ATTR.findall(body))
    body = _STYLE_ATTR.sub(b"", body)
    images = _IMG_TAG.findall(body)
    links = sum(len(m) for m in _HREF_ATTR.findall(_IMG_TAG.sub(b"", body)))
    text = len(_TAG.sub(b"", body))
    parts = {
        "text": text,
        "inline styles": styles,
        f"{len(images)} image{'s' if len(images) != 1 else ''}": sum(len(m) for m in images),
        "link addresses": links,
        "head and its styles": len(head),
    }
    parts["other markup"] = len(data) - sum(parts.values())
    ranked = sorted(parts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {_kb(n)}" for name, n in ranked if n > 0)


def _kb(size: int) -> str:
    return f"{size / 1000:.1f} KB"


def _fragments(issue: Issue) -> list[Fragment]:
    found = [issue.title]
    entries = list(issue.intro)
    for section in issue.sections:
        found.append(section.title)
        entries.extend(section.entries)
    for entry in entries:
        if isinstance(entry, Item):
            found.append(entry.title)
            if entry.summary:
                found.append(entry.summary)
            found.extend(block.content for block in entry.body)
        elif isinstance(entry, Block):
            found.append(entry.content)
    return found


@check("template syntax or unknown placeholders left in the HTML or text part (error)")
def _template_leftovers(rendered: RenderedIssue, settings: Settings | None) -> list[Finding]:
    """Template syntax in the output that the issue's own text does not explain."""
    fragments = _fragments(rendered.issue)
    authored_text = "".join(f.text for f in fragments) + rendered.subject + rendered.preheader
    authored_html = "".join(f.html for f in fragments) + rendered.subject + rendered.preheader
    findings = []
    for part, output, authored in (("text", rendered.text, authored_text),
                                   ("HTML", rendered.html, authored_html)):
        extra = len(_TEMPLATE_SYNTAX.findall(output)) - len(_TEMPLATE_SYNTAX.findall(authored))
        if extra > 0:
            sample = _TEMPLATE_SYNTAX.search(output)
            findings.append(Finding(
                "error", f"unrendered template syntax {sample.group() if sample else ''!r} "
                         f"in the {part} part; check the templates and the front matter"))
        unknown = {p for p in _PLACEHOLDER.findall(output) if p not in PLACEHOLDERS.values()}
        unknown -= set(_PLACEHOLDER.findall(authored))
        if unknown:
            findings.append(Finding("error", f"unknown placeholder {sorted(unknown)[0]} in the {part} part"))
    return findings


@check("an unsubscribe link in both parts (error without)")
def _unsubscribe(rendered: RenderedIssue, settings: Settings | None) -> list[Finding]:
    placeholder = PLACEHOLDERS["unsubscribe_url"]
    missing = [part for part, body in (("HTML", rendered.html), ("text", rendered.text))
               if placeholder not in body]
    if missing:
        return [Finding("error", f"no unsubscribe link in the {' and '.join(missing)} part; "
                                 "use {{ recipient.unsubscribe_url }} in the template footer")]
    return []


@check("images: an error for one that cannot load (not an absolute URL), a warning without alt text")
def _images(rendered: RenderedIssue, settings: Settings | None) -> list[Finding]:
    issue = rendered.issue
    findings = []
    for image in issue.images:
        if not image.alt or not image.alt.strip():
            findings.append(Finding(
                "warning", f"image {image.src} has no alt text; many readers see images blocked",
                image.line))
        if urlsplit(image.src).scheme not in ("https", "http", "cid"):
            findings.append(Finding(
                "error", f"image {image.src!r} is not an absolute URL and cannot load in an email",
                image.line))
    return findings


@check("links: an error for relative or javascript:/data:/file: links, "
       "a warning for http:// ones and for a link that appears twice")
def _links(rendered: RenderedIssue, settings: Settings | None) -> list[Finding]:
    issue = rendered.issue
    items = issue.items  # built afresh on each access
    findings = []
    owners: dict[str, set[int]] = defaultdict(set)
    first_line: dict[str, int] = {}
    urls = [(link.url, link.line) for link in issue.links]
    linked = {link.url for link in issue.links}
    urls += [(item.url, item.line) for item in items if item.url and item.url not in linked]
    for url, line in urls:
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("mailto", "tel"):
            continue
        if not url.strip() or scheme in ("javascript", "data", "file", "vbscript"):
            findings.append(Finding("error", f"link {url!r} cannot work in an email", line))
            continue
        if url.startswith("#"):
            continue
        if not scheme:
            findings.append(Finding(
                "error", f"link {url!r} is relative; an email needs absolute https:// links", line))
            continue
        if scheme == "http":
            findings.append(Finding("warning", f"link {url} is not https", line))
        # The same link in one item's title and URL line is one link.
        owner = next((item.line for item in items if item.covers(line)), line)
        owners[url].add(owner)
        first_line.setdefault(url, line)
    for url, places in owners.items():
        if len(places) > 1:
            lines = ", ".join(str(n) for n in sorted(places))
            findings.append(Finding("warning", f"link {url} appears {len(places)} times (lines {lines})",
                                    first_line[url]))
    return _unique(findings)


@check("empty sections (warning)")
def _sections(rendered: RenderedIssue, settings: Settings | None) -> list[Finding]:
    return [Finding("warning", f"section '{s.title.text}' is empty", s.line)
            for s in rendered.issue.sections if not s.entries]


@check("a preheader, from the front matter or an item's summary (warning without)")
def _preheader(rendered: RenderedIssue, settings: Settings | None) -> list[Finding]:
    if rendered.preheader.strip():
        return []
    return [Finding("warning", "no preheader: set 'preheader:' in the front matter or give an item a summary")]


@check(f"a subject over {SUBJECT_WARNING_CHARS} characters, which inboxes cut (warning)")
def _subject(rendered: RenderedIssue, settings: Settings | None) -> list[Finding]:
    if len(rendered.subject) <= SUBJECT_WARNING_CHARS:
        return []
    return [Finding("warning", f"subject is {len(rendered.subject)} characters; inboxes cut it near 60")]


@check("a postal address for the footer, which CAN-SPAM and similar laws require (warning without)")
def _postal_address(rendered: RenderedIssue, settings: Settings | None) -> list[Finding]:
    if settings is None or settings.newsletter.postal_address.strip():
        return []
    return [Finding("warning", "no postal address in the footer, which the law requires in many countries "
                               "(CAN-SPAM in the US): set [newsletter] postal_address in newsletter.toml")]


@check("a title made from the file name, which the editor should confirm (warning)")
def _title_source(rendered: RenderedIssue, settings: Settings | None) -> list[Finding]:
    """A title made from the file name is a guess the editor should confirm."""
    issue = rendered.issue
    if issue.title_from != "file name":
        return []
    return [Finding("warning", f"the title '{issue.title.text}' comes from the file name "
                               f"{issue.path.name}; start the issue with a '# Title' line "
                               "or set 'title:' in the front matter", 1)]


@check("what composing dropped or replaced in the issue, with its line: control characters, "
       "embeds turned into links (warning)")
def _changes(rendered: RenderedIssue, settings: Settings | None) -> list[Finding]:
    """What composing dropped or replaced in the author's text (control characters, embeds)."""
    return [Finding("warning", change.message, change.line) for change in rendered.issue.changes]


def _unique(findings: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for finding in findings:
        if finding not in seen:
            seen.add(finding)
            out.append(finding)
    return out
