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

Encodings are decided by strict decoding in order, not by guessing from
statistics: a byte-order mark (UTF-8, UTF-16, UTF-32) says it all; else the
whole file must decode as UTF-8; else as GB18030, which is what Excel writes
on a Chinese Windows. A file that is valid UTF-8, non-ASCII text included,
up to some line and then is not, is a damaged UTF-8 file, not GB18030, and
is refused with that line. `--encoding` overrides the choice.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import marshal
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import compress
from json.encoder import encode_basestring
from operator import add, itemgetter
from pathlib import Path
from typing import IO

from ..errors import AddressError, SubscriberFileError
from ..store import STATUSES, Store, encode_attributes, encode_tags
from .addresses import clean_name, email_and_key, join_name, split_name_address

MAX_LINE = 1 << 20  # characters; a longer line is not a subscriber
_SCAN_CHUNK = 1 << 20

# Spreadsheets run a cell that starts with one of these as a formula. Export
# puts a ' before such a cell; import takes one ' off again.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)

_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive, e.g. an Excel workbook (.xlsx)",
     "in the spreadsheet, save the sheet as 'CSV UTF-8' and import that"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)",
     "in the spreadsheet, save the sheet as 'CSV UTF-8' and import that"),
    (b"%PDF", "a PDF document", "export the list as CSV"),
    (b"\x1f\x8b", "gzip-compressed", "decompress it first"),
    (b"SQLite format 3\x00", "an SQLite database", "export the list as CSV"),
)

# Header names, lower-cased with runs of other characters made '_', and the
# field each one fills. Anything else becomes an attribute.
_COLUMNS = {
    "email": ("email", "email_address", "e_mail", "e_mail_address", "emailaddress",
              "mail", "email_addr", "subscriber_email", "邮箱", "电子邮箱", "电子邮件",
              "邮件地址", "邮箱地址", "电子邮件地址"),
    "name": ("name", "full_name", "fullname", "display_name", "姓名", "名字"),
    "first_name": ("first_name", "firstname", "fname", "given_name", "名"),
    "last_name": ("last_name", "lastname", "lname", "surname", "family_name", "姓"),
    "tags": ("tags", "tag"),
    "attributes": ("attributes", "attribs", "metadata"),
    "status": ("status", "subscriber_type", "subscription_status"),
    "created_at": ("created_at", "created", "creation_date", "optin_time", "subscribed_at",
                   "date_added", "signup_date", "subscription_date"),
    "source": ("source",),
    # Mailchimp's unsubscribed and cleaned exports, Substack's opt-out flag.
    "unsub_time": ("unsub_time",),
    "unsub_reason": ("unsub_reason",),
    "clean_time": ("clean_time",),
    "email_disabled": ("email_disabled",),
    # The store's own bookkeeping, and the two columns a rejects file adds.
    "ignore": ("updated_at", "rejected_line", "rejected_reason"),
}
_ROLE = {name: role for role, names in _COLUMNS.items() for name in names}
# Columns that also stay as attributes: they say more than the status alone.
_KEEP_AS_ATTRIBUTE = frozenset(("unsub_time", "unsub_reason", "clean_time", "email_disabled"))

_STATUS_WORDS = {
    "": "active", "active": "active", "subscribed": "active", "enabled": "active",
    "confirmed": "active", "regular": "active", "premium": "active", "gifted": "active",
    "trialed": "active", "churning": "active", "past_due": "active",
    "unsubscribed": "unsubscribed", "blocklisted": "unsubscribed",
    "blacklisted": "unsubscribed", "removed": "unsubscribed", "disabled": "unsubscribed",
    "bounced": "bounced", "cleaned": "bounced", "undeliverable": "bounced",
    "complained": "complained", "spam": "complained",
}
_UNCONFIRMED = frozenset(("pending", "unconfirmed", "unactivated"))
_TRUE = frozenset(("true", "yes", "1", "y", "t"))

_NAIVE_TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")

_DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


@dataclass(frozen=True)
class Rejection:
    """A row that was not imported: where it is and why."""

    line: int
    reason: str


class RejectionLog:
    """The rejected rows of one import, kept on disk past a megabyte.

    A file of a million bad rows must not take a million objects of memory.
    """

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+", encoding="utf-8")
        self.count = 0

    def add(self, line: int, reason: str) -> None:
        self._file.write(f"{line}\t{reason}\n")
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Rejection]:
        self._file.seek(0)
        for entry in self._file:
            line, _, reason = entry.rstrip("\n").partition("\t")
            yield Rejection(int(line), reason)
        self._file.seek(0, io.SEEK_END)


@dataclass
class ImportReport:
    """What an import did; `rows` is the sum of the six counts."""

    path: str
    encoding: str
    delimiter: str
    kind: str
    dry_run: bool = False
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    merged: int = 0
    rejections: RejectionLog = field(default_factory=RejectionLog)

    @property
    def rejected(self) -> int:
        return self.rejections.count

    @property
    def rows(self) -> int:
        return (self.imported + self.updated + self.unchanged + self.skipped + self.merged
                + self.rejected)

    def as_dict(self) -> dict:
        """The report as JSON-ready data (`mailer subscribers import --json`)."""
        return {
            "file": self.path, "encoding": self.encoding, "delimiter": self.delimiter,
            "format": self.kind, "dry_run": self.dry_run, "rows": self.rows,
            "imported": self.imported, "updated": self.updated, "unchanged": self.unchanged,
            "skipped": self.skipped, "merged": self.merged, "rejected": self.rejected,
            "rejected_rows": [{"line": r.line, "reason": r.reason} for r in self.rejections],
        }


@dataclass(frozen=True)
class _Columns:
    """Which column of the file holds what."""

    header: list[str]
    roles: dict[str, int]
    attributes: list[tuple[int, str]]
    has_header: bool
    kind: str

    @property
    def has_status(self) -> bool:
        return not self.roles.keys().isdisjoint(
            ("status", "clean_time", "unsub_time", "email_disabled"))


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
    with _open_source(path) as (binary, shown):
        codec, encoding_label = detect_encoding(binary, shown, encoding)
        text = io.TextIOWrapper(binary, encoding=codec, errors="strict", newline="")
        lines = _Lines(text, binary, progress)
        with _reading_errors(lines, shown, encoding_label):
            return _import(
                store, lines, shown, codec=codec, encoding_label=encoding_label, actor=actor,
                tags=tags, resubscribe=resubscribe, dry_run=dry_run, rejects=rejects,
            )


@contextmanager
def _reading_errors(lines: _Lines, shown: str, encoding_label: str) -> Iterator[None]:
    """A file that stops decoding or reading partway, as one-line errors."""
    try:
        yield
    except UnicodeDecodeError:
        raise SubscriberFileError(
            f"became undecodable as {encoding_label} near line {lines.number + 1}",
            path=shown, hint="was the file changed while it was read? import it again",
        ) from None
    except OSError as exc:
        raise SubscriberFileError(f"cannot read: {_why(exc)}", path=shown) from None


def _import(
    store: Store, lines: _Lines, shown: str, *, codec: str, encoding_label: str, actor: str,
    tags: tuple[str, ...], resubscribe: bool, dry_run: bool, rejects: Path | None,
) -> ImportReport:
    first_line, rest = _first_nonblank(lines)
    if first_line is None:
        raise SubscriberFileError("is empty: no rows to import", path=shown)
    delimiter = _sniff(first_line)
    csv.field_size_limit(MAX_LINE)
    # A file with no delimiter on its first line is a column of addresses,
    # pasted from anywhere: '"Ann Lee" <ann@example.com>' is a line of it, not
    # bad CSV quoting.
    quoting = csv.QUOTE_MINIMAL if delimiter in first_line else csv.QUOTE_NONE
    reader = csv.reader(itertools.chain((first_line,), rest), delimiter=delimiter,
                        quoting=quoting, strict=True)

    header, header_line = _first_row(reader, lines, shown)
    columns = _columns(header, shown, header_line)
    report = ImportReport(
        path=shown, encoding=encoding_label, delimiter=_DELIMITERS[delimiter], kind=columns.kind,
        dry_run=dry_run,
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
            for rows, rejected, position in batches:
                for line, reason, cells in rejected:
                    report.rejections.add(line, reason)
                    rejects_file.write(line, reason, cells or [])
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


# Rows are handed to the store (and from the reading process) this many at a time.
_BATCH = 5000
# Files at least this big are read and checked in a second process while
# this one writes to the store: the two halves take about as long as each other.
PARALLEL_BYTES = 1 << 20

_Batch = tuple[list[tuple], list[tuple[int, str, "list[str] | None"]], int]


def _batches(
    reader: Iterator[list[str]], lines: _Lines, convert: Callable[[list[str], int, bool], tuple],
    first: tuple[list[str], int] | None, *, keep_cells: bool, shown: str, encoding_label: str,
) -> Iterator[_Batch]:
    """The file's data rows, a batch at a time: rows for the store, rejected rows
    (line, reason, and the cells when `keep_cells`), and the bytes read so far.

    `first` is a data row read already (a file without a header line). What
    spoils the whole file is a `SubscriberFileError`, raised after the batches
    before it.
    """
    with _reading_errors(lines, shown, encoding_label):
        yield from _read_batches(reader, lines, convert, first, keep_cells, shown)


def _read_batches(
    reader: Iterator[list[str]], lines: _Lines, convert: Callable[[list[str], int, bool], tuple],
    first: tuple[list[str], int] | None, keep_cells: bool, shown: str,
) -> Iterator[_Batch]:
    rows: list[tuple] = []
    rejected: list[tuple[int, str, list[str] | None]] = []
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
        if data_rows >= next_batch:
            next_batch += _BATCH
            yield rows, rejected, lines.position()
            rows, rejected = [], []
    if data_rows == 0:
        raise SubscriberFileError("has a header line but no rows: nothing to import", path=shown)
    yield rows, rejected, lines.position()


def _converter(
    columns: _Columns, source: str, tags: tuple[str, ...],
) -> Callable[[list[str], int, bool], tuple]:
    """The function turning one CSV row into the store's values for it
    (`StagedRow.values`), or raising `AddressError` saying why not.

    Whatever depends only on the header is worked out here, once: the
    function runs for every row, a million times for a large list. `quoted`
    says whether the row may hold a cell starting with ' (see `neutralise`);
    the line reader knows, and looking is costly.
    """
    header = columns.header
    width = len(header)
    roles = columns.roles
    email_at = roles["email"]
    no_address = f"no address in column '{header[email_at]}'"
    name_at = roles.get("name")
    first_at, last_at = roles.get("first_name"), roles.get("last_name")
    split_name = first_at is not None or last_at is not None
    json_at = roles.get("attributes")
    not_json = (f"column '{header[json_at]}' is not a JSON object like {{\"city\": \"Paris\"}}"
                if json_at is not None else "")
    has_status = columns.has_status
    tags_at, created_at, source_at = roles.get("tags"), roles.get("created_at"), roles.get("source")
    created_header = header[created_at] if created_at is not None else ""
    names = tuple(name for _, name in columns.attributes)
    cells = _cells_at(tuple(index for index, _ in columns.attributes))
    # The attributes' JSON, written straight from the cells when no other
    # source adds to them: the columns in the order `encode_attributes` sorts
    # their names, each key and cell escaped by the encoder's own function.
    # A third of the time of a row went into a dict and json.dumps.
    by_name = sorted(columns.attributes, key=itemgetter(1))
    direct_json = len({name for _, name in by_name}) == len(by_name)
    prefixes = tuple(encode_basestring(name) + ": " for _, name in by_name)
    sorted_cells = _cells_at(tuple(index for index, _ in by_name))
    given_tags = encode_tags(tags)

    def convert(row: list[str], line: int, quoted: bool) -> tuple:
        if len(row) != width:
            row = _fit(row, width)
        if quoted:
            row = [_unescape(cell) if cell[:1] == "'" else cell for cell in row]

        cell = row[email_at]
        if len(cell) > 1 and cell[0] == cell[-1] == '"':
            cell = cell[1:-1].replace('""', '"')
        if "<" in cell:
            shown_name, cell = split_name_address(cell)
        else:
            shown_name = ""
        if not cell.strip():
            raise AddressError(no_address)
        email, key = email_and_key(cell)

        if name_at is not None and row[name_at].strip():
            name = row[name_at]
        elif split_name:
            name = join_name(row[first_at] if first_at is not None else "",
                             row[last_at] if last_at is not None else "")
        else:
            name = shown_name
        if name:
            name = clean_name(name)

        created = ""
        if created_at is not None and row[created_at].strip():
            created = _timestamp(row[created_at])
        # Attributes: every other non-empty cell, by its column's name; a
        # creation time that is not one is kept as an attribute.
        if direct_json and (json_at is None or not row[json_at].strip()) and (
                created or created_at is None or not row[created_at].strip()):
            values = sorted_cells(row)
            body = ", ".join(map(add, compress(prefixes, values),
                                 map(encode_basestring, compress(values, values))))
            attributes = f"{{{body}}}" if body else "{}"
        else:
            if json_at is not None and row[json_at].strip():
                try:
                    merged = json.loads(row[json_at])
                except ValueError:
                    merged = None
                if not isinstance(merged, dict):
                    raise AddressError(not_json)
                merged.update(filter(_filled, zip(names, cells(row))))
            else:
                merged = dict(filter(_filled, zip(names, cells(row))))
            if not created and created_at is not None and row[created_at].strip():
                merged[created_header] = row[created_at]
            attributes = encode_attributes(merged)

        status, reason = _status(row, columns) if has_status else ("active", "")
        row_tags = _tags(row[tags_at], columns) if tags_at is not None and row[tags_at] else ()
        row_source = row[source_at].strip() if source_at is not None else ""
        return (
            line, key, email, name, status, reason,
            encode_tags(row_tags + tags) if row_tags else given_tags,
            attributes, row_source or source, created,
        )

    return convert


_filled = itemgetter(1)


def _cells_at(indexes: tuple[int, ...]) -> Callable[[list[str]], tuple[str, ...]]:
    """A function taking the cells at `indexes` out of a row, as a tuple."""
    if not indexes:
        return lambda row: ()
    if len(indexes) == 1:
        (index,) = indexes
        return lambda row: (row[index],)
    return itemgetter(*indexes)


def _fit(row: list[str], width: int) -> list[str]:
    """The row padded or cut to the header's width; `AddressError` if that loses a value."""
    if len(row) > width:
        if any(cell.strip() for cell in row[width:]):
            raise AddressError(
                f"has {len(row)} values where the header has {width} "
                "(a value with a comma or tab that is not in quotes?)"
            )
        return row[:width]
    return row + [""] * (width - len(row))


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


def _status(row: list[str], columns: _Columns) -> tuple[str, str]:
    roles = columns.roles
    if "status" in roles:
        word = row[roles["status"]].strip().lower().replace(" ", "_")
        if word in _UNCONFIRMED:
            raise AddressError(f"never confirmed the subscription (status '{word}')")
        if word not in _STATUS_WORDS:
            raise AddressError(
                f"unknown status '{row[roles['status']]}' (expected one of {', '.join(STATUSES)})"
            )
        status = _STATUS_WORDS[word]
        if status != "active":
            return status, f"{status} in the imported file"
    if "clean_time" in roles and row[roles["clean_time"]].strip():
        return "bounced", "cleaned (bounced) in Mailchimp"
    if "unsub_time" in roles and row[roles["unsub_time"]].strip():
        why = row[roles["unsub_reason"]].strip() if "unsub_reason" in roles else ""
        return "unsubscribed", f"unsubscribed in Mailchimp{': ' + why if why else ''}"
    if "email_disabled" in roles and row[roles["email_disabled"]].strip().lower() in _TRUE:
        return "unsubscribed", "email disabled in Substack"
    return "active", ""


def _tags(cell: str, columns: _Columns) -> tuple[str, ...]:
    cell = cell.strip()
    if not cell:
        return ()
    if cell.startswith("["):
        try:
            value = json.loads(cell)
        except ValueError:
            value = None
        if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
            raise AddressError(
                f"column '{columns.header[columns.roles['tags']]}' is not a JSON list of strings"
            )
        return tuple(tag.strip() for tag in value if tag.strip())
    # Mailchimp writes "a","b"; most others a, b.
    return tuple(t for tag in cell.split(",") if (t := tag.strip().strip('"').strip()))


def _timestamp(value: str) -> str:
    """An ISO-like time as stored (UTC, seconds), or '' if it is not one."""
    if _NAIVE_TIME.fullmatch(value):
        # Already in the stored form but for the 'T' and 'Z' (Mailchimp's
        # OPTIN_TIME): strftime would cost more than the rest of the row.
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return ""
        return f"{value[:10]}T{value[11:19]}Z"
    value = value.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return ""
    if _NAIVE_TIME.fullmatch(value):
        return f"{value[:10]}T{value[11:19]}Z"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unescape(cell: str) -> str:
    """Take off the ' that `neutralise` put before a formula-like cell."""
    if cell.lstrip("'")[:1] in FORMULA_TRIGGERS and cell.lstrip("'"):
        return cell[1:]
    return cell


def neutralise(cell: str) -> str:
    """Put a ' before a cell a spreadsheet would run as a formula (see `_unescape`)."""
    if cell and cell.lstrip("'")[:1] in FORMULA_TRIGGERS and cell.lstrip("'"):
        return "'" + cell
    return cell


# The file ------------------------------------------------------------------


class _open_source:
    """The file to import as a binary stream, refusing what is not a regular file.

    Opened without blocking, then checked, so that a FIFO is refused instead
    of waiting forever for a writer. '-' is standard input, copied to a
    temporary file first because the encoding check reads the data twice.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.file: IO[bytes] | None = None

    def __enter__(self) -> tuple[IO[bytes], str]:
        if self.path == "-":
            self.file = tempfile.TemporaryFile()
            shutil.copyfileobj(sys.stdin.buffer, self.file)
            self.file.seek(0)
            return self.file, "<stdin>"
        shown = self.path
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise SubscriberFileError("no such file", path=shown, hint="check the path") from None
        except IsADirectoryError:
            raise SubscriberFileError("is a folder, not a file", path=shown,
                                      hint="give the CSV file inside it") from None
        except OSError as exc:
            raise SubscriberFileError(f"cannot open: {_why(exc)}", path=shown) from None
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            os.close(fd)
            what = ("a folder" if stat.S_ISDIR(kind) else "a named pipe (FIFO)" if stat.S_ISFIFO(kind)
                    else "a device or socket")
            hint = ("give the CSV file inside it" if stat.S_ISDIR(kind)
                    else "give a regular file, or pipe the data into 'mailer subscribers import -'")
            raise SubscriberFileError(f"is {what}, not a file", path=shown, hint=hint)
        os.set_blocking(fd, True)
        self.file = os.fdopen(fd, "rb")
        return self.file, shown

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def detect_encoding(binary: IO[bytes], shown: str, forced: str | None = None) -> tuple[str, str]:
    """The codec to read `binary` with and its name for people; `SubscriberFileError` if none.

    Reads the whole file once (fast, in C) so that a bad byte on line 900,000
    is found before anything is imported.
    """
    try:
        head = binary.read(4096)
        binary.seek(0)
    except OSError as exc:
        raise SubscriberFileError(f"cannot read: {_why(exc)}", path=shown) from None
    if forced:
        try:
            info = codecs.lookup(forced)
        except LookupError:
            raise SubscriberFileError(f"unknown encoding {forced!r}",
                                      hint="try utf-8, gb18030, utf-16, cp1252 or latin-1") from None
        codec = "utf-8-sig" if info.name == "utf-8" else info.name
        failure = _scan(binary, codec)
        if failure:
            raise SubscriberFileError(f"is not valid {forced}", path=shown, line=failure[0],
                                      hint="pass the encoding the file was saved in")
        return codec, forced
    if not head.strip():
        raise SubscriberFileError("is empty: no rows to import", path=shown)
    for bom, codec, label in _BOMS:
        if head.startswith(bom):
            failure = _scan(binary, codec)
            if failure:
                raise SubscriberFileError(
                    f"starts with a {label} byte-order mark, but this line is not {label}",
                    path=shown, line=failure[0],
                    hint="the file mixes encodings: re-save it as 'CSV UTF-8'",
                )
            return codec, label
    for signature, what, hint in _SIGNATURES:
        if head.startswith(signature):
            raise SubscriberFileError(f"is {what}, not a CSV file", path=shown, hint=hint)
    if _looks_like_utf16(head):
        raise SubscriberFileError(
            "looks like UTF-16 without a byte-order mark", path=shown,
            hint="re-save it as 'CSV UTF-8', or pass --encoding utf-16-le",
        )
    controls = sum(1 for byte in head if byte < 0x20 and byte not in b"\t\n\r\f")
    if controls > max(2, len(head) // 20):
        raise SubscriberFileError("is not a text file (it has binary data near the start)",
                                  path=shown, hint="export the list as CSV")
    failure = _scan(binary, "utf-8")
    if failure is None:
        return "utf-8", "UTF-8"
    line, text_before = failure
    if text_before:
        raise SubscriberFileError(
            "is UTF-8 up to this line, which has bytes that are not UTF-8",
            path=shown, line=line,
            hint="the file mixes encodings or is damaged: fix that line, or re-save it as 'CSV UTF-8'",
        )
    if _scan(binary, "gb18030") is None:
        return "gb18030", "GB18030"
    raise SubscriberFileError(
        "is neither UTF-8 nor GB18030 from this line on", path=shown, line=line,
        hint="re-save it as 'CSV UTF-8', or pass --encoding (e.g. cp1252)",
    )


def _scan(binary: IO[bytes], codec: str) -> tuple[int, bool] | None:
    """Decode the whole file strictly; on failure, the line and whether non-ASCII
    text decoded fine before it."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    binary.seek(0)
    offset = 0
    non_ascii = False
    try:
        while chunk := binary.read(_SCAN_CHUNK):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = offset - pending + exc.start
                non_ascii = non_ascii or not chunk[: max(0, exc.start - pending)].isascii()
                return _line_at(binary, bad, codec), non_ascii
            non_ascii = non_ascii or not chunk.isascii()
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return _line_at(binary, offset, codec), non_ascii
        return None
    finally:
        binary.seek(0)


def _line_at(binary: IO[bytes], offset: int, codec: str) -> int:
    """The line number (1-based, any line ending) at byte `offset`."""
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    binary.seek(0)
    line, last_cr, left = 1, False, offset
    while left > 0 and (chunk := binary.read(min(left, _SCAN_CHUNK))):
        left -= len(chunk)
        text = decoder.decode(chunk)
        line += text.count("\n") + text.count("\r") - text.count("\r\n")
        if last_cr and text.startswith("\n"):
            line -= 1
        last_cr = text.endswith("\r")
    return line


def _looks_like_utf16(head: bytes) -> bool:
    """Text in UTF-16 without a BOM: NULs in every other byte, and readable when decoded."""
    if len(head) < 4:
        return False
    evens, odds = head[0::2], head[1::2]
    if odds.count(0) > len(odds) // 3:
        codec = "utf-16-le"
    elif evens.count(0) > len(evens) // 3:
        codec = "utf-16-be"
    else:
        return False
    text = head[: len(head) // 2 * 2].decode(codec, errors="replace")
    readable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n")
    return readable > len(text) * 0.95


class _Lines:
    """The physical lines of the text, each at most `MAX_LINE` long.

    A longer line is read past without keeping it (a 10 GB line must not take
    10 GB of memory), handed on as an empty line, and its number noted so
    that its row can be rejected.
    """

    def __init__(self, text: io.TextIOWrapper, binary: IO[bytes],
                 progress: Callable[[int, int], None] | None) -> None:
        self._text = text
        self._binary = binary
        self._progress = progress
        self.number = 0
        self.overlong: set[int] = set()
        # The last line with a NUL and with a ', checked here where it is
        # cheap (one scan of the line in C) instead of cell by cell.
        self.last_nul = 0
        self.last_apostrophe = 0
        try:
            self.size = os.fstat(binary.fileno()).st_size
        except (OSError, io.UnsupportedOperation):
            self.size = 0

    def __iter__(self) -> Iterator[str]:
        readline = self._text.readline
        while line := readline(MAX_LINE + 1):
            self.number += 1
            if len(line) > MAX_LINE and line[-1] not in "\r\n":
                while (rest := readline(MAX_LINE)) and rest[-1] not in "\r\n":
                    pass
                self.overlong.add(self.number)
                line = "\n"
            if "\x00" in line:
                self.last_nul = self.number
            if "'" in line:
                self.last_apostrophe = self.number
            yield line

    def position(self) -> int:
        """How far into the file (in bytes) reading has got."""
        return self._binary.tell()

    def report(self, position: int) -> None:
        """Tell the progress callback, if any, that reading got to `position`."""
        if self._progress is not None:
            self._progress(position, self.size)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress(self.size, self.size)


def _first_nonblank(lines: _Lines) -> tuple[str | None, Iterator[str]]:
    """The first line that is not blank (the header candidate), and the lines after it.

    The rest is the line iterator itself, not a generator around it: every
    layer costs a little on each of a million lines.
    """
    iterator = iter(lines)
    for line in iterator:
        if line.strip() or lines.number in lines.overlong:
            return line, iterator
    return None, iterator


def _sniff(line: str) -> str:
    """The delimiter: whichever of , tab ; | the first line has most of (',' if none).

    Counting on the header line is more dependable than csv.Sniffer, which
    guesses wrong on one-column files and on names with commas.
    """
    counts = {d: line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _first_row(reader: Iterator[list[str]], lines: _Lines, shown: str) -> tuple[list[str], int]:
    try:
        row = next(reader)
    except csv.Error as exc:
        raise SubscriberFileError(f"the first line cannot be read as CSV ({exc})",
                                  path=shown, line=1) from None
    line = lines.number
    if line in lines.overlong:
        raise SubscriberFileError(
            f"the first line is longer than {MAX_LINE // (1 << 20)} MiB: this is not a subscriber list",
            path=shown, line=line, hint="is it the right file, with line breaks between rows?",
        )
    if "\x00" in "".join(row):
        raise SubscriberFileError("the header line contains a NUL character", path=shown,
                                  line=line, hint="export the list as CSV again")
    return row, line


def _columns(header: list[str], shown: str, line: int) -> _Columns:
    """Work out what each column holds; `SubscriberFileError` if no column has addresses."""
    cells = [_unescape(cell.strip()) if cell.startswith("'") else cell.strip() for cell in header]
    keys = [re.sub(r"\W+", "_", cell.lower()).strip("_") for cell in cells]
    roles: dict[str, int] = {}
    for index, key in enumerate(keys):
        role = _ROLE.get(key)
        if role and role != "ignore" and role not in roles:
            roles[role] = index
    if "email" not in roles:
        if len(cells) == 1 and "@" in cells[0]:
            return _Columns(["email"], {"email": 0}, [], False, "a list of addresses")
        if len(cells) == 1 and cells[0]:
            return _Columns(cells, {"email": 0}, [], True, "a list of addresses")
        if any("@" in cell for cell in cells):
            raise SubscriberFileError(
                "the first line holds an address, not column names", path=shown, line=line,
                hint="add a header line naming the columns, e.g. email,name",
            )
        named = ", ".join(repr(cell) for cell in cells if cell) or "none"
        raise SubscriberFileError(
            f"no address column (the columns are {named})", path=shown, line=line,
            hint="name the column of addresses 'email' or 'Email Address'",
        )
    attributes = [
        (index, cells[index] or f"column {index + 1}")
        for index, key in enumerate(keys)
        if index not in roles.values() and _ROLE.get(key) != "ignore"
        or (_ROLE.get(key) in _KEEP_AS_ATTRIBUTE)
    ]
    return _Columns(cells, roles, attributes, True, _kind(set(keys), len(cells)))


def _kind(keys: set[str], width: int) -> str:
    """What exported the file, for the report (the mapping does not depend on it)."""
    if "email_address" in keys and ("first_name" in keys or "member_rating" in keys):
        return "Mailchimp export"
    if {"subscriber_type"} & keys or {"metadata", "creation_date"} <= keys:
        return "Buttondown export"
    if {"email_disabled", "active_subscription"} & keys:
        return "Substack export"
    if {"attributes", "name"} <= keys and "tags" not in keys:
        return "listmonk export"
    if {"status", "tags", "attributes", "created_at"} <= keys:
        return "mailer export"
    if width == 1:
        return "a list of addresses"
    return "CSV with a header"


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
            raise SubscriberFileError(f"cannot write the rejects file: {_why(exc)}", path=path) from None
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


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


EXPORT_COLUMNS = ("email", "name", "status", "tags", "attributes", "source", "created_at", "updated_at")


def export_csv(store: Store, out: IO[str]) -> int:
    """Write every subscriber to `out` as CSV that `import_file` reads back unchanged.

    Tags and attributes are JSON; any cell a spreadsheet would run as a
    formula gets a leading ', which import takes off. Returns the count.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for subscriber in store.subscribers():
        writer.writerow([
            neutralise(subscriber.email), neutralise(subscriber.name), subscriber.status,
            json.dumps(list(subscriber.tags), ensure_ascii=False),
            json.dumps(subscriber.attributes, ensure_ascii=False, sort_keys=True),
            neutralise(subscriber.source), subscriber.created_at, subscriber.updated_at,
        ])
        count += 1
    return count
