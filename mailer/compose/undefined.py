"""What a template is told when it names something that is not there.

Jinja's own message names the Python class (``'mailer.config.
NewsletterSettings object' has no attribute 'nmae'``), which means nothing
to a writer. Here the message names the thing as the template spells it and
what it does have: ``newsletter.nmae is not a setting (known: name,
language, …)``.
"""

from __future__ import annotations

import dataclasses
import typing

import jinja2

from ..config import Settings

# Each table of newsletter.toml by the type that holds it: the template sees
# it as `newsletter`, `sender`, … (and `settings` for the whole file).
_SETTINGS_TABLES = {hint: name for name, hint in typing.get_type_hints(Settings).items()
                    if dataclasses.is_dataclass(hint)} | {Settings: "settings"}


class NamedUndefined(jinja2.StrictUndefined):
    """StrictUndefined whose error names the template's variable and what it offers."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        owner, name = self._undefined_obj, self._undefined_name
        if owner is jinja2.utils.missing or not isinstance(name, str):
            return super()._undefined_message
        shown = name if name.isidentifier() else repr(name)
        kind = type(owner)
        if kind in _SETTINGS_TABLES:
            return (f"{_SETTINGS_TABLES[kind]}.{shown} is not a setting "
                    f"(known: {', '.join(_known(owner))})")
        if isinstance(owner, dict):
            keys = ", ".join(sorted(map(str, owner))) or "none"
            return f"there is no key {shown} here (keys: {keys})"
        if kind.__module__.startswith("mailer."):
            label = getattr(kind, "template_label", kind.__name__.lower())
            return f"{label}.{shown} is not defined (known: {', '.join(_known(owner))})"
        return super()._undefined_message


def _known(owner: object) -> list[str]:
    """The names a template can read on `owner`: its fields, then its properties."""
    declared = getattr(type(owner), "template_fields", None)
    if declared is not None:
        return list(declared)
    fields = [f.name for f in dataclasses.fields(owner)] if dataclasses.is_dataclass(owner) else []
    properties = sorted(n for n, v in vars(type(owner)).items()
                        if isinstance(v, property) and not n.startswith("_"))
    return fields + [p for p in properties if p not in fields]
