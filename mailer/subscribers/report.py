"""What an import did, row by row, for people and for `--json`."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field


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
