"""The people on the list: address rules, CSV import and export.

The store owns the sticky-status rules; this package reads and writes the
files people bring, and hands the store rows it has already checked.

An import reads the file (`csvfile`), maps its header (`columns`), turns each
row into the store's values (`rows`) and accounts for every row in a report
(`report`); `importer` drives them. `export` writes the list back out, and
`formulas` is the one rule both directions share.
"""
