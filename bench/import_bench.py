"""Benchmark: import a 1,000,000-row Mailchimp-style export into a fresh store.

Run from the repository root (not part of the test suite):

    .venv/bin/python bench/import_bench.py [--rows N] [--keep DIR]

It writes the CSV, then runs, each in a fresh child process so that peak
memory (max RSS) belongs to that run alone:

- ``mailer``: `import_file` into a new store, as `mailer subscribers import`
  does (validation, merging, events, one transaction);
- ``reference``: the same file through `csv.reader` and one bare
  `executemany` of the same rows into a plain table with no index, with the
  same SQLite settings: the floor any import from CSV has to pay.

Peak memory is the run's max RSS; for mailer, which reads the file in a
second process while it writes the store, it is the sum of both processes'
max RSS (an upper bound: the two peaks need not coincide).

Targets: at least 50,000 rows/s, peak memory under 150 MB, and within 3× of
the reference's time. The figures go in bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = [
    "Email Address", "First Name", "Last Name", "Address", "Phone Number", "Birthday",
    "MEMBER_RATING", "OPTIN_TIME", "OPTIN_IP", "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE",
    "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC", "REGION", "LAST_CHANGED", "LEID", "EUID",
    "NOTES", "TAGS",
]
FIRST = ["Ann", "Bob", "Carla", "Dmitri", "Eve", "Fatima", "José", "Kenji", "Lena", "小明", "芳"]
LAST = ["Lee", "Smith", "García", "Ivanov", "Nguyen", "Okafor", "王", "李", "Müller", "O'Brien"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "Example.co.uk"]
ZONES = [("Europe/London", "GB", "0", "1"), ("Asia/Shanghai", "CN", "8", "8"),
         ("America/New_York", "US", "-5", "-4"), ("Europe/Madrid", "ES", "1", "2")]


def generate(path: Path, rows: int) -> None:
    """A Mailchimp 'subscribed members' export of `rows` distinct people."""
    rng = random.Random(2024)
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            zone, cc, gmt, dst = rng.choice(ZONES)
            day = f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            writer.writerow([
                f"user{i}.{rng.randint(0, 999)}@{rng.choice(DOMAINS)}", first, last,
                "" if i % 3 else f"{i} Main St, Springfield", "" if i % 4 else f"555-{i % 10000:04d}",
                "", str(rng.randint(1, 5)), f"{day} 09:14:31", f"192.0.2.{i % 250}",
                f"{day} 09:20:02", f"198.51.100.{i % 250}", "", "", gmt, dst, zone, cc, "",
                f"{day} 10:00:00", str(100000 + i), f"{i:010x}", "",
                '"weekly","early reader"' if i % 5 == 0 else "",
            ])


def run_mailer(csv_path: Path, db_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import resource

    from mailer.subscribers.importer import import_file
    from mailer.store import Store

    with Store.open(db_path) as store:
        report = import_file(store, csv_path, actor="bench")
    assert report.imported == report.rows, report.as_dict()
    # The reading process has been waited for: its max RSS is the children's.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(report.rows, own + helpers)


def run_reference(csv_path: Path, db_path: Path) -> None:
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    with open(csv_path, encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        header = next(reader)
        columns = ", ".join(f"c{i} TEXT" for i in range(len(header)))
        db.execute(f"CREATE TABLE plain ({columns})")
        db.execute("BEGIN")
        db.executemany(f"INSERT INTO plain VALUES ({', '.join('?' * len(header))})", reader)
        db.execute("COMMIT")
    print(db.execute("SELECT count(*) FROM plain").fetchone()[0])


def measure(phase: str, csv_path: Path, db_path: Path) -> tuple[float, float, int]:
    """Seconds, peak RSS in MB, and rows of one phase run in its own process
    (with the processes it starts, when it reports their max RSS itself)."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, __file__, "--phase", phase, str(csv_path), str(db_path)],
                             stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    rows, *reported = map(int, child.stdout.read().split() or [0])
    if child.returncode:
        raise SystemExit(f"{phase} failed with status {child.returncode}")
    return elapsed, max([usage.ru_maxrss, *reported]) / 1024, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="Folder to keep the CSV and stores in.")
    parser.add_argument("--phase", choices=["mailer", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        (run_mailer if args.phase == "mailer" else run_reference)(*args.paths)
        return

    folder = args.keep or Path(tempfile.mkdtemp(prefix="mailer-import-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "members.csv"
    started = time.perf_counter()
    generate(csv_path, args.rows)
    print(f"generated {args.rows:,} rows, {csv_path.stat().st_size / 1e6:.0f} MB "
          f"in {time.perf_counter() - started:.1f} s")
    print(f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    results = {}
    for phase in ("reference", "mailer"):
        db_path = folder / f"{phase}.db"
        for leftover in folder.glob(f"{phase}.db*"):
            leftover.unlink()
        seconds, peak, rows = measure(phase, csv_path, db_path)
        results[phase] = seconds
        print(f"{phase:<10} {rows:>9,} rows  {seconds:6.2f} s  {rows / seconds:>9,.0f} rows/s  "
              f"peak {peak:5.0f} MB")
    print(f"mailer / reference: {results['mailer'] / results['reference']:.2f}×")


if __name__ == "__main__":
    main()
