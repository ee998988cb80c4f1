"""The subscriber list → a CSV file that `import_file` reads back unchanged."""

from __future__ import annotations

import csv
import json
from typing import IO

from ..store import Store
from .formulas import neutralise

EXPORT_COLUMNS = ("email", "name", "status", "tags", "attributes", "source", "created_at", "updated_at")


def export_csv(store: Store, out: IO[str]) -> int:
    """Write every subscriber to `out` as CSV that `import_file` reads back unchanged.

    Tags and attributes are JSON; any cell a spreadsheet would run as a
    formula gets a leading ', which import takes off. Returns the count.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for subscriber in store.subscribers():
        writer.writerow([
            neutralise(subscriber.email), neutralise(subscriber.name), subscriber.status,
            json.dumps(list(subscriber.tags), ensure_ascii=False),
            json.dumps(subscriber.attributes, ensure_ascii=False, sort_keys=True),
            neutralise(subscriber.source), subscriber.created_at, subscriber.updated_at,
        ])
        count += 1
    return count
