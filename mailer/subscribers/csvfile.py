"""A subscriber file as text: the source, its encoding, its lines, its delimiter.

Everything here is decided from the file alone, before a row means anything:
what `import_file` reads from (a path or standard input, a regular file and
nothing else), which codec decodes it, the physical lines, the delimiter and
the first row. What the columns mean is `columns`'s business.

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
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from ..errors import SubscriberFileError, os_reason

MAX_LINE = 1 << 20  # characters; a longer line is not a subscriber
_SCAN_CHUNK = 1 << 20

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

DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


class open_source:
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
            raise SubscriberFileError(f"cannot open: {os_reason(exc)}", path=shown) from None
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
        raise SubscriberFileError(f"cannot read: {os_reason(exc)}", path=shown) from None
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


class Lines:
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


def first_nonblank(lines: Lines) -> tuple[str | None, Iterator[str]]:
    """The first line that is not blank (the header candidate), and the lines after it.

    The rest is the line iterator itself, not a generator around it: every
    layer costs a little on each of a million lines.
    """
    iterator = iter(lines)
    for line in iterator:
        if line.strip() or lines.number in lines.overlong:
            return line, iterator
    return None, iterator


def sniff(line: str) -> str:
    """The delimiter: whichever of , tab ; | the first line has most of (',' if none).

    Counting on the header line is more dependable than csv.Sniffer, which
    guesses wrong on one-column files and on names with commas.
    """
    counts = {d: line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def first_row(reader: Iterator[list[str]], lines: Lines, shown: str) -> tuple[list[str], int]:
    """The first row and its line: the header, or the first address of a bare list."""
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
