"""The workspace's own part: settings load, the newest issue renders, and lint passes.

Uses the very functions `mailer render` and `mailer lint` use, so what the
doctor says about an issue is what a send would find.
"""

from __future__ import annotations

from ..compose.build import render_issue
from ..compose.lint import lint
from ..config import Settings
from ..errors import MailerError
from ..workspace import Workspace, issue_files
from .report import Check, ok, problem, warning


def settings(workspace: Workspace) -> tuple[Check, Settings | None]:
    """newsletter.toml loads; without settings no other check can run."""
    try:
        loaded = workspace.settings
    except MailerError as exc:
        return problem("settings", str(exc)), None
    return ok("settings", f"{loaded.newsletter.name!r} from {loaded.sender.address}, "
                          f"transport {loaded.transport.kind}"), loaded


def newest_issue(workspace: Workspace) -> list[Check]:
    """The newest issue (last by name) renders with the templates, and lint finds no error."""
    issues = list(issue_files(workspace.issues_dir).values())
    if not issues:
        return [warning("issue", f"no issue in {workspace.issues_dir}", "write one as issues/<name>.md")]
    path = issues[-1]
    try:
        rendered = render_issue(workspace, path)
    except MailerError as exc:
        return [problem("issue", f"{path.name} does not render: {exc}")]
    found = [ok("issue", f"{path.name} renders: {rendered.subject!r}")]
    report = lint(rendered, workspace.settings)
    where = str(path.relative_to(workspace.root)) if path.is_relative_to(workspace.root) else str(path)
    if report.errors:
        found.append(problem("lint", f"{len(report.errors)} error(s), first: {report.errors[0].format(where)}",
                             f"run `mailer lint {path.stem}`; a send stops on them"))
    elif report.warnings:
        found.append(warning("lint", f"{len(report.warnings)} warning(s), first: "
                                     f"{report.warnings[0].format(where)}", f"run `mailer lint {path.stem}`"))
    else:
        found.append(ok("lint", f"{path.name}: no errors, no warnings"))
    return found
