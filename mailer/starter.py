"""A new workspace: the files `mailer init` writes, and the questions it asks.

A new workspace must render, preview and send to the outbox at once, with
no step the writer has to know about: a ``newsletter.toml`` holding every
required setting, a first issue that shows the item format, the subscribers
folder, and a ``.gitignore`` keeping the store, the signing key and what
mailer writes out of version control. Templates are not written: the
package's defaults serve until ``mailer templates copy``.

``newsletter.toml`` is generated from the typed settings of `mailer.config`
(their docstrings and defaults), so it lists exactly the keys config
accepts, and every answer is checked by config's own validation.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import textwrap
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .config import CONFIG_NAME, NewsletterSettings, Settings, parse_settings
from .errors import ConfigError, MailerError, os_reason
from .language import primary_language


@dataclass(frozen=True)
class Question:
    """One thing `mailer init` asks: its option, the setting it fills, the prompt."""

    option: str
    key: str
    prompt: str
    default: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.option.replace("_", "-")


QUESTIONS = (
    Question("name", "newsletter.name", "Name of the newsletter"),
    Question("sender", "sender.address", "Sender address (From)"),
    Question("language", "newsletter.language", "Language of the issues (en, zh-CN, …)",
             default=NewsletterSettings.language),
    Question("unsubscribe_url", "unsubscribe.url", "https URL of the unsubscribe page (`mailer serve`)"),
    # The law of many countries (CAN-SPAM, for one) wants it in every issue's
    # footer; lint warns while it is empty, so it may be left for later.
    Question("postal_address", "newsletter.postal_address",
             "Postal address for the footer (Enter to add it later)", default=""),
)

# Valid values for the questions not answered yet, so that checking one
# answer can only fail on that answer.
_STAND_INS = {"newsletter.name": "Newsletter", "sender.address": "news@example.com",
              "newsletter.language": "en", "unsubscribe.url": "https://example.com/unsubscribe"}

GITIGNORE = """\
# What mailer writes that stays out of version control: the subscriber
# store (with SQLite's -wal and -shm files), the key that signs unsubscribe
# links (back it up: old links stop working without it), the lock of a
# running send, and the output of `mailer render` and the outbox.
subscribers/*.db*
subscribers/secret.key
subscribers/send.lock
build/
outbox/
"""

# A first issue per language of the footer's words: short, and showing each
# part of the item format, so that the writer can start by changing it.
FIRST_ISSUE = {
    "en": """\
---
date: {today}
---
# {name}, issue 1

Welcome to the first issue. This file is Markdown: the title above is the
subject, each `##` heading starts a section, and an item is a bold number,
a title, its link and a summary. Change it, and watch it with
`mailer preview`.

## Worth reading

**1.** [The title of an article, as a link](https://example.com/first-article)

**Summary:** One or two sentences on what the article says and why it is
worth the reader's time.

**2.** **A title in bold, with its link on the next line**

https://example.com/second-article

**Summary:** Anything else in a section (paragraphs, images, quotes, lists)
is kept where it stands.
""",
    "zh": """\
---
date: {today}
---
# {name} · 第 1 期

欢迎阅读第一期。这个文件是 Markdown：上面的标题就是邮件主题，每个 `##` 标题开始一个栏目，每个条目由加粗的编号、标题、链接和摘要组成。修改它，用 `mailer preview` 随时查看。

## 推荐阅读

**1.** [文章的标题，写成链接](https://example.com/first-article)

**摘要:** 用一两句话说明文章讲了什么，为什么值得一读。

**2.** **加粗的标题，链接写在下一行**

https://example.com/second-article

**摘要:** 栏目里的其他内容（段落、图片、引用、列表）都原样保留。
""",
}


@dataclass
class InitReport:
    """What `create_workspace` wrote and what it found already there."""

    root: Path
    first_issue: Path
    written: list[Path] = field(default_factory=list)
    extended: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report, then the commands that come next."""
        lines = [f"Made a newsletter workspace in {self.root}:"]
        lines += [f"  wrote {path.relative_to(self.root)}{'/' if path.is_dir() else ''}" for path in self.written]
        lines += [f"  added mailer's lines to {path.relative_to(self.root)}" for path in self.extended]
        lines += [f"  kept {path.relative_to(self.root)} (already there)" for path in self.kept]
        stem = self.first_issue.stem
        lines += ["Next:", f"  cd {self.root}",
                  "  mailer subscribers add you@example.com",
                  f"  mailer preview {stem}",
                  f"  mailer send-issue {stem}       # to the outbox/ folder; see [transport] in newsletter.toml"]
        return lines


def suggestion(question: Question, answers: Mapping[str, str]) -> str | None:
    """What to offer as the answer to `question`, given the answers before it."""
    if question.key == "unsubscribe.url" and "sender.address" in answers:
        return f"https://{answers['sender.address'].rpartition('@')[2]}/unsubscribe"
    return question.default


def check_answer(question: Question, value: str, answers: Mapping[str, str]) -> str:
    """`value` as the answer to `question`, or the `ConfigError` newsletter.toml would give."""
    value = value.strip()
    parse_settings(settings_text({**_STAND_INS, **answers, question.key: value}))
    return value


def settings_text(values: Mapping[str, str]) -> str:
    """A ``newsletter.toml`` with `values` (by dotted key) set and every other key as a comment.

    Each table and key is preceded by its documentation from `mailer.config`.
    """
    lines = ["# Settings of this newsletter. Every key mailer reads is here; the ones",
             "# commented out show their default. README.md has the whole table.", ""]
    hints = typing.get_type_hints(Settings)
    for section in dataclasses.fields(Settings):
        kind = hints[section.name]
        if not dataclasses.is_dataclass(kind):
            lines += [*_comment(section.metadata["doc"]), f"[{section.name}]", ""]
            continue
        lines += [*_comment(kind.__doc__ or ""), f"[{section.name}]"]
        for setting in dataclasses.fields(kind):
            key = f"{section.name}.{setting.name}"
            lines += _comment(setting.metadata["doc"])
            if key in values and values[key] != setting.default:
                lines.append(f"{setting.name} = {_toml(values[key])}")
            elif setting.default is dataclasses.MISSING:
                raise ValueError(f"no value for the required setting {key}")
            else:
                lines.append(f"# {setting.name} = {_toml(setting.default)}")
        lines.append("")
    return "\n".join(lines)


def refuse_existing(root: Path) -> None:
    """Stop before any question when `root` is already a workspace, or is not a folder."""
    if (root / CONFIG_NAME).exists():
        raise MailerError("this folder is a newsletter workspace already; nothing was changed",
                          path=root / CONFIG_NAME, hint="edit that file, or give init another folder")
    if root.exists() and not root.is_dir():
        raise MailerError("is not a folder", path=root, hint="give init a folder to make the workspace in")


def create_workspace(root: Path, answers: Mapping[str, str], today: datetime.date | None = None) -> InitReport:
    """Write a new workspace into `root` (made if missing) from the answers, by dotted key.

    Nothing that exists is overwritten: an issue of the same name is kept and
    a ``.gitignore`` only gains the lines it lacks. ``newsletter.toml`` is
    written last, so a run that fails half-way can simply be run again.
    """
    refuse_existing(root)
    text = settings_text(answers)
    try:
        settings = parse_settings(text)
    except ConfigError as exc:
        raise MailerError(f"the answers give a newsletter.toml that does not load: {exc}") from None
    today = today or datetime.date.today()
    issue = root / settings.compose.issues / f"{today.isoformat()}.md"
    words = FIRST_ISSUE.get(primary_language(settings.newsletter.language), FIRST_ISSUE["en"])
    report = InitReport(root, issue)
    try:
        subscribers = root / "subscribers"
        if not subscribers.is_dir():
            subscribers.mkdir(parents=True)
            report.written.append(subscribers)
        issue.parent.mkdir(parents=True, exist_ok=True)
        _write_new(issue, words.format(today=today.isoformat(), name=settings.newsletter.name), report)
        _extend_gitignore(root / ".gitignore", report)
        _write_new(root / CONFIG_NAME, text, report)
    except OSError as exc:
        raise MailerError(f"cannot write: {os_reason(exc)}", path=getattr(exc, "filename", None) or root) from None
    return report


def _write_new(path: Path, text: str, report: InitReport) -> None:
    try:
        with open(path, "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        report.kept.append(path)
    else:
        report.written.append(path)


def _extend_gitignore(path: Path, report: InitReport) -> None:
    """Add mailer's lines to `path`, keeping every line it already has."""
    if not path.exists():
        _write_new(path, GITIGNORE, report)
        return
    existing = path.read_text(encoding="utf-8", errors="replace")
    have = {line.strip() for line in existing.splitlines()}
    missing = [line for line in GITIGNORE.splitlines() if line and not line.startswith("#") and line not in have]
    if not missing:
        report.kept.append(path)
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(("" if existing.endswith("\n") or not existing else "\n")
                  + "\n# mailer\n" + "\n".join(missing) + "\n")
    report.extended.append(path)


def _comment(text: str) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), 76, initial_indent="# ", subsequent_indent="# ")


def _toml(value: object) -> str:
    """A TOML literal for `value`: JSON's string escapes are a subset of TOML's."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)
