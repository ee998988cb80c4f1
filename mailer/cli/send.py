"""Sending an issue, and the ledger of every send: send-issue, status."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ..compose import build
from ..errors import MailerError
from ..send import campaign as sending
from ..send.engine import Progress
from ..send.status import SendStatus, sends_status, summary, unfinished
from ..send.transports import open_transport
from ..store import SendCounts, Store
from ..subscribers.addresses import parse_address
from ..tokens import load_secret
from .options import (
    current_workspace,
    echo_json,
    json_option,
    reading_store,
    yes_option,
)


@click.command("send-issue")
@click.argument("issue")
@yes_option("Do not ask before sending.")
@click.option("--dry-run", is_flag=True, help="Show the plan and who would be skipped; send and record nothing.")
@click.option("--to", "test_address", metavar="ADDRESS",
              help="Send one test message to ADDRESS; the ledger records nothing.")
@click.option("--rate", type=click.FloatRange(min=0.01), help="Messages per second.")
@click.option("--concurrency", type=click.IntRange(1, 64), help="Messages in flight at once.")
@click.option("--retry-unknown", is_flag=True,
              help="Also send to recipients whose earlier attempt has an unknown outcome.")
@click.option("--retry-failed", is_flag=True,
              help="Also send to recipients whose failure had a cause that passes (an outage); "
                   "refusals for good stay failed.")
@click.option("--force", is_flag=True, help="Go on although the issue changed since its send began.")
def send_issue(issue: str, yes: bool, dry_run: bool, test_address: str | None,
               rate: float | None, concurrency: int | None, retry_unknown: bool, retry_failed: bool,
               force: bool) -> None:
    """Send ISSUE to every active subscriber, or resume its send.

    Renders and lints first, shows the plan and asks. Every recipient is
    recorded in the ledger (sent, failed with its reason, suppressed or
    unknown), so running the same command again resumes where the last run
    stopped and never sends anyone the issue twice. Ctrl-C (or SIGTERM,
    SIGHUP) finishes the messages in flight, records them and exits 130
    (143, 129).

    \b
    Example:
        mailer send-issue 2024-26 --to me@example.com
        mailer send-issue 2024-26 --yes
    """
    workspace = current_workspace()
    rendered = build.render_checked(workspace, workspace.issue_path(issue))
    concurrency = concurrency or workspace.settings.transport.concurrency
    outbox = workspace.outbox_dir(rendered.issue.stem, tests=bool(test_address))
    transport = open_transport(workspace.settings, outbox, concurrency)
    try:
        if test_address:
            _send_test(workspace, transport, rendered, test_address)
            return
        if not workspace.store_path.exists():
            raise MailerError("no subscribers yet: nobody to send to",
                              hint="import them with `mailer subscribers import FILE`")
        with Store.open(workspace.store_path) as store:
            _send(workspace, store, transport, rendered, yes=yes, dry_run=dry_run, rate=rate,
                  concurrency=concurrency, retry_unknown=retry_unknown, retry_failed=retry_failed,
                  force=force)
    finally:
        transport.close()


def _send_test(workspace, transport, rendered, address: str) -> None:
    message_id = sending.send_test(transport, rendered, workspace.settings, parse_address(address).email,
                                   load_secret(workspace.subscribers_dir))
    click.echo(f"Sent a test of {rendered.issue.stem} to {address} through {transport.describe()} ({message_id}).")


def _send(workspace, store, transport, rendered, *, yes, dry_run, rate, concurrency,
          retry_unknown, retry_failed, force) -> None:
    stem = rendered.issue.stem
    plan = sending.make_plan(store, transport, rendered, workspace.settings, rate, retry_unknown,
                             retry_failed)
    if plan.changed and not force:
        raise sending.refuse_changed(stem)
    if plan.done:
        click.echo(f"{stem} is already sent: {_summary(plan.counts)}.")
        _exit_unless_done(plan.counts, stem)
        return
    _print_plan(plan)
    if dry_run:
        for email, status in store.skipped_subscribers():
            click.echo(f"  skip {email}: {status}")
        for email, reason in plan.refused.items():
            click.echo(f"  skip {email}: {reason}")
        click.echo("Dry run: nothing sent, nothing recorded.")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise MailerError("not sending without confirmation", hint="pass --yes to send without asking")
        click.confirm("Send now?", abort=True)
    with sending.send_lock(workspace.send_lock_path), _sending_progress(plan.recipients) as progress:
        report = sending.run_send(
            store, transport, rendered, workspace.settings, secret=load_secret(workspace.subscribers_dir),
            rate=plan.rate, concurrency=concurrency, quota_left=plan.quota_left,
            retry_unknown=retry_unknown, retry_failed=retry_failed, force=force, on_progress=progress)
    _print_outcome(report, stem)


def _print_plan(plan: sending.Plan) -> None:
    quota = "" if plan.quota_left == float("inf") else f", {int(plan.quota_left)} left of today's quota"
    click.echo(f"Subject:    {plan.subject}")
    click.echo(f"Recipients: {plan.recipients}"
               + (f" (resuming; {plan.counts['sent']} already sent)" if plan.resuming else ""))
    if plan.resuming and plan.counts["inflight"]:
        click.echo(f"In flight:  {plan.counts['inflight']} ({_IN_FLIGHT})")
    click.echo(f"Suppressed: {plan.suppressed}")
    click.echo(f"Transport:  {plan.transport}, {plan.rate:g} messages/s{quota}")
    click.echo(f"Estimate:   {_duration(plan.estimate_seconds)}")


@contextmanager
def _sending_progress(recipients: int) -> Iterator[Callable[[Progress], None]]:
    """A progress bar on standard error, fed by the engine's reports of progress."""
    with click.progressbar(
            length=recipients, label="Sending", show_eta=True, show_pos=True,
            item_show_func=lambda p: p and f"sent {p.sent}, failed {p.failed}, {p.rate:g}/s",
            file=sys.stderr) as bar:
        done = 0

        def progress(p: Progress) -> None:
            nonlocal done
            now_done = p.sent + p.failed + p.unknown
            bar.update(now_done - done, p)
            done = now_done

        yield progress


def _print_outcome(report: sending.SendReport, stem: str) -> None:
    if report.interrupted_before:
        click.echo(f"{report.interrupted_before} recipient(s) of an interrupted run have an unknown outcome.")
    click.echo(f"{stem}: {_summary(report.counts)}.")
    if report.run.stopped and not report.run.interrupted:
        click.echo(f"Stopped: {report.run.stopped}", err=True)
    if report.run.interrupted:
        click.echo(f"Interrupted. Resume with: mailer send-issue {stem}", err=True)
        click.get_current_context().exit(report.exit_status)
    _exit_unless_done(report.counts, stem)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _summary(counts: SendCounts) -> str:
    return ", ".join(f"{count} {what}" for what, count in summary(counts).items())


# What a user can do about the recipients a send has not reached yet.
_WHAT_TO_DO = {
    "failed": "see `mailer status {stem}`",
    "unknown": "--retry-unknown sends to them again",
    "pending": "run the same command again to resume",
    "in flight": "a stopped run left them; the next run counts them unknown",
}

_IN_FLIGHT = ("handed over and not recorded yet; unless a send is running, a stopped run left them, "
              "and the next run counts them unknown (--retry-unknown sends to them again)")


def _exit_unless_done(counts: SendCounts, stem: str) -> None:
    """Exit 1 with a line saying what is left, unless everyone was sent or suppressed."""
    left = unfinished(counts)
    if left:
        what_to_do = dict(_WHAT_TO_DO)
        if counts.temporary_failed:
            what_to_do["failed"] += (f"; {counts.temporary_failed} of them from a cause that passes:"
                                     " --retry-failed sends to them again")
        click.echo("Not everyone was sent the issue: " + "; ".join(
            f"{count} {why} ({what_to_do[why].format(stem=stem)})" for why, count in left.items()) + ".",
            err=True)
        click.get_current_context().exit(1)


@click.command()
@click.argument("issue", required=False)
@json_option("Print the counts as JSON.")
def status(issue: str | None, as_json: bool) -> None:
    """Show the ledger of each send: sent, failed (with reasons), unknown, suppressed, pending.

    ISSUE (a path or a stem) shows just that issue's send.

    \b
    Example:
        mailer status 2024-26 --json
    """
    stem = Path(issue).stem if issue else None
    with reading_store() as store:
        report = sends_status(store, stem)
    if as_json:
        echo_json([s.as_dict() for s in report] if stem is None else report[0].as_dict())
        return
    if not report:
        click.echo("No issue has been sent yet.")
    for send in report:
        _print_status(send)


def _print_status(send: SendStatus) -> None:
    click.echo(f"{send.issue} ({'finished' if send.finished else 'open'}): {send.sent} sent, "
               f"{send.failed} failed, {send.unknown} unknown, {send.suppressed} suppressed, "
               f"{send.pending} pending" + (f", {send.in_flight} in flight" if send.in_flight else ""))
    if send.in_flight:
        click.echo(f"  in flight: {_IN_FLIGHT}")
    for reason in send.failed_reasons:
        again = "  (temporary: --retry-failed sends to them again)" if reason.temporary else ""
        click.echo(f"  {reason.count} × {reason.reason}{again}")
    for reason in send.suppressed_reasons:
        click.echo(f"  suppressed: {reason.count} × {reason.reason}")
    click.echo(f"  feedback: {send.delivered} delivered, {send.unsubscribed} unsubscribed")
    for rate in send.review_rates:
        verdict = "  ABOVE the review threshold" if rate.above_threshold else ""
        click.echo(f"  {_RATE_LABELS[rate.kind]}: {rate.count} ({rate.rate:.2%} of sent; "
                   f"SES reviews an account at {rate.threshold:.1%}){verdict}")


_RATE_LABELS = {"bounced": "bounces", "complained": "complaints"}

COMMANDS = [send_issue, status]
