"""The default templates that ship inside the package, and copying them out.

A workspace needs no templates of its own: the ones here render every issue
until the writer wants another look. Then `copy_templates` puts them into the
workspace's templates folder, where each file overrides the default of the
same name (`compose.render` looks there first); a file the writer already has
is never overwritten, since it may hold an afternoon's edits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MailerError, os_reason

DEFAULT_TEMPLATES = Path(__file__).resolve().parent / "templates"


def default_template_names() -> list[str]:
    """The names of the package's templates, relative to its folder, sorted."""
    return sorted(
        path.relative_to(DEFAULT_TEMPLATES).as_posix()
        for path in DEFAULT_TEMPLATES.rglob("*.j2") if path.is_file()
    )


@dataclass
class CopyReport:
    """What `copy_templates` did to each default template."""

    folder: Path
    written: list[Path] = field(default_factory=list)
    same: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per template, for the command line."""
        return ([f"wrote {path}" for path in self.written]
                + [f"unchanged {path} (already the default)" for path in self.same]
                + [f"kept {path} (differs from the default; delete it to copy the default again)"
                   for path in self.kept])


def copy_templates(folder: Path, names: list[str] | None = None) -> CopyReport:
    """Write the default templates `names` (default: all) into `folder`.

    A file that is already there stays as it is, edited or not; the report
    says which were written, which already equal the default and which differ.
    """
    known = default_template_names()
    for name in names or []:
        if name not in known:
            raise MailerError(f"no default template {name!r}", hint=f"choose from {', '.join(known)}")
    report = CopyReport(folder)
    for name in names or known:
        source, target = DEFAULT_TEMPLATES / name, folder / name
        default = source.read_bytes()
        try:
            if target.exists():
                (report.same if target.read_bytes() == default else report.kept).append(target)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            # "x": never replace a file that appeared since the check above.
            with open(target, "xb") as out:
                out.write(default)
        except FileExistsError:
            report.kept.append(target)
            continue
        except OSError as exc:
            raise MailerError(f"cannot write: {os_reason(exc)}", path=target) from None
        report.written.append(target)
    return report
