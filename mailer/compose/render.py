"""An `Issue` and the workspace's templates to a `RenderedIssue`.

Jinja2 renders ``newsletter.mjml.j2`` to MJML, mjml-python turns that into
HTML, and css-inline inlines the CSS; ``newsletter.txt.j2`` renders the
plain-text part from the same model. The result is built once per send: the
parts that differ per recipient (unsubscribe URL, name, address) are
placeholders, filled with `Recipient.values` for each message: by
`mailer.send.message` in the already encoded parts when sending, and by
`RenderedIssue.personalize` for the preview, `mailer render` and the
reference build.

Everything here is pure: same files in, same bytes out.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path
from types import TracebackType
from typing import Any

import css_inline
import jinja2
from jinja2.loaders import split_template_path
from mjml import mjml2html

from ..config import Settings
from ..errors import RenderError, TemplateError
from ..language import words_for
from .defaults import DEFAULT_TEMPLATES
from .issue import Issue, Item
from .plaintext import text_width, wrap
from .recipient_uses import check_recipient_uses
from .undefined import NamedUndefined

HTML_TEMPLATE = "newsletter.mjml.j2"
TEXT_TEMPLATE = "newsletter.txt.j2"
PREHEADER_LIMIT = 110
_DOCTYPE = re.compile(r"\s*<!doctype[^>]*>", re.I)
_INLINE_STYLE = re.compile(r'<mj-style\b[^>]*\binline\s*=\s*"inline"[^>]*>(.*?)</mj-style>', re.S | re.I)

# What each per-recipient value is while the issue is rendered. Plain ASCII
# without '=' so that it survives Jinja, MJML, CSS inlining and
# quoted-printable encoding unchanged and can be found again afterwards.
PLACEHOLDERS = {
    "unsubscribe_url": "%%UNSUBSCRIBE_URL%%",
    "name": "%%NAME%%",
    "email": "%%EMAIL%%",
}


PLACEHOLDER_PATTERN = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))
PLACEHOLDER_KEYS = {placeholder: key for key, placeholder in PLACEHOLDERS.items()}

# The few words the default templates say themselves, by language; a
# workspace overrides any of them in newsletter.toml under [vars.strings].
STRINGS = {
    "en": {
        "reason": "You are receiving this because you subscribed to {name}.",
        "unsubscribe": "Unsubscribe",
        "colon": ": ",
    },
    "zh": {
        "reason": "你收到这封邮件，是因为你订阅了{name}。",
        "unsubscribe": "退订",
        "colon": "：",
    },
}


def template_strings(settings: Settings) -> dict[str, str]:
    """The default templates' own words in the newsletter's language."""
    strings = words_for(settings, STRINGS, "strings", new_words=True)
    return {k: v.replace("{name}", settings.newsletter.name) for k, v in strings.items()}


@dataclass(frozen=True)
class Recipient:
    """The per-recipient values a message is personalised with."""

    email: str
    name: str
    unsubscribe_url: str

    def values(self, default_name: str = "") -> dict[str, str]:
        """What each placeholder becomes for this recipient, by the key of `PLACEHOLDERS`.

        A subscriber without a name is greeted with the newsletter's
        ``default_name`` in the body only; the To header carries just the name it has.
        """
        return {"unsubscribe_url": self.unsubscribe_url, "name": self.name or default_name,
                "email": self.email}


@dataclass(frozen=True)
class RenderedIssue:
    """An issue rendered once for everybody, with per-recipient placeholders."""

    issue: Issue
    subject: str
    preheader: str
    html: str
    text: str

    def personalize(self, recipient: Recipient, default_name: str = "") -> tuple[str, str]:
        """The HTML and text parts for one recipient."""
        values = recipient.values(default_name)
        # One pass each: a value that itself looks like a placeholder (a
        # subscriber named "%%EMAIL%%") stays what the subscriber typed.
        html = PLACEHOLDER_PATTERN.sub(lambda m: escape(values[PLACEHOLDER_KEYS[m.group()]]), self.html)
        text = PLACEHOLDER_PATTERN.sub(lambda m: values[PLACEHOLDER_KEYS[m.group()]], self.text)
        return html, text


class _Placeholders:
    """What templates see as `recipient`: each attribute is its placeholder."""

    template_label = "recipient"
    template_fields = tuple(PLACEHOLDERS)

    def __getattr__(self, name: str) -> str:
        if name in PLACEHOLDERS:
            return PLACEHOLDERS[name]
        raise AttributeError(name)


def compose(issue: Issue, settings: Settings, templates_dir: Path) -> RenderedIssue:
    """Render `issue` with the workspace's templates folder `templates_dir`.

    Each template the folder lacks (or all of them, when there is no such
    folder) is the package's default of the same name.
    """
    env = _environment(templates_dir.resolve())
    context = _context(issue, settings)
    mjml_source = _render(env, HTML_TEMPLATE, context, templates_dir)
    text = _tidy_text(_render(env, TEXT_TEMPLATE, context, templates_dir))
    try:
        html = mjml2html(mjml_source)
    except Exception as exc:  # mjml-python raises bare ValueErrors from Rust
        raise _mjml_failure(issue, exc, templates_dir) from None
    html = inline_css(html, inlinable_css(mjml_source))
    return RenderedIssue(issue, issue.subject, context["preheader"], html, text)


_ALONE = "<mjml><mj-body><mj-section><mj-column><mj-text>{}</mj-text></mj-column></mj-section></mj-body></mjml>"


def _mjml_failure(issue: Issue, exc: Exception, templates_dir: Path) -> RenderError:
    """The error for MJML that failed: at the issue's line when a piece of the issue fails alone.

    Only when every piece of the issue renders on its own is the template to blame.
    """
    for line, fragment in _content(issue):
        try:
            mjml2html(_ALONE.format(fragment.html))
        except Exception:
            return RenderError(
                f"MJML could not render this content: {exc}", path=issue.path, line=line,
                hint="simplify the raw HTML on this line",
            )
    return RenderError(
        f"MJML could not be rendered: {exc}", path=_template_file(templates_dir, HTML_TEMPLATE),
        hint="check that every mj- tag the template writes is closed",
    )


def _content(issue: Issue):
    """Every piece of the issue's content with the line it starts on, in order."""
    for entries, section in [(issue.intro, None), *((s.entries, s) for s in issue.sections)]:
        if section is not None:
            yield section.line, section.title
        for entry in entries:
            if isinstance(entry, Item):
                yield entry.line, entry.title
                if entry.summary:
                    yield entry.line, entry.summary
                yield from ((block.line, block.content) for block in entry.body)
            else:
                yield entry.line, entry.content


def render_mjml(issue: Issue, settings: Settings, templates_dir: Path) -> str:
    """Only the first stage: the MJML the HTML template makes of `issue`."""
    env = _environment(templates_dir.resolve())
    return _render(env, HTML_TEMPLATE, _context(issue, settings), templates_dir)


def inlinable_css(mjml_source: str) -> str:
    """The CSS of every ``<mj-style inline="inline">`` in `mjml_source`."""
    return "\n".join(_INLINE_STYLE.findall(mjml_source))


def _context(issue: Issue, settings: Settings) -> dict[str, Any]:
    """What both templates see."""
    return {
        "issue": issue,
        "subject": issue.subject,
        "preheader": issue.preheader or _shorten(issue.first_summary, PREHEADER_LIMIT),
        "newsletter": settings.newsletter,
        "sender": settings.sender,
        "settings": settings,
        "vars": settings.vars,
        "strings": template_strings(settings),
        "recipient": _Placeholders(),
        "unsubscribe_url": PLACEHOLDERS["unsubscribe_url"],
        "text_width": settings.compose.text_width,
    }


def inline_css(html: str, css: str) -> str:
    """Inline the rules of `css` into the style attributes of `html`.

    The one inlining seam. As with the official MJML toolchain, only the CSS
    a template marks ``<mj-style inline="inline">`` is inlined; every
    ``<style>`` block stays in the head untouched, with its @media rules
    (the phone layout and dark mode, which cannot be inlined) and its
    `!important` (dark mode needs it to beat the inlined colours). Classes
    stay, since those rules select by them, and nothing is ever fetched.
    """
    try:
        inlined = _inliner(css).inline(html)
    except ValueError as exc:  # css_inline.InlineError: a selector or rule it cannot use
        raise RenderError(f"CSS could not be inlined: {exc}") from None
    # The serialiser writes its own doctype and drops the final newline; keep
    # the template's doctype as written, and end the part with a line break
    # as mail parts do.
    doctype = _DOCTYPE.match(html)
    if doctype:
        inlined = _DOCTYPE.sub("", inlined, count=1)
        inlined = doctype.group(0).strip() + "\n" + inlined
    return inlined if inlined.endswith("\n") else inlined + "\n"


@functools.lru_cache(maxsize=8)
def _inliner(css: str) -> css_inline.CSSInliner:
    """One inliner per stylesheet: the templates' CSS is the same on every render.

    css-inline (Servo's HTML parser and CSS selector engine, in Rust) takes
    0.1–0.5 ms where premailer took 2–40 ms, because premailer re-parses
    every element's style attribute through cssutils. The document's own
    ``<style>`` blocks are left alone (``inline_style_tags=False``): only
    `css` is inlined.
    """
    return css_inline.CSSInliner(
        inline_style_tags=False, keep_style_tags=True, keep_link_tags=True,
        load_remote_stylesheets=False, extra_css=css or None, minify_css=True,
    )


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        # The workspace's own templates first, file by file; the package's
        # defaults for every name the workspace does not have.
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(templates_dir), _DefaultsLoader(templates_dir)]),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("mjml.j2", "html.j2", "mjml", "html"),
            default_for_string=True,
        ),
        # A misspelt variable is an error, not a silently empty greeting.
        undefined=NamedUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["wrap"] = _wrap_filter
    env.filters["columns"] = _columns_filter
    return env


class _DefaultsLoader(jinja2.FileSystemLoader):
    """The package's templates, out of date as soon as the workspace has its own.

    Jinja keeps a loaded template until its file changes; a default must
    also give way when the writer copies it into the workspace while the
    preview runs, or the preview would go on showing the default.
    """

    def __init__(self, workspace_dir: Path) -> None:
        super().__init__(DEFAULT_TEMPLATES)
        self._workspace_dir = workspace_dir

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        source, filename, uptodate = super().get_source(environment, template)
        override = self._workspace_dir.joinpath(*split_template_path(template))
        return source, filename, lambda: uptodate() and not override.exists()


def _template_file(folder: Path, name: str) -> Path:
    """The file template `name` is read from: the workspace's, else the package's."""
    own = folder / name
    return own if own.exists() or not (DEFAULT_TEMPLATES / name).exists() else DEFAULT_TEMPLATES / name


@jinja2.pass_context
def _wrap_filter(context: Any, text: str, indent: str = "", width: int | None = None) -> str:
    """``{{ text | wrap(indent="   ") }}``: wrap to the settings' text width."""
    return wrap(str(text), width or context.get("text_width", 72), indent)


@jinja2.pass_context
def _columns_filter(context: Any, text: str) -> int:
    """``{{ "=" * (title | columns) }}``: an underline as wide as the text, up to the width."""
    return min(text_width(str(text)), context.get("text_width", 72))


def _render(env: jinja2.Environment, name: str, context: dict[str, Any], folder: Path) -> str:
    try:
        check_recipient_uses(env, name)
        return env.get_template(name).render(context)
    except TemplateError:
        raise
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"template {exc.name} not found", path=folder,
            hint="put it in this templates folder; `mailer templates copy` writes the defaults there",
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax error: {exc.message}", path=exc.filename or _template_file(folder, name),
            line=exc.lineno,
        ) from None
    except Exception as exc:
        path, line = _template_frame(sys.exc_info()[2], folder)
        raise TemplateError(
            f"template failed: {exc}", path=path or _template_file(folder, name), line=line,
        ) from None


def _template_frame(tb: TracebackType | None, folder: Path) -> tuple[Path | None, int | None]:
    """The innermost traceback frame inside a template, as (file, line).

    Jinja rewrites tracebacks so that template frames carry the template's
    file name and line, which is what the writer needs to see.
    """
    found: tuple[Path | None, int | None] = (None, None)
    roots = (str(folder.resolve()) + os.sep, str(DEFAULT_TEMPLATES) + os.sep)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(roots):
            found = (Path(filename), tb.tb_lineno)
        tb = tb.tb_next
    return found


def _tidy_text(text: str) -> str:
    """Trailing spaces off, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.split("\n")]
    tidy = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return tidy.strip("\n") + "\n"


def _shorten(text: str, limit: int) -> str:
    """`text` on one line, cut at a word or character boundary near `limit`."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.7 and not cut[space - 1:space].isspace():
        cut = cut[:space]
    return cut.rstrip("，。、,.;:；： ") + "…"
