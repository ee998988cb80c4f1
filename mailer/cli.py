"""The `mailer` command line: thin commands, one call each, one-line errors.

Every command finds its workspace by walking up from the current folder (or
takes --workspace), calls one function of the library, and prints. A
`MailerError` becomes ``Error: <one line>`` and exit status 1; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from . import build
from .errors import MailerError
from .lint import lint as lint_issue
from .preview import PreviewServer, open_browser
from .workspace import Workspace, find_workspace, open_workspace


class _Group(click.Group):
    """Turns library errors into click's one-line ``Error:`` messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MailerError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group)
@click.option(
    "--workspace", "-w", type=click.Path(file_okay=False, path_type=Path),
    help="Workspace folder (default: the nearest folder upwards with newsletter.toml).",
)
@click.version_option(package_name="mailer")
@click.pass_context
def cli(ctx: click.Context, workspace: Path | None) -> None:
    """Newsletters from a folder of Markdown files.

    \b
    Example:
        mailer render issues/2024-26.md
    """
    # Resolved by each command, so that --help works outside a workspace.
    ctx.meta["workspace_arg"] = workspace


def _workspace(ctx: click.Context) -> Workspace:
    given = ctx.find_root().meta.get("workspace_arg")
    return open_workspace(given) if given else find_workspace()


@cli.command()
@click.argument("issue")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the files (default: build/ in the workspace).")
@click.pass_context
def render(ctx: click.Context, issue: str, out_dir: Path | None) -> None:
    """Render ISSUE to HTML, plain text and a sample .eml message.

    ISSUE is a path, or the name of a file in the workspace's issues/ folder.

    \b
    Example:
        mailer render 2024-26 --out /tmp/preview
    """
    workspace = _workspace(ctx)
    rendered = build.render_issue(workspace, workspace.issue_path(issue))
    paths = build.write_files(workspace, rendered, out_dir or workspace.build_dir)
    click.echo(f"Rendered {rendered.subject!r}:")
    for path in paths:
        click.echo(f"  {path}")


@cli.command()
@click.argument("issue")
@click.pass_context
def lint(ctx: click.Context, issue: str) -> None:
    """Check ISSUE before it is sent; exit 1 if there are errors.

    Reports the HTML size against Gmail's 102 KB clipping limit, images
    without alt text, unrendered template syntax, a missing preheader,
    links that are not https, empty sections and duplicate links.

    \b
    Example:
        mailer lint 2024-26
    """
    workspace = _workspace(ctx)
    path = workspace.issue_path(issue)
    report = lint_issue(build.render_issue(workspace, path))
    for finding in report.findings:
        click.echo(finding.format(str(path)))
    errors, warnings = len(report.errors), len(report.warnings)
    click.echo(f"{errors} error(s), {warnings} warning(s)")
    if errors:
        ctx.exit(1)


@cli.command()
@click.argument("issue", required=False)
@click.option("--port", type=click.IntRange(0, 65535), default=0,
              help="Port on 127.0.0.1 (default: a free one).")
@click.option("--no-open", is_flag=True, help="Do not open a browser.")
@click.pass_context
def preview(ctx: click.Context, issue: str | None, port: int, no_open: bool) -> None:
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
    workspace = _workspace(ctx)
    path = workspace.issue_path(issue) if issue else None
    server = PreviewServer(workspace, path, port=port, log=lambda line: click.echo(line, err=True))
    shown = server.preview.default_issue() or "no issue yet"
    click.echo(f"Previewing {shown} at {server.url} (Ctrl+C to stop)")
    if not no_open and not open_browser(server.url):
        click.echo("Open that address in a browser.")
    server.serve()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="mailer")
