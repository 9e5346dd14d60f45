"""One check for "this input must have these columns (or keys)", worded who / expected / found / what to do."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class MissingInputError(ValueError):
    """An input frame (or mapping) lacks columns (or keys) a function needs."""

    def __init__(self, who: str, missing: Sequence[str], found: Iterable[str], what: str = "columns"):
        self.who, self.missing = who, list(missing)
        found = list(found)
        shown = found[:20] + (["..."] if len(found) > 20 else [])
        super().__init__(
            f"{who} must contain {what} {self.missing}, but they were missing; found {what} {shown}; "
            f"add them (see the table schemas in README.md)"
        )


def require_columns(
    found: Iterable[str], required: Iterable[str], who: str, *, what: str = "columns",
    error: type[MissingInputError] = MissingInputError,
) -> None:
    """Raise ``error`` naming ``who`` when any of ``required`` is not in ``found``."""
    have = set(found) if not isinstance(found, (set, frozenset)) else found
    missing = [c for c in required if c not in have]
    if missing:
        raise error(who, missing, list(found), what)
