"""The words mailer itself says, in the newsletter's language.

A few parts of mailer speak to readers in words of their own rather than the
author's: the default templates' footer and the unsubscribe page. Each keeps
its words by language beside the code that uses them; this module picks the
set for ``[newsletter] language`` (its primary subtag, so ``zh-CN`` and
``zh-TW`` are both ``zh``) and lays a workspace's ``[vars.…]`` table over
them, so that every part chooses and rewords the same way.

A language mailer has no words in is an error unless the workspace's table
gives every word: falling back to English would send a French newsletter
with an English footer, and nobody would notice until a reader did.
"""

from __future__ import annotations

from collections.abc import Mapping

from .config import CONFIG_NAME, Settings
from .errors import ConfigError

FALLBACK = "en"


def primary_language(tag: str) -> str:
    """The primary subtag of BCP 47 language `tag`, lower-cased: ``zh-CN`` → ``zh``."""
    return tag.split("-")[0].lower()


def words_for(settings: Settings, by_language: Mapping[str, Mapping[str, str]], overrides: str,
              *, new_words: bool = False) -> dict[str, str]:
    """The words of `by_language` in the newsletter's language, with ``[vars.<overrides>]`` on top.

    With `new_words` the table may add words as well as reword them: the
    templates belong to the workspace and may say words of their own, while
    code only ever asks for the words it ships with.
    """
    table = settings.vars.get(overrides, {})
    if not isinstance(table, dict):
        table = {}
    built_in = by_language.get(primary_language(settings.newsletter.language))
    if built_in is None:
        _refuse_unknown_language(settings.newsletter.language, by_language, overrides, table)
        built_in = by_language[FALLBACK]
    words = dict(built_in)
    words.update({str(k): str(v) for k, v in table.items() if new_words or k in words})
    return words


def _refuse_unknown_language(language: str, by_language: Mapping[str, Mapping[str, str]], overrides: str,
                             table: Mapping[str, object]) -> None:
    """Raise unless `table` gives every word, for a language mailer has none in."""
    missing = [word for word in by_language[FALLBACK] if word not in table]
    if not missing:
        return
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    raise ConfigError(
        f"newsletter.language is {language!r}, which mailer has no words in "
        f"(built in: {', '.join(sorted(by_language))})", path=CONFIG_NAME,
        hint=f"use one of those, or give every word in [vars.{overrides}]; missing: {shown}")
