"""Subscriber files → validated, de-duplicated rows → the store, with a report.

People bring the files their last tool gave them: Mailchimp, Substack,
Buttondown and listmonk exports, a spreadsheet saved by Excel on a Chinese
Windows (GB18030, no BOM), a column of addresses pasted into a text file.
`import_file` reads them all without being told which, and accounts for every
row: imported, updated, unchanged, skipped (sticky status), merged (the
address repeats an earlier row) or rejected with its line and reason. The
counts add up to the file's data rows; blank rows are not data.

A problem with the whole file (not a text file, undecodable, no address
column, a quote that never closes) is a `SubscriberFileError` and nothing is
written. The file is read as a stream, a batch of rows at a time, so memory
stays flat however long it is, and the store is changed in one transaction
(see `store.ImportBatch`). A large file is read and checked in a second
process while this one writes the batches to the store.

How the file is read is `csvfile`'s, what its columns mean `columns`'s,
what one row becomes `rows`'s; this module drives them and the store.
"""

from __future__ import annotations

import csv
import io
import itertools
import marshal
import os
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..errors import AddressError, SubscriberFileError, os_reason
from ..store import Store
from .addresses import unsendable_reason
from .columns import Columns as _Columns  # noqa: F401  (see below)
from .columns import header_columns
from .csvfile import (
    DELIMITERS,
    MAX_LINE,
    Lines,
    detect_encoding,
    first_nonblank,
    first_row,
    open_source,
    sniff,
)
from .export import export_csv  # noqa: F401  (see below)
from .formulas import neutralise
from .report import ImportReport, Rejection, RejectionLog, RowWarning  # noqa: F401  (see below)
from .rows import ErasedRow
from .rows import converter as _converter

# The command line and the tests take `export_csv`, the report types and
# `_Columns` from this module, as they did when it held all of them. `_import`
# calls `_converter` by its name here, so that a test can replace it.


def import_file(
    store: Store,
    path: Path | str,
    *,
    actor: str,
    tags: tuple[str, ...] = (),
    resubscribe: bool = False,
    dry_run: bool = False,
    encoding: str | None = None,
    rejects: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import the subscriber file at `path` ('-' for standard input) into `store`.

    `tags` are added to every imported or updated subscriber. `rejects`, when
    given, receives every rejected row as CSV: its line, the reason, and the
    row's own cells, so it can be fixed and imported again. `progress` is
    called now and then with the bytes read so far and the file's size.
    """
    for tag in tags:
        if not tag.strip() or tag != tag.strip() or "," in tag:
            raise SubscriberFileError(
                f"bad --tag {tag!r}", hint="a tag is a word or phrase without commas"
            )
    with open_source(path) as (binary, shown):
        codec, encoding_label = detect_encoding(binary, shown, encoding)
        text = io.TextIOWrapper(binary, encoding=codec, errors="strict", newline="")
        lines = Lines(text, binary, progress)
        with _reading_errors(lines, shown, encoding_label):
            return _import(
                store, lines, shown, codec=codec, encoding_label=encoding_label, actor=actor,
                tags=tags, resubscribe=resubscribe, dry_run=dry_run, rejects=rejects,
            )


@contextmanager
def _reading_errors(lines: Lines, shown: str, encoding_label: str) -> Iterator[None]:
    """A file that stops decoding or reading partway, as one-line errors."""
    try:
        yield
    except UnicodeDecodeError:
        raise SubscriberFileError(
            f"became undecodable as {encoding_label} near line {lines.number + 1}",
            path=shown, hint="was the file changed while it was read? import it again",
        ) from None
    except OSError as exc:
        raise SubscriberFileError(f"cannot read: {os_reason(exc)}", path=shown) from None


def _import(
    store: Store, lines: Lines, shown: str, *, codec: str, encoding_label: str, actor: str,
    tags: tuple[str, ...], resubscribe: bool, dry_run: bool, rejects: Path | None,
) -> ImportReport:
    first_line, rest = first_nonblank(lines)
    if first_line is None:
        raise SubscriberFileError("is empty: no rows to import", path=shown)
    delimiter = sniff(first_line)
    csv.field_size_limit(MAX_LINE)
    # A file with no delimiter on its first line is a column of addresses,
    # pasted from anywhere: '"Ann Lee" <ann@example.com>' is a line of it, not
    # bad CSV quoting.
    quoting = csv.QUOTE_MINIMAL if delimiter in first_line else csv.QUOTE_NONE
    reader = csv.reader(itertools.chain((first_line,), rest), delimiter=delimiter,
                        quoting=quoting, strict=True)

    header, header_line = first_row(reader, lines, shown)
    columns = header_columns(header, shown, header_line)
    report = ImportReport(
        path=shown, encoding=encoding_label, delimiter=DELIMITERS[delimiter], kind=columns.kind,
        dry_run=dry_run, resubscribe=resubscribe, rejects=rejects,
    )
    convert = _converter(columns, f"import of {Path(shown).name}", tags)
    batches = _batches(
        reader, lines, convert, None if columns.has_header else (header, header_line),
        keep_cells=rejects is not None, shown=shown, encoding_label=encoding_label,
    )
    if lines.size >= PARALLEL_BYTES and _may_fork():
        batches = _ReadingProcess(batches)
    try:
        batch = store.begin_import(label=Path(shown).name, actor=actor, resubscribe=resubscribe,
                                   direct=not dry_run)
        rejects_file = _RejectsFile(rejects, columns.header if columns.has_header else None)
        try:
            for rows, rejected, erasures, position in batches:
                for line, reason, cells in rejected:
                    report.rejections.add(line, reason)
                    rejects_file.write(line, reason, cells or [])
                # Before the rows: an export carries its erasures ahead of its subscribers.
                batch.keep_erasures(erasures)
                report.erased += len(erasures)
                _warn_unsendable(rows, report)
                batch.stage_values(rows)
                lines.report(position)
            lines.finish()
            counts = batch.apply(dry_run=dry_run)
        except BaseException:
            batch.discard()
            rejects_file.abandon()
            raise
    finally:
        batches.close()
    rejects_file.close()
    for name in ("imported", "updated", "unchanged", "skipped", "merged"):
        setattr(report, name, getattr(counts, name))
    return report


def _warn_unsendable(rows: list[tuple], report: ImportReport) -> None:
    """Warn of valid addresses no send can reach: they are imported (they are the
    subscriber's), and each send skips them, suppressed with the same reason."""
    for line, _key, email, *_ in rows:
        if not email.isascii() and (reason := unsendable_reason(email)):
            report.warnings.append(RowWarning(line, f"{email}: {reason}; every send will skip it"))


# Rows are handed to the store (and from the reading process) this many at a time.
_BATCH = 5000
# Files at least this big are read and checked in a second process while
# this one writes to the store: the two halves take about as long as each other.
PARALLEL_BYTES = 1 << 20

_Batch = tuple[list[tuple], list[tuple[int, str, "list[str] | None"]], list[tuple[str, str]], int]


def _batches(
    reader: Iterator[list[str]], lines: Lines, convert: Callable[[list[str], int, bool], tuple],
    first: tuple[list[str], int] | None, *, keep_cells: bool, shown: str, encoding_label: str,
) -> Iterator[_Batch]:
    """The file's data rows, a batch at a time: rows for the store, rejected rows
    (line, reason, and the cells when `keep_cells`), erasures (hash, when: see
    `rows.ErasedRow`), and the bytes read so far.

    `first` is a data row read already (a file without a header line). What
    spoils the whole file is a `SubscriberFileError`, raised after the batches
    before it.
    """
    with _reading_errors(lines, shown, encoding_label):
        yield from _read_batches(reader, lines, convert, first, keep_cells, shown)


def _read_batches(
    reader: Iterator[list[str]], lines: Lines, convert: Callable[[list[str], int, bool], tuple],
    first: tuple[list[str], int] | None, keep_cells: bool, shown: str,
) -> Iterator[_Batch]:
    rows: list[tuple] = []
    rejected: list[tuple[int, str, list[str] | None]] = []
    erasures: list[tuple[str, str]] = []
    overlong = lines.overlong
    too_long = f"the line is longer than {MAX_LINE // (1 << 20)} MiB"
    has_nul = "contains a NUL character (is part of the file binary?)"
    data_rows = 0
    if first is not None:
        row, start = first
        data_rows = 1
        try:
            if lines.last_nul >= start:
                raise AddressError(has_nul)
            rows.append(convert(row, start, lines.last_apostrophe >= start))
        except AddressError as exc:
            rejected.append((start, exc.message, row if keep_cells else None))
    next_batch = _BATCH
    while True:
        # The reader takes lines only as it needs them, so the next row
        # starts on the line after the last one it took.
        start = lines.number + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            message = str(exc)
            if "field larger than field limit" in message or "unexpected end of data" in message:
                raise SubscriberFileError(
                    "a quoted value starts here and never ends", path=shown, line=start,
                    hint="a closing \" is missing; fix the quotes and import again",
                ) from None
            data_rows += 1
            reason = f"bad quoting ({message})"
            if lines.number != start:
                reason = f"{reason}; a quote opened here runs to line {lines.number}"
            rejected.append((start, reason, None))
            continue
        # Blank, as the cells go: in most rows the first cell says it is not.
        if not (row and (row[0].strip() or any(map(str.strip, row)))):
            if start in overlong:
                overlong.discard(start)
                data_rows += 1
                rejected.append((start, too_long, None))
            continue
        data_rows += 1
        try:
            if start in overlong:
                overlong.discard(start)
                raise AddressError(too_long)
            if lines.last_nul >= start:
                raise AddressError(has_nul)
            rows.append(convert(row, start, lines.last_apostrophe >= start))
        except AddressError as exc:
            rejected.append((start, exc.message, row if keep_cells else None))
        except ErasedRow as erasure:
            erasures.append((erasure.hash, erasure.at))
        if data_rows >= next_batch:
            next_batch += _BATCH
            yield rows, rejected, erasures, lines.position()
            rows, rejected, erasures = [], [], []
    if data_rows == 0:
        raise SubscriberFileError("has a header line but no rows: nothing to import", path=shown)
    yield rows, rejected, erasures, lines.position()


def _may_fork() -> bool:
    """Whether a second process can be forked safely: forking a process that
    runs other threads can leave the child stuck on a lock one of them held."""
    return hasattr(os, "fork") and threading.active_count() == 1


class _ReadingProcess:
    """Batches (see `_batches`) made in a second process, in the order it makes them.

    The file is read, parsed and checked in a forked child while this process
    writes to the store: on two cores each side takes about half the time.
    The child only reads the file and writes to a pipe; it never touches the
    store, and ends with `os._exit` so that nothing inherited (the database
    connection, a half-written rejects file) is flushed or closed by it. A
    `SubscriberFileError` in the child is raised here, after the batches
    before it; anything else that goes wrong there is raised here as a
    `RuntimeError` with its traceback.
    """

    def __init__(self, batches: Iterator[_Batch]) -> None:
        read_end, write_end = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the child
            status = 1
            try:
                os.close(read_end)
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
                with open(write_end, "wb") as out:
                    _send(batches, out)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        self._source = open(read_end, "rb")
        self._running = True

    def __iter__(self) -> Iterator[_Batch]:
        read = self._source.read
        while True:
            size = read(8)
            data = read(int.from_bytes(size, "little")) if len(size) == 8 else b""
            if not data:
                raise RuntimeError("the process reading the subscriber file stopped unexpectedly")
            kind, value = marshal.loads(data)
            if kind == "batch":
                yield value
            elif kind == "end":
                self.close(stop=False)
                return
            elif kind == "error":
                message, path, line, hint = value
                raise SubscriberFileError(message, path=path, line=line, hint=hint)
            else:
                raise RuntimeError(f"reading the subscriber file failed:\n{value}")

    def close(self, *, stop: bool = True) -> None:
        """Wait for the child to end; with `stop`, end it first (this side gave up)."""
        if not self._running:
            return
        self._running = False
        self._source.close()
        if stop:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(self._pid, 0)


def _send(batches: Iterator[_Batch], out: IO[bytes]) -> None:
    """Write every batch to `out`, then how the reading ended (in the child).

    marshal, not pickle: the batches are plain tuples, lists, strings and
    numbers, both ends are the same interpreter, and pickle's bookkeeping
    cost as much as a third of the checking.
    """

    def send(message: tuple) -> None:
        data = marshal.dumps(message)
        out.write(len(data).to_bytes(8, "little"))
        out.write(data)

    try:
        for item in batches:
            send(("batch", item))
        send(("end", None))
    except SubscriberFileError as exc:
        send(("error", (exc.message, str(exc.path) if exc.path else None, exc.line, exc.hint)))
    except Exception:
        send(("crash", traceback.format_exc()))


class _RejectsFile:
    """The --rejects file: line, reason, then the rejected row's own cells."""

    def __init__(self, path: Path | None, header: list[str] | None) -> None:
        self.path = path
        self._file = None
        if path is None:
            return
        try:
            self._file = open(path, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise SubscriberFileError(f"cannot write the rejects file: {os_reason(exc)}", path=path) from None
        self._writer = csv.writer(self._file)
        self._writer.writerow(["rejected_line", "rejected_reason", *(header or ["email"])])

    def write(self, line: int, reason: str, row: list[str]) -> None:
        if self._file is not None:
            self._writer.writerow([line, reason, *(neutralise(cell) for cell in row)])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def abandon(self) -> None:
        """Remove a half-written rejects file: the import it described did not happen."""
        if self._file is not None:
            self._file.close()
            Path(self.path).unlink(missing_ok=True)
