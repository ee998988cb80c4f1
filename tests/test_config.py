"""Settings: strict, typed, and every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.config import load_settings
from mailer.errors import ConfigError

MINIMAL = """
[newsletter]
name = "Weekly"

[sender]
address = "news@example.com"

[unsubscribe]
url = "https://example.com/unsubscribe"
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "newsletter.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_minimal_settings_fill_in_defaults(tmp_path):
    settings = load(tmp_path, MINIMAL)
    assert settings.newsletter.language == "en"
    assert settings.from_name == "Weekly"
    assert settings.list_id == "weekly.example.com"
    assert settings.transport.kind == "outbox"
    assert settings.compose.text_width == 72


@pytest.mark.parametrize("change, message", [
    (('url = "https://example.com/unsubscribe"', 'url = "http://example.com/u"'),
     "unsubscribe.url must be an https:// URL"),
    (('name = "Weekly"', 'name = "Weekly"\nlanguage = "Chinese"'),
     "newsletter.language must be a language tag like 'en' or 'zh-CN', got 'Chinese'"),
    (('address = "news@example.com"', 'address = "not an address"'),
     "sender.address must be an email address, got 'not an address'"),
    (("[sender]", "[transport]\nkind = \"postfix\"\n\n[sender]"),
     "transport.kind must be one of ['outbox', 'ses', 'smtp'], got 'postfix'"),
    (("[sender]", "[compose]\ntext_width = \"wide\"\n\n[sender]"),
     "compose.text_width must be a whole number, got 'wide'"),
    (('address = "news@example.com"\n', ""), "missing required setting sender.address"),
    (("[newsletter]", "[newsleter]\nname = 'x'\n\n[newsletter]"),
     "unknown key 'newsleter' in the top level"),
])
def test_mistakes_are_named(tmp_path, change, message):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, MINIMAL.replace(*change))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_toml_syntax_error_has_its_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, MINIMAL + "\nbroken = = 1\n")
    assert str(caught.value).startswith(f"{tmp_path / 'newsletter.toml'}:11: invalid TOML")


def set_language(workspace_dir: Path, language: str, extra: str = "") -> None:
    """Make the example workspace's newsletter.toml say `language`, with `extra` appended."""
    config = workspace_dir / "newsletter.toml"
    text = config.read_text(encoding="utf-8").replace('language = "zh-CN"', f'language = "{language}"')
    config.write_text(text + extra, encoding="utf-8")


def test_a_language_without_built_in_words_is_an_error_naming_the_built_in_ones(run_mailer, workspace_dir):
    set_language(workspace_dir, "fr")
    result = run_mailer("render", "2024-26")
    assert (result.exit_code, result.output) == (1, (
        "Error: newsletter.toml: newsletter.language is 'fr', which mailer has no words in (built in: en, zh) "
        "(use one of those, or give every word in [vars.strings]; missing: reason, unsubscribe, colon)\n"))


def test_a_language_without_built_in_words_works_when_the_workspace_gives_every_word(run_mailer, workspace_dir):
    set_language(workspace_dir, "fr", '\n[vars.strings]\nreason = "Vous êtes abonné à {name}."\n'
                                      'unsubscribe = "Se désabonner"\ncolon = " : "\n')
    result = run_mailer("render", "2024-26")
    assert result.exit_code == 0, result.output
    text = (workspace_dir / "build" / "2024-26.txt").read_text(encoding="utf-8")
    assert "Vous êtes abonné à 云计算技术追踪." in text and "Se désabonner : " in text
