"""One row of a subscriber file → the store's values for it, or why not.

This is the per-row path of an import: it runs a million times for a large
list, so `converter` works out once whatever depends only on the header and
returns a function that does the rest. The address rules are `addresses`'s;
the sticky-status rules are the store's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from itertools import compress
from json.encoder import encode_basestring
from operator import add, itemgetter

from ..errors import AddressError
from ..store import STATUSES, encode_attributes, encode_tags
from .addresses import clean_name, email_and_key, join_name, split_name_address
from .columns import Columns
from .formulas import unescape

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

_ERASURE = re.compile(r"[0-9a-f]{64}")


class ErasedRow(Exception):
    """Not a subscriber but an erasure an export carries: the hash of an address erased
    on request, and when. The import keeps it, so that nobody erased comes back."""

    def __init__(self, hash_: str, at: str) -> None:
        super().__init__(hash_)
        self.hash = hash_
        self.at = at


_NAIVE_TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")


def converter(
    columns: Columns, source: str, tags: tuple[str, ...],
) -> Callable[[list[str], int, bool], tuple]:
    """The function turning one CSV row into the store's values for it
    (`StagedRow.values`), or raising `AddressError` saying why not, or
    `ErasedRow` for an erasure an export carries.

    Whatever depends only on the header is worked out here, once: the
    function runs for every row, a million times for a large list. `quoted`
    says whether the row may hold a cell starting with ' (see `formulas`);
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
    erased_at = roles.get("erased")
    not_erasure = (f"column '{header[erased_at]}' is not the hash of an erased address"
                   if erased_at is not None else "")
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
            row = [unescape(cell) if cell[:1] == "'" else cell for cell in row]

        cell = row[email_at]
        if len(cell) > 1 and cell[0] == cell[-1] == '"':
            cell = cell[1:-1].replace('""', '"')
        if "<" in cell:
            shown_name, cell = split_name_address(cell)
        else:
            shown_name = ""
        if erased_at is not None and row[erased_at].strip():
            if cell.strip():
                raise AddressError(f"has both an address and an erasure in column '{header[erased_at]}'")
            if not _ERASURE.fullmatch(row[erased_at].strip()):
                raise AddressError(not_erasure)
            when = _timestamp(row[created_at]) if created_at is not None else ""
            raise ErasedRow(row[erased_at].strip(), when)
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


def _status(row: list[str], columns: Columns) -> tuple[str, str]:
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


def _tags(cell: str, columns: Columns) -> tuple[str, ...]:
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
