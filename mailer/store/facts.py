"""What the store knows about itself: the id it was made with, and the tokens it issued before.

Read for every token checked, from the same connection that then acts on
it: the file at a store's path can be replaced while `mailer serve` runs,
and a token must be checked against the store it is about to change.
"""

from __future__ import annotations

from ..tokens import Signer
from .connection import StoreConnection


class FactQueries(StoreConnection):
    """The ``store_facts`` table (made by the schema's version 5)."""

    def signer(self, secret: bytes, list_id: str) -> Signer:
        """What issues and checks this store's unsubscribe tokens for the list `list_id`."""
        with self._translate():
            facts = dict(self._db.execute("SELECT name, value FROM store_facts"))
        through = facts.get("v1_tokens_through_send")
        return Signer(secret, facts["store_id"], list_id, None if through is None else int(through))
