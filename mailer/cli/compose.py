"""Commands on one issue before it is sent: render, lint, preview."""

from __future__ import annotations

from pathlib import Path

import click

from ..compose import build
from ..compose.lint import describe_checks
from ..compose.lint import lint as lint_issue
from ..send import sample
from ..web.preview import PreviewServer, open_browser
from .options import current_workspace


@click.command()
@click.argument("issue")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the files (default: build/ in the workspace).")
def render(issue: str, out_dir: Path | None) -> None:
    """Render ISSUE to HTML, plain text and a sample .eml message.

    ISSUE is a path, or the name of a file in the workspace's issues/ folder.

    \b
    Example:
        mailer render 2024-26 --out /tmp/preview
    """
    workspace = current_workspace()
    rendered = build.render_issue(workspace, workspace.issue_path(issue))
    paths = sample.write_files(workspace, rendered, out_dir or workspace.build_dir)
    click.echo(f"Rendered {rendered.subject!r}:")
    for path in paths:
        click.echo(f"  {path}")


@click.command(epilog="\b\nChecks:\n" + "\n".join(f"  - {line}" for line in describe_checks()))
@click.argument("issue")
@click.pass_context
def lint(ctx: click.Context, issue: str) -> None:
    """Check ISSUE before it is sent; exit 1 if there are errors.

    Renders the issue as it would be sent and runs every check listed
    below; each finding names the issue's line where it has one.

    \b
    Example:
        mailer lint 2024-26
    """
    workspace = current_workspace()
    path = workspace.issue_path(issue)
    report = lint_issue(build.render_issue(workspace, path), workspace.settings)
    for finding in report.findings:
        click.echo(finding.format(str(path)))
    errors, warnings = len(report.errors), len(report.warnings)
    click.echo(f"{errors} error(s), {warnings} warning(s)")
    if errors:
        ctx.exit(1)


@click.command()
@click.argument("issue", required=False)
@click.option("--port", type=click.IntRange(0, 65535), default=0,
              help="Port on 127.0.0.1 (default: a free one).")
@click.option("--no-open", is_flag=True, help="Do not open a browser.")
def preview(issue: str | None, port: int, no_open: bool) -> None:
    """Show ISSUE in the browser, updated each time a source is saved.

    Saving the issue, a template or newsletter.toml re-renders it and the
    page follows without a refresh. The page has the envelope, desktop and
    phone widths, a dark-mode view, the text part, the HTML source and the
    checks of `mailer lint`. Without ISSUE it opens the newest issue; the
    page switches between all of them.

    \b
    Example:
        mailer preview 2024-26 --port 8025
    """
    workspace = current_workspace()
    path = workspace.issue_path(issue) if issue else None
    server = PreviewServer(workspace, path, port=port, log=lambda line: click.echo(line, err=True))
    shown = server.preview.default_issue() or "an empty issues folder"
    click.echo(f"Previewing {shown} at {server.url} (Ctrl+C to stop)")
    if not no_open and not open_browser(server.url):
        click.echo("Open that address in a browser.")
    server.serve()


COMMANDS = [render, lint, preview]
