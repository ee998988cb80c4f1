"""The people on the list: address rules, CSV import and export.

The store owns the sticky-status rules; this package reads and writes the
files people bring, and hands the store rows it has already checked.
"""
