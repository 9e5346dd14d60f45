"""Regenerate the generated parts of the docs: `python -m pipelines.docs`."""

from __future__ import annotations

import re
from pathlib import Path

from data_contracts.docs import BEGIN_MARK, END_MARK, render_schema_markdown

README = Path(__file__).resolve().parent.parent / "README.md"


def update_readme(path: Path = README) -> bool:
    """Replace the schema block of the README; True when the file changed."""
    text = path.read_text()
    pattern = re.compile(re.escape(BEGIN_MARK) + ".*?" + re.escape(END_MARK), re.S)
    if not pattern.search(text):
        raise ValueError(f"'{path}' has no schema block: expected a line '{BEGIN_MARK}' ... '{END_MARK}'")
    new = pattern.sub(lambda _: render_schema_markdown(), text)
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    changed = update_readme()
    print("README.md schema block " + ("updated" if changed else "already up to date"))
