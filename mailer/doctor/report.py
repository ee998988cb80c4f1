"""What `mailer doctor` finds: one `Check` per thing that can stop an issue, and the `Report`.

Every check is data (name, status, detail, hint) built by the library; the
command only prints it. `guarded` turns an unexpected error inside a check
into that check's own line, so one broken part never hides the others
behind a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

OK, WARNING, PROBLEM = "ok", "warning", "problem"


@dataclass(frozen=True)
class Check:
    """One finding: `status` is ok, warning or problem; `hint` says what to do."""

    name: str
    status: str
    detail: str
    hint: str = ""

    def line(self) -> str:
        """The printed line; whatever a server answered, it stays one line."""
        text = f"{self.status:<7} {self.name}: {' '.join(self.detail.split())}"
        return f"{text} ({self.hint})" if self.hint else text


def ok(name: str, detail: str) -> Check:
    return Check(name, OK, detail)


def warning(name: str, detail: str, hint: str = "") -> Check:
    return Check(name, WARNING, detail, hint)


def problem(name: str, detail: str, hint: str = "") -> Check:
    return Check(name, PROBLEM, detail, hint)


def guarded(name: str, check: Callable[[], Check | list[Check]]) -> list[Check]:
    """Run `check`; an error it did not expect becomes a problem line named `name`."""
    try:
        found = check()
    except Exception as exc:  # noqa: BLE001 - any failure is this check's finding, not a crash
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return [problem(name, f"could not be checked: {reason}")]
    return found if isinstance(found, list) else [found]


@dataclass
class Report:
    """Every check in the order it ran; a problem anywhere means exit status 1."""

    checks: list[Check] = field(default_factory=list)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status == PROBLEM]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARNING]

    def summary(self) -> str:
        oks = len(self.checks) - len(self.problems) - len(self.warnings)
        return f"{oks} ok, {len(self.warnings)} warning(s), {len(self.problems)} problem(s)"

    def as_json(self) -> dict:
        return {"checks": [asdict(c) for c in self.checks], "problems": len(self.problems),
                "warnings": len(self.warnings)}
