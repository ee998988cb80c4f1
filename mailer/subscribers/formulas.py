"""Spreadsheet formulas in subscriber files, and the ' that disarms them.

A name like `=HYPERLINK(...)` is data to us but a formula to a spreadsheet
that opens the file. Export (and the rejects file) put a ' before such a
cell; import takes one ' off again, so that a file goes round unchanged.
Both directions live here, so that neither imports the other.
"""

from __future__ import annotations

# Spreadsheets run a cell that starts with one of these as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Put a ' before a cell a spreadsheet would run as a formula (see `unescape`)."""
    if cell and cell.lstrip("'")[:1] in FORMULA_TRIGGERS and cell.lstrip("'"):
        return "'" + cell
    return cell


def unescape(cell: str) -> str:
    """Take off the ' that `neutralise` put before a formula-like cell."""
    if cell.lstrip("'")[:1] in FORMULA_TRIGGERS and cell.lstrip("'"):
        return cell[1:]
    return cell
