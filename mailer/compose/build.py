"""Building an issue of a workspace: read it, compose it, check it.

The one place that ties the pure stages to the file system, shared by
`mailer render`, `mailer lint`, the preview and the send, so that each of
them sees exactly the same email.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MailerError
from ..tokens import unsubscribe_url
from ..workspace import Workspace
from .issue import read_issue
from .lint import lint
from .render import Recipient, RenderedIssue, compose

SAMPLE_ADDRESS = "reader@example.com"


def render_issue(workspace: Workspace, issue_path: Path) -> RenderedIssue:
    """Parse and compose the issue at `issue_path` with the workspace's templates."""
    return compose(read_issue(issue_path), workspace.settings, workspace.templates_dir)


def render_checked(workspace: Workspace, issue_path: Path) -> RenderedIssue:
    """Render the issue and lint it; lint errors stop here, before anything is sent."""
    rendered = render_issue(workspace, issue_path)
    errors = lint(rendered, workspace.settings).errors
    if errors:
        raise MailerError(
            f"{len(errors)} lint error(s), first: {errors[0].format(str(issue_path))}",
            hint=f"run `mailer lint {rendered.issue.stem}` for all of them")
    return rendered


def sample_recipient(workspace: Workspace) -> Recipient:
    """The recipient of sample messages: an example address and a marked token."""
    return Recipient(SAMPLE_ADDRESS, "", unsubscribe_url(workspace.settings.unsubscribe.url, "SAMPLE"))
