"""The words mailer itself says, in the newsletter's language.

A few parts of mailer speak to readers in words of their own rather than the
author's: the default templates' footer and the unsubscribe page. Each keeps
its words by language beside the code that uses them; this module picks the
set for ``[newsletter] language`` (its primary subtag, so ``zh-CN`` and
``zh-TW`` are both ``zh``), falls back to English for a language mailer has
no words in, and lays a workspace's ``[vars.…]`` table over them, so that
every part chooses and rewords the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from .config import Settings

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
    words = dict(by_language.get(primary_language(settings.newsletter.language), by_language[FALLBACK]))
    table = settings.vars.get(overrides, {})
    if isinstance(table, dict):
        words.update({str(k): str(v) for k, v in table.items() if new_words or k in words})
    return words
