"""A provider's sending limits, as a transport reports them.

Its own module because transports return it and the engine reads it:
neither side should import the other for one small value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    """A provider's sending limits: per second, per 24 hours, and what was used of the latter."""

    max_rate: float
    max_per_day: float
    sent_last_day: float

    @property
    def remaining(self) -> float:
        """Messages left in the 24-hour window (infinite when unlimited, shown as -1)."""
        return float("inf") if self.max_per_day < 0 else max(0.0, self.max_per_day - self.sent_last_day)
