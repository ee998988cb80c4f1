"""An import's rows, and what they do, apart from how the import reads and writes them.

The form the importer hands rows over in (`StagedRow`), and two rules: how
rows repeating one address become one (`MergedRow`), and what one row does
to a subscriber already in the store (`decide`). Both rules take the tags
and attributes as the store encodes them, JSON text, so that staged rows
need no decoding on their way through.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from ..subscribers.addresses import Address
from .connection import encode_attributes, encode_tags
from .subscribers import STICKY, STRENGTH, Subscriber


class StagedRow(NamedTuple):
    """One row of an import, validated, as the importer hands it to the store.

    A named tuple, not a dataclass. The importer itself hands over plain
    tuples in the form `StagedRow.values` gives (`ImportBatch.stage_values`).
    """

    line: int
    address: Address
    name: str = ""
    status: str = "active"
    reason: str = ""
    tags: tuple[str, ...] = ()
    attributes: dict = {}  # never mutated by the store
    source: str = ""
    created_at: str = ""

    def values(self) -> tuple:
        """The row as `ImportBatch.stage_values` takes it: line, key, email, name,
        status, reason, tags (`encode_tags`), attributes (`encode_attributes`),
        source, created_at ('' when not known)."""
        return (
            self.line, self.address.key, self.address.email, self.name, self.status, self.reason,
            encode_tags(self.tags), encode_attributes(self.attributes), self.source,
            self.created_at,
        )


@dataclass(slots=True)
class MergedRow:
    """One address as the rows of one file give it, merged in file order.

    The last non-empty name wins, the strongest status (with its reason),
    the union of tags, attributes in file order (a later value of a key
    replaces an earlier one), the earliest creation time. Importing the same
    file twice thus changes nothing the second time, whatever order the
    repeats come in.
    """

    name: str
    status: str
    # The reason of the status, or None while no row has changed the status
    # it started with.
    reason: str | None
    tags: set[str]
    attributes: dict
    created_at: str  # '' while no row has said when

    @classmethod
    def first(cls, name: str, status: str, reason: str | None, tags: str, attributes: str,
              created_at: str) -> MergedRow:
        """The merge of a single row, in the form staged rows have (tags and attributes as JSON)."""
        return cls(name, status, reason, set(json.loads(tags)), json.loads(attributes), created_at)

    def absorb(self, repeats: Iterable[tuple]) -> None:
        """Merge in later rows of the same address, each (name, status, reason, tags,
        attributes, created_at) as staged, in file order."""
        for name, status, reason, tags, attributes, created_at in repeats:
            self.name = name or self.name
            if STRENGTH[status] > STRENGTH[self.status]:
                self.status, self.reason = status, reason
            self.tags.update(json.loads(tags))
            self.attributes.update(json.loads(attributes))
            if created_at and (not self.created_at or created_at < self.created_at):
                self.created_at = created_at

    @property
    def encoded_tags(self) -> str:
        return encode_tags(self.tags)

    @property
    def encoded_attributes(self) -> str:
        return encode_attributes(self.attributes)


def decide(
    current: Subscriber, where: str, resubscribe: bool, name: str, status: str, reason: str,
    tags: str, attributes: str,
) -> tuple[str, tuple | None, list[tuple[str, str]]]:
    """What one row (from `where`, 'list.csv line 7') does to a subscriber already in the store.

    Returns the outcome ('updated', 'unchanged' or 'skipped'), the new
    (name, status, tags, attributes) or None, and the events to record as
    (kind, reason).
    """
    events: list[tuple[str, str]] = []
    new_status = current.status
    if status != current.status:
        if current.status in STICKY and status == "active" and resubscribe:
            new_status = "active"
            events.append(("resubscribed", f"was {current.status}; {where} with --resubscribe"))
        elif current.status in STICKY:
            return "skipped", None, []
        else:
            new_status = status
            events.append((status, "; ".join(filter(None, (reason, where)))))
    new_name = name or current.name
    new_tags = encode_tags(set(current.tags).union(json.loads(tags)))
    merged = dict(current.attributes)
    merged.update(json.loads(attributes))
    new_attributes = encode_attributes(merged)
    changed = [
        label for label, before, after in (
            ("name", current.name, new_name),
            ("tags", encode_tags(current.tags), new_tags),
            ("attributes", encode_attributes(current.attributes), new_attributes),
        )
        if before != after
    ]
    if changed:
        events.append(("updated", f"{', '.join(changed)} from {where}"))
    if not events:
        return "unchanged", None, []
    return "updated", (new_name, new_status, new_tags, new_attributes), events
