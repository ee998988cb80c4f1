"""`mailer doctor`: everything between this workspace and a delivered issue, checked.

One module per area — `workspace` (settings, render, lint), `ses`, `dns`,
`smtp`, `unsubscribe` — each check a function returning `Check` lines;
`diagnose` runs the ones the configured transport needs and returns the
`Report` the command prints. It only reads: nothing is sent, nothing in
the workspace or the AWS account changes.
"""

from __future__ import annotations

from ..errors import MailerError
from ..workspace import Workspace
from . import dns, smtp, unsubscribe
from . import workspace as workspace_checks
from .report import Check, Report, guarded, ok, problem
from .ses import Identity, SesDoctor

__all__ = ["Check", "Report", "diagnose"]


def diagnose(workspace: Workspace, *, online: bool = False, lookup: dns.Lookup | None = None) -> Report:
    """Every check for `workspace`'s transport; `lookup` defaults to ``MAILER_DNS_SERVER`` or the system's."""
    report = Report()
    first, settings = workspace_checks.settings(workspace)
    report.checks.append(first)
    if settings is None:
        return report
    report.checks += guarded("issue", lambda: workspace_checks.newest_issue(workspace))
    kind = settings.transport.kind
    if kind == "outbox":
        report.checks.append(ok("transport", "outbox: messages are written under outbox/, none delivered"))
    if kind == "ses":
        doctor = SesDoctor(settings)
        report.checks += guarded("ses", doctor.checks)
        report.checks += guarded("feedback-queue", doctor.queue)
        report.checks += _dns(lookup, doctor.identity, ses=True)
    elif kind == "smtp":
        report.checks += guarded("smtp", lambda: smtp.checks(settings.smtp))
        report.checks += _dns(lookup, Identity(settings.sender_domain), ses=False)
    address = settings.unsubscribe.url
    report.checks += guarded("unsubscribe", lambda: unsubscribe.url(address, delivering=kind != "outbox"))
    if online:
        report.checks += guarded("unsubscribe-online", lambda: unsubscribe.online(address))
    return report


def _dns(lookup: dns.Lookup | None, identity: Identity, *, ses: bool) -> list[Check]:
    try:
        lookup = lookup or dns.Lookup.from_environment()
    except MailerError as exc:
        return [problem("dns", exc.message, exc.hint or "")]
    found = guarded("spf", lambda: dns.spf(lookup, identity, ses=ses))
    found += guarded("dmarc", lambda: dns.dmarc(lookup, identity, alignment=ses))
    if ses:
        found += guarded("dkim-dns", lambda: dns.dkim(lookup, identity))
    return found
