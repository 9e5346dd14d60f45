"""Regenerate the generated parts of the docs: `python -m pipelines.docs`."""

from __future__ import annotations

import re
from pathlib import Path

from data_contracts.docs import (
    BEGIN_MARK,
    END_MARK,
    PROGRAM_BEGIN_MARK,
    PROGRAM_END_MARK,
    render_program_markdown,
    render_schema_markdown,
)

README = Path(__file__).resolve().parent.parent / "README.md"

# (begin marker, end marker, renderer): each generated block of the README.
BLOCKS = (
    (BEGIN_MARK, END_MARK, render_schema_markdown),
    (PROGRAM_BEGIN_MARK, PROGRAM_END_MARK, render_program_markdown),
)


def update_readme(path: Path = README) -> bool:
    """Replace the generated blocks of the README; True when the file changed."""
    text = path.read_text()
    new = text
    for begin, end, render in BLOCKS:
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
        if not pattern.search(new):
            raise ValueError(f"'{path}' has no generated block: expected a line '{begin}' ... '{end}'")
        new = pattern.sub(lambda _, render=render: render(), new)
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    changed = update_readme()
    print("README.md generated blocks " + ("updated" if changed else "already up to date"))
