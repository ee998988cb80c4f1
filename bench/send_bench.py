"""Send benchmark: message building, end-to-end sending, and memory of a large send.

In one run:
  1. build rate of the prepared-template fast path vs the `email` package,
     on the example issue, for the same recipients;
  2. end-to-end send rate (ledger, tokens, rate limiter, threads, boto3)
     against a minimal local HTTP endpoint that answers SESv2 SendEmail at
     once (bench/ses_endpoint.py, in its own process), vs a bare boto3
     thread-pool loop of SendEmail calls on the same endpoint with the same
     concurrency and the same raw message;
  3. peak memory (max RSS) of a send to 100,000 recipients, in a fresh
     process, against the same endpoint.

Usage: .venv/bin/python bench/send_bench.py [--messages N] [--recipients N] [--concurrency N]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailer.compose.build import render_issue  # noqa: E402
from mailer.compose.render import Recipient  # noqa: E402
from mailer.send.message import MessageTemplate, build_message_stdlib, new_envelope  # noqa: E402
from mailer.workspace import Workspace  # noqa: E402

from bench.workspace_copy import copy_workspace  # noqa: E402

SECRET = b"bench-secret-" + b"x" * 32


def recipients(n: int) -> list[Recipient]:
    return [Recipient(f"reader{i}@example.com", f"读者 {i}" if i % 2 else "",
                      f"https://newsletter.example.com/unsubscribe?t={'A' * 39}{i}") for i in range(n)]


def build_rates(workspace: Workspace, fast_n: int, slow_n: int) -> tuple[float, float, int]:
    rendered = render_issue(workspace, ROOT / "issues" / "2024-26.md")
    settings = workspace.settings
    template = MessageTemplate(rendered, settings)
    people = recipients(fast_n)
    envelope = new_envelope(settings)
    start = time.perf_counter()
    for person in people:
        raw = template.build(person, new_envelope(settings))
    fast = fast_n / (time.perf_counter() - start)
    start = time.perf_counter()
    for person in people[:slow_n]:
        build_message_stdlib(rendered, settings, person, envelope)
    slow = slow_n / (time.perf_counter() - start)
    return fast, slow, len(raw)


def start_endpoint() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "ses_endpoint.py"), "0"],
                               stdout=subprocess.PIPE, text=True)
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}"


def aws_env(url: str) -> None:
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1", MAILER_SECRET=SECRET.decode())


def bare_boto3(n: int, concurrency: int, raw: bytes, sender: str) -> float:
    """The reference: SendEmail calls from a thread pool sharing one client, nothing else."""
    import boto3
    import botocore.config

    client = boto3.client("sesv2", config=botocore.config.Config(
        retries={"total_max_attempts": 1}, max_pool_connections=concurrency))

    def send(i: int) -> str:
        return client.send_email(FromEmailAddress=sender, Destination={"ToAddresses": [f"r{i}@example.com"]},
                                 Content={"Raw": {"Data": raw}})["MessageId"]

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, range(50)))  # warm the connections
        start = time.perf_counter()
        list(pool.map(send, range(n)))
        return n / (time.perf_counter() - start)


def make_workspace(folder: Path, count: int) -> Workspace:
    copy_workspace(ROOT, folder)
    with open(folder / "newsletter.toml", "a", encoding="utf-8") as config:
        config.write('\n[ses]\nregion = "us-east-1"\n')
    text = folder / "newsletter.toml"
    text.write_text(text.read_text(encoding="utf-8").replace('kind = "outbox"', 'kind = "ses"'), encoding="utf-8")
    csv = folder / "list.csv"
    with open(csv, "w", encoding="utf-8") as out:
        out.write("Email Address,First Name,Last Name\n")
        for i in range(count):
            out.write(f"reader{i}@example.com,名{i},王\n")
    from mailer.subscribers.importer import import_file
    from mailer.store import Store

    workspace = Workspace(folder)
    with Store.open(workspace.store_path) as store:
        import_file(store, csv, actor="bench")
    return workspace


def mailer_send(workspace: Workspace, concurrency: int) -> tuple[float, int]:
    from mailer.send.campaign import run_send
    from mailer.store import Store
    from mailer.send.transports import open_transport

    rendered = render_issue(workspace, workspace.issues_dir / "2024-26.md")
    transport = open_transport(workspace.settings, workspace.outbox_dir("2024-26"), concurrency)
    with Store.open(workspace.store_path) as store:
        start = time.perf_counter()
        report = run_send(store, transport, rendered, workspace.settings, secret=SECRET, rate=1e9,
                          concurrency=concurrency, quota_left=float("inf"))
        elapsed = time.perf_counter() - start
    transport.close()
    return report.counts["sent"] / elapsed, report.counts["sent"]


def memory_child(folder: str, concurrency: int) -> None:
    workspace = Workspace(Path(folder))
    rate, sent = mailer_send(workspace, concurrency)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{sent} {rate:.0f} {peak:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages of the end-to-end runs")
    parser.add_argument("--recipients", type=int, default=100_000, help="recipients of the memory run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.concurrency)
        return

    fast, slow, size = build_rates(Workspace(ROOT), 20_000, 300)
    print(f"message build, {size / 1024:.0f} KB messages:")
    print(f"  fast path (prepared template): {fast:10,.0f} msg/s")
    print(f"  email package:                 {slow:10,.0f} msg/s")
    print(f"  ratio:                         {fast / slow:10,.0f}x")

    endpoint, url = start_endpoint()
    try:
        aws_env(url)
        with tempfile.TemporaryDirectory() as tmp:
            workspace = make_workspace(Path(tmp), args.messages)
            rendered = render_issue(workspace, workspace.issues_dir / "2024-26.md")
            raw = MessageTemplate(rendered, workspace.settings).build(recipients(1)[0], new_envelope(workspace.settings))
            reference = bare_boto3(args.messages, args.concurrency, raw, workspace.settings.sender.address)
            ours, sent = mailer_send(workspace, args.concurrency)
        print(f"end-to-end against a local SESv2 endpoint, {args.messages} messages, "
              f"concurrency {args.concurrency}:")
        print(f"  bare boto3 thread pool:  {reference:8,.0f} msg/s")
        print(f"  mailer send:             {ours:8,.0f} msg/s  ({sent} sent)")
        print(f"  mailer / bare:           {ours / reference:8.0%}")

        with tempfile.TemporaryDirectory() as tmp:
            make_workspace(Path(tmp), args.recipients)
            out = subprocess.run([sys.executable, __file__, "--memory-child", tmp,
                                  "--concurrency", str(args.concurrency)],
                                 capture_output=True, text=True, check=True, env=os.environ)
            sent, rate, peak = out.stdout.split()
        print(f"send to {int(sent):,} recipients: {float(rate):,.0f} msg/s, peak memory (max RSS) {peak} MB")
    finally:
        endpoint.terminate()
        endpoint.wait()


if __name__ == "__main__":
    main()
