"""The package's default templates, a workspace's own overriding them, and copying them out."""

from __future__ import annotations

import shutil

import pytest

from mailer.compose.defaults import DEFAULT_TEMPLATES, copy_templates
from mailer.compose.issue import read_issue
from mailer.compose.render import compose
from mailer.errors import TemplateError

from .conftest import EXAMPLE_ISSUE


def _compose(workspace):
    return compose(read_issue(EXAMPLE_ISSUE), workspace.settings, workspace.templates_dir)


def test_a_workspace_without_templates_renders_with_the_defaults(workspace):
    with_copies = _compose(workspace)
    shutil.rmtree(workspace.templates_dir)
    without = _compose(workspace)
    assert "云计算技术追踪" in without.html
    assert (without.html, without.text) == (with_copies.html, with_copies.text)


def test_a_workspace_template_overrides_its_default_alone(workspace):
    shutil.rmtree(workspace.templates_dir)
    workspace.templates_dir.mkdir()
    (workspace.templates_dir / "newsletter.txt.j2").write_text("Our own text: {{ subject }}\n", encoding="utf-8")
    rendered = _compose(workspace)
    assert rendered.text == f"Our own text: {rendered.subject}\n"
    assert "<mjml" not in rendered.html and "云计算技术追踪" in rendered.html


def test_a_template_copied_in_while_rendering_replaces_the_default_at_once(workspace):
    """The preview keeps rendering in one process: a new override must not wait for a restart."""
    shutil.rmtree(workspace.templates_dir)
    assert "Our own text" not in _compose(workspace).text
    workspace.templates_dir.mkdir()
    (workspace.templates_dir / "newsletter.txt.j2").write_text("Our own text\n", encoding="utf-8")
    assert _compose(workspace).text == "Our own text\n"


def test_an_error_in_a_default_template_names_the_package_file(workspace):
    shutil.rmtree(workspace.templates_dir)
    workspace.templates_dir.mkdir()
    # The workspace's text template runs the default HTML one without its words.
    (workspace.templates_dir / "newsletter.txt.j2").write_text(
        '{% with strings = none %}{% include "newsletter.mjml.j2" %}{% endwith %}\n', encoding="utf-8")
    default = DEFAULT_TEMPLATES / "newsletter.mjml.j2"
    lines = default.read_text(encoding="utf-8").split("\n")
    line = next(n for n, text in enumerate(lines, 1) if "{{ strings." in text)
    with pytest.raises(TemplateError) as caught:
        _compose(workspace)
    assert str(caught.value).startswith(f"{default}:{line}: template failed: ")


def test_a_missing_include_is_a_clear_error(workspace):
    template = workspace.templates_dir / "newsletter.txt.j2"
    template.write_text('{% include "partials/footer.j2" %}\n', encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        _compose(workspace)
    assert str(caught.value) == (
        f"{workspace.templates_dir}: template partials/footer.j2 not found "
        "(put it in this templates folder; `mailer templates copy` writes the defaults there)")


def test_copy_writes_the_defaults_and_never_overwrites(workspace):
    shutil.rmtree(workspace.templates_dir)
    folder = workspace.templates_dir
    first = copy_templates(folder)
    assert first.written == [folder / "newsletter.mjml.j2", folder / "newsletter.txt.j2"]
    assert (folder / "newsletter.txt.j2").read_bytes() == (DEFAULT_TEMPLATES / "newsletter.txt.j2").read_bytes()
    (folder / "newsletter.txt.j2").write_text("edited\n", encoding="utf-8")
    second = copy_templates(folder)
    assert (second.written, second.same, second.kept) == (
        [], [folder / "newsletter.mjml.j2"], [folder / "newsletter.txt.j2"])
    assert (folder / "newsletter.txt.j2").read_text(encoding="utf-8") == "edited\n"


def test_templates_copy_reports_each_file(run_mailer, workspace_dir):
    shutil.rmtree(workspace_dir / "templates")
    (workspace_dir / "templates").mkdir()
    (workspace_dir / "templates" / "newsletter.txt.j2").write_text("edited\n", encoding="utf-8")
    result = run_mailer("templates", "copy")
    assert result.exit_code == 0, result.output
    folder = workspace_dir / "templates"
    assert result.output.splitlines() == [
        f"wrote {folder / 'newsletter.mjml.j2'}",
        f"kept {folder / 'newsletter.txt.j2'} (differs from the default; delete it to copy the default again)",
    ]


def test_templates_copy_of_an_unknown_name_is_an_error(run_mailer):
    result = run_mailer("templates", "copy", "newsletter.html.j2")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: no default template 'newsletter.html.j2' (choose from newsletter.mjml.j2, newsletter.txt.j2)")
