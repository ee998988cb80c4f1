"""What composing changes in the author's text, so that lint can say so.

Some of what authors paste cannot reach a reader as it is: a control
character copied from Word or a terminal (invisible, and fatal to the MJML
renderer), an ``<iframe>`` no mail client plays. Composing drops or replaces
it and keeps a `Change` with the line, and `mailer lint` reports each one,
so that the author learns what the email shows instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# C0 and C1 controls but tab, LF and CR, DEL, and the two noncharacters
# that the MJML renderer refuses.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


@dataclass(frozen=True)
class Change:
    """One thing composing changed, at a line of the issue file."""

    line: int
    message: str


def drop_control_characters(text: str) -> tuple[str, list[Change]]:
    """`text` without control characters, and one `Change` per line that had some."""
    if not _CONTROL.search(text):
        return text, []
    changes = []
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        found = _CONTROL.findall(line)
        if found:
            names = ", ".join(sorted({f"U+{ord(c):04X}" for c in found}))
            changes.append(Change(number, f"control character {names} dropped; it is invisible "
                                          "and no mail client shows it"))
            lines[number - 1] = _CONTROL.sub("", line)
    return "\n".join(lines), changes
