"""The subscriber list → a CSV file that `import_file` reads back unchanged.

The erasures go with it: each address erased on request is a row of its
own, ahead of the subscribers, with no address and the hash the store keeps
in the ``erased`` column. Imported into a new store (after the old one was
moved away, say) they keep those people from coming back. The file stays
plain CSV: a spreadsheet shows those rows with an empty address.
"""

from __future__ import annotations

import csv
import json
from typing import IO

from ..store import Store
from .formulas import neutralise

EXPORT_COLUMNS = ("email", "name", "status", "tags", "attributes", "source", "created_at", "updated_at",
                  "erased")


def export_csv(store: Store, out: IO[str]) -> int:
    """Write every erasure, then every subscriber, to `out` as CSV that `import_file`
    reads back unchanged.

    Tags and attributes are JSON; any cell a spreadsheet would run as a
    formula gets a leading ', which import takes off. Returns the count of
    subscribers.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for hash_, at in store.erasures():
        writer.writerow(["", "", "erased", "", "", "", at, at, hash_])
    count = 0
    for subscriber in store.subscribers():
        writer.writerow([
            neutralise(subscriber.email), neutralise(subscriber.name), subscriber.status,
            json.dumps(list(subscriber.tags), ensure_ascii=False),
            json.dumps(subscriber.attributes, ensure_ascii=False, sort_keys=True),
            neutralise(subscriber.source), subscriber.created_at, subscriber.updated_at, "",
        ])
        count += 1
    return count
