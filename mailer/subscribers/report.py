"""What an import did, row by row, for people and for `--json`.

The report holds every count and every rejected row's line and reason, and
what the import was asked to do where that changes what a person should be
told (a dry run, a rejects file, `--resubscribe`), so that the command only
words it.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# What became of each data row, in the order a report lists them; every
# row ends as exactly one of these.
OUTCOMES = ("imported", "updated", "unchanged", "skipped", "merged", "rejected")


@dataclass(frozen=True)
class Rejection:
    """A row that was not imported: where it is and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class RowWarning:
    """A row that was imported but a person should look at: where it is and why."""

    line: int
    message: str


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
    """What an import did; `rows` is the sum of the six counts (see `OUTCOMES`) and
    of `erased`, the erasures an export carried (kept, never imported).

    `resubscribe` and `rejects` are what the import was asked for: whether
    sticky statuses were overridden, and where rejected rows were to be
    written (None if nowhere).
    """

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
    erased: int = 0
    rejections: RejectionLog = field(default_factory=RejectionLog)
    warnings: list[RowWarning] = field(default_factory=list)
    resubscribe: bool = False
    rejects: Path | None = None

    @property
    def rejected(self) -> int:
        return self.rejections.count

    @property
    def rows(self) -> int:
        return (self.imported + self.updated + self.unchanged + self.skipped + self.merged
                + self.rejected + self.erased)

    @property
    def counts(self) -> dict[str, int]:
        """Each outcome and its count, in the order of `OUTCOMES`."""
        return {outcome: getattr(self, outcome) for outcome in OUTCOMES}

    @property
    def rejects_written(self) -> Path | None:
        """The rejects file, if rejected rows were written to it.

        One is written (with its header line) whenever it was asked for, but
        it only holds something to fix when rows were rejected.
        """
        return self.rejects if self.rejects is not None and self.rejected else None

    @property
    def skipped_without_resubscribe(self) -> bool:
        """Whether rows were skipped for a sticky status without `resubscribe`:
        importing again with it makes those people active (never an erased
        address, though)."""
        return bool(self.skipped) and not self.resubscribe

    def as_dict(self) -> dict:
        """The report as JSON-ready data (`mailer subscribers import --json`)."""
        return {
            "file": self.path, "encoding": self.encoding, "delimiter": self.delimiter,
            "format": self.kind, "dry_run": self.dry_run, "rows": self.rows,
            **self.counts, "erased": self.erased,
            "rejected_rows": [{"line": r.line, "reason": r.reason} for r in self.rejections],
            "warnings": [{"line": w.line, "warning": w.message} for w in self.warnings],
        }
