"""What templates may do with the per-recipient values, and what they are told of a misspelt name."""

from __future__ import annotations

import pytest

KNOWN_NEWSLETTER = "name, language, site_url, postal_address, list_id, default_name"


def edit_template(workspace_dir, name: str, old: str, new: str) -> int:
    """Replace `old` by `new` in template `name`; return the (1-based) line it is on."""
    template = workspace_dir / "templates" / name
    text = template.read_text(encoding="utf-8")
    assert old in text
    template.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[:text.index(old)].count("\n") + 1


@pytest.mark.parametrize("use, how", [
    ("{{ recipient.name | title }}", "with the filter 'title'"),
    ("{% if recipient.name %}Hi {{ recipient.name }}{% endif %}", "in a condition"),
    ('{{ recipient.name or "reader" }}', "with a default ('or')"),
])
def test_a_recipient_value_used_other_than_printed_is_refused_with_its_line(run_mailer, workspace_dir, use, how):
    line = edit_template(workspace_dir, "newsletter.txt.j2", "{{ strings.reason | wrap }}",
                         use + "\n{{ strings.reason | wrap }}")
    for command in ("lint", "send-issue"):
        result = run_mailer(command, "2024-26", *(["--to", "me@example.com"] if command == "send-issue" else []))
        assert result.exit_code == 1
        assert result.output == (
            f"Error: {workspace_dir / 'templates' / 'newsletter.txt.j2'}:{line}: recipient.name is used {how}, "
            "but it is only known per message: a template can only print it, as {{ recipient.name }} "
            "(a greeting for subscribers without a name is [newsletter] default_name in newsletter.toml)\n")
    assert not (workspace_dir / "outbox").exists()


def test_a_recipient_value_printed_escaped_or_joined_is_filled_per_message(run_mailer, workspace_dir):
    edit_template(workspace_dir, "newsletter.txt.j2", "{{ strings.reason | wrap }}",
                  '{{ ("To " ~ recipient.email) | e }}\n{{ strings.reason | wrap }}')
    result = run_mailer("render", "2024-26")
    assert result.exit_code == 0, result.output
    assert "To reader@example.com\n" in (workspace_dir / "build" / "2024-26.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("old, new, message", [
    ("{{ newsletter.name }}{% if issue.date %}", "{{ newsletter.nmae }}{% if issue.date %}",
     f"newsletter.nmae is not a setting (known: {KNOWN_NEWSLETTER})"),
    ("{{ recipient.unsubscribe_url }}", "{{ recipient.unsubscribe_link }}",
     "recipient.unsubscribe_link is not defined (known: unsubscribe_url, name, email)"),
])
def test_a_misspelt_name_says_what_is_known_instead_of_a_class_name(run_mailer, workspace_dir, old, new, message):
    line = edit_template(workspace_dir, "newsletter.txt.j2", old, new)
    result = run_mailer("render", "2024-26")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {workspace_dir / 'templates' / 'newsletter.txt.j2'}:{line}: template failed: {message}\n")
