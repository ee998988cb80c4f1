"""Unsubscribe server benchmark: a burst of one-click POSTs, and a mixed load.

In one run, against `mailer serve` (waitress, in its own process) and then
against the reference, the standard library's threaded wsgiref server the
command used before, built here from the same app (also in its own process):

  1. burst: CLIENTS concurrent clients × POSTS one-click POSTs each (the
     reference: × REFERENCE_POSTS, as its resets and retried SYNs make it slow), every
     POST a distinct valid token of a store of SUBSCRIBERS readers, a new
     connection per POST (as mailbox providers make them). Counts answers
     200, connection resets, other errors; p50/p99 latency; then the
     unsubscribes recorded in the store;
  2. mixed: MIXED requests from the same number of clients, 3 GETs (link
     scanners, readers' browsers) to 1 POST, on readers the burst left
     alone: requests per second and p99.

Every client is a coroutine of one asyncio loop in this process; only
127.0.0.1 is used; every request has a timeout and every phase a deadline.

Usage: .venv/bin/python bench/serve_bench.py [--clients 50] [--posts 300] [--mixed 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailer.store import Store  # noqa: E402
from mailer.tokens import SECRET_ENV  # noqa: E402
from mailer.workspace import Workspace  # noqa: E402

from bench.workspace_copy import copy_workspace  # noqa: E402

SECRET = "bench-secret-" + "x" * 32
REQUEST_TIMEOUT = 30.0
PHASE_DEADLINE = 600.0
STARTUP_DEADLINE = 30.0


def make_workspace(folder: Path, subscribers: int) -> tuple[Path, int]:
    """A copy of the example workspace with `subscribers` readers and one send begun."""
    from mailer.subscribers.importer import import_file

    workspace = copy_workspace(ROOT, folder / "workspace")
    csv_path = folder / "readers.csv"
    csv_path.write_text("email,name\n" + "".join(f"reader{n}@example.com,Reader {n}\n"
                                                 for n in range(subscribers)), encoding="utf-8")
    with Store.open(workspace / "subscribers" / "mailer.db") as store:
        import_file(store, csv_path, actor="bench")
        send = store.begin_send("2024-26", "hash", "Subject")
    return workspace, send.id


def start_server(kind: str, workspace: Path, threads: int) -> tuple[subprocess.Popen, int]:
    """`mailer serve` or the reference in a process of its own, and the port it listens on."""
    env = {**os.environ, SECRET_ENV: SECRET}
    if kind == "waitress":
        command = [sys.executable, "-m", "mailer", "serve", "--port", "0", "--threads", str(threads)]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--reference-server"]
    process = subprocess.Popen(command, cwd=workspace, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + STARTUP_DEADLINE
    line = process.stdout.readline()
    if "Serving unsubscribes at http://127.0.0.1:" not in line or time.monotonic() > deadline:
        process.kill()
        raise SystemExit(f"{kind} did not start: {line!r}")
    port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
    return process, port


def serve_reference() -> None:
    """The server `mailer serve` ran before: wsgiref, a thread per request, backlog 5."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    from mailer.web.server import QuietServer
    from mailer.web.unsubscribe import create_app

    class Handler(WSGIRequestHandler):
        timeout = 30

        def log_message(self, format: str, *args) -> None:
            pass

    class Server(QuietServer, WSGIServer):
        pass

    server = Server(("127.0.0.1", 0), Handler)
    server.set_app(create_app(Path.cwd()))
    print(f"Serving unsubscribes at http://127.0.0.1:{server.server_address[1]}/unsubscribe", flush=True)
    server.serve_forever()


async def one_request(port: int, method: str, token: str) -> tuple[str, float]:
    """One request on a new connection: its outcome ('200', 'reset', 'error …') and seconds."""
    body = b"List-Unsubscribe=One-Click" if method == "POST" else b""
    head = (f"{method} /unsubscribe?t={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + (f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
               if method == "POST" else "") + "\r\n").encode("ascii")
    start = time.perf_counter()
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(head + body)
                await writer.drain()
                answer = await reader.read()
            finally:
                writer.close()
    except (ConnectionResetError, BrokenPipeError):
        return "reset", time.perf_counter() - start
    except (OSError, TimeoutError) as exc:
        return f"error {type(exc).__name__}", time.perf_counter() - start
    elapsed = time.perf_counter() - start
    if not answer:
        return "reset", elapsed
    status = answer.split(b" ", 2)[1].decode("ascii", "replace") if b" " in answer else "?"
    return status, elapsed


async def load(port: int, work: list[tuple[str, str]], clients: int) -> tuple[list[tuple[str, float]], float]:
    """Run `work` (method, token) from `clients` concurrent clients; outcomes and wall seconds."""
    queue = list(reversed(work))
    results: list[tuple[str, float]] = []

    async def client() -> None:
        while queue:
            method, token = queue.pop()
            results.append(await one_request(port, method, token))

    start = time.perf_counter()
    async with asyncio.timeout(PHASE_DEADLINE):
        await asyncio.gather(*(client() for _ in range(clients)))
    return results, time.perf_counter() - start


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def summary(results: list[tuple[str, float]], seconds: float) -> dict:
    outcomes = [outcome for outcome, _ in results]
    latencies = [elapsed for _, elapsed in results]
    kinds = sorted({o for o in outcomes if o not in ("200", "reset")})
    return {"kinds": ", ".join(f"{outcomes.count(k)} × {k}" for k in kinds), "ok": outcomes.count("200"), "resets": outcomes.count("reset"),
            "errors": len(outcomes) - outcomes.count("200") - outcomes.count("reset"),
            "p50": percentile(latencies, 0.50) * 1000, "p99": percentile(latencies, 0.99) * 1000,
            "rate": len(results) / seconds}


def run(kind: str, folder: Path, base: Path, send_id: int, args: argparse.Namespace) -> dict:
    """Both phases against a fresh copy of the store, on server `kind`."""
    workspace = folder / kind
    shutil.copytree(base, workspace)
    list_id = Workspace(workspace).settings.list_id
    with Store.open(workspace / "subscribers" / "mailer.db") as store:
        issue = store.signer(SECRET.encode(), list_id).issue  # bound to this store and list
    posts = args.posts if kind == "waitress" else args.reference_posts
    burst_ids = list(range(1, args.clients * posts + 1))
    burst = [("POST", issue(n, send_id)) for n in burst_ids]
    spare = list(range(args.clients * args.posts + 1, args.subscribers + 1))
    picks = random.Random(12).choices(spare, k=args.mixed)
    mixed = [("POST" if n % 4 == 0 else "GET", issue(picks[n], send_id)) for n in range(args.mixed)]
    process, port = start_server(kind, workspace, args.threads)
    try:
        burst_results, burst_seconds = asyncio.run(load(port, burst, args.clients))
        mixed_results, mixed_seconds = asyncio.run(load(port, mixed, args.clients))
    finally:
        process.terminate()
        process.wait(timeout=30)
    with Store.open(workspace / "subscribers" / "mailer.db") as store:
        recorded = sum(store.subscriber_by_id(n).status == "unsubscribed" for n in burst_ids)
    return {"burst": summary(burst_results, burst_seconds), "mixed": summary(mixed_results, mixed_seconds),
            "recorded": recorded, "posted": len(burst_ids)}

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--posts", type=int, default=300, help="one-click POSTs per client in the burst")
    parser.add_argument("--reference-posts", type=int, default=40,
                        help="POSTs per client in the reference's burst (its resets make it slow)")
    parser.add_argument("--mixed", type=int, default=2000, help="requests of the mixed load")
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=8, help="mailer serve --threads")
    parser.add_argument("--only", choices=("waitress", "wsgiref"), help="run one server only")
    parser.add_argument("--reference-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_server:
        return serve_reference()
    if args.subscribers < args.clients * args.posts + 1000:
        parser.error("--subscribers must exceed clients × posts by 1,000 (readers for the mixed load)")
    print(f"load average {os.getloadavg()[0]:.1f}; {args.subscribers:,} subscribers; "
          f"burst {args.clients} clients × {args.posts} POSTs "
          f"(reference: × {args.reference_posts}); mixed {args.mixed} requests")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base, send_id = make_workspace(folder, args.subscribers)
        for kind in ("waitress", "wsgiref"):
            if args.only and kind != args.only:
                continue
            result = run(kind, folder, base, send_id, args)
            b, m = result["burst"], result["mixed"]
            print(f"{kind:>8}  burst: {b['ok']} × 200, {b['resets']} resets, {b['errors']} errors{' (' + b['kinds'] + ')' if b['kinds'] else ''}, "
                  f"p50 {b['p50']:.1f} ms, p99 {b['p99']:.1f} ms, {b['rate']:.0f} req/s; "
                  f"recorded {result['recorded']:,} of {result['posted']:,}")
            print(f"{'':>8}  mixed: {m['ok']} × 200, {m['resets']} resets, {m['errors']} errors{' (' + m['kinds'] + ')' if m['kinds'] else ''}, "
                  f"p99 {m['p99']:.1f} ms, {m['rate']:.0f} req/s")
    print(f"load average afterwards {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
