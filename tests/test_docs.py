"""The README documents every setting there is."""

from __future__ import annotations

import dataclasses
import re
import typing

from mailer.config import Settings

from .conftest import REPO


def test_readme_documents_every_setting():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    hints = typing.get_type_hints(Settings)
    for section in dataclasses.fields(Settings):
        assert f"[{section.name}]" in table, section.name
        kind = hints[section.name]
        if dataclasses.is_dataclass(kind):
            for field in dataclasses.fields(kind):
                assert re.search(rf"`(\[{section.name}\] )?{field.name}`", table), \
                    f"[{section.name}] {field.name} is not documented in README.md"
