"""The header line → which column holds what, and what exported the file.

The mapping is by name alone, so that one table serves every exporter:
a column the table does not know becomes an attribute, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import SubscriberFileError
from .formulas import unescape

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
    # mailer's export: the hash of an address erased on request, in a row of its own.
    "erased": ("erased",),
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


@dataclass(frozen=True)
class Columns:
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


def header_columns(header: list[str], shown: str, line: int) -> Columns:
    """Work out what each column holds; `SubscriberFileError` if no column has addresses."""
    cells = [unescape(cell.strip()) if cell.startswith("'") else cell.strip() for cell in header]
    keys = [re.sub(r"\W+", "_", cell.lower()).strip("_") for cell in cells]
    roles: dict[str, int] = {}
    for index, key in enumerate(keys):
        role = _ROLE.get(key)
        if role and role != "ignore" and role not in roles:
            roles[role] = index
    if "email" not in roles:
        if len(cells) == 1 and "@" in cells[0]:
            return Columns(["email"], {"email": 0}, [], False, "a list of addresses")
        if len(cells) == 1 and cells[0]:
            return Columns(cells, {"email": 0}, [], True, "a list of addresses")
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
    return Columns(cells, roles, attributes, True, _kind(set(keys), len(cells)))


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
