"""Profile manifests: what a profile file holds (features, dtypes, as_of, rows, input digest), and checks against it.

A manifest is a plain JSON-able dict:

    {"manifest_version": 1, "feature_set": "<16 hex>", "as_of": "2026-06-30T00:00:00",
     "row_count": 3000, "input_digest": "<sha256 hex>",
     "features": [{"name": "days_since_last_visit", "dtype": "float64"}, ...],
     "non_feature_columns": ["customer_id", "habit_tags"]}
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.catalogue import feature_set_digest
from features.history import to_as_of

MANIFEST_VERSION = 1
# Columns that can sit next to features in a profile frame without being features.
NON_FEATURE_COLUMNS: tuple[str, ...] = ("customer_id", "as_of", "habit_tags")

# The timestamp that places each table's rows in time (offers is a catalogue: used whole).
TIME_COLUMNS: dict[str, str | None] = {
    "customers": "signup_date",
    "transactions": "ts",
    "offers": None,
    "offer_events": "sent_at",
    "feedback": "submitted_at",
}


class FeatureMismatchError(ValueError):
    """The columns on hand do not match the features a manifest (or model) expects."""

    def __init__(self, missing: list[str], extra: list[str], where: str = "profiles"):
        self.missing = list(missing)
        self.extra = list(extra)
        super().__init__(
            f"{where} do not match the feature manifest: missing features {self.missing}, "
            f"unexpected features {self.extra}; rebuild the profiles with `rewards features` "
            "or use the model trained on this feature set"
        )


def make_manifest(profiles: pd.DataFrame, as_of, input_digest: str) -> dict:
    """The manifest describing ``profiles`` built at ``as_of`` from inputs with ``input_digest``."""
    features = [c for c in profiles.columns if c not in NON_FEATURE_COLUMNS]
    return {
        "manifest_version": MANIFEST_VERSION,
        "feature_set": feature_set_digest(),
        "as_of": to_as_of(as_of).isoformat(),
        "row_count": int(len(profiles)),
        "input_digest": input_digest,
        "features": [{"name": c, "dtype": str(profiles[c].dtype)} for c in features],
        "non_feature_columns": [c for c in profiles.columns if c in NON_FEATURE_COLUMNS],
    }


def manifest_feature_names(manifest: dict) -> list[str]:
    """Feature names a manifest declares, in order."""
    try:
        return [f["name"] for f in manifest["features"]]
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a feature manifest: expected a 'features' list of {{name, dtype}}, got {manifest!r:.200}") from err


def check_manifest(columns: Iterable[str], manifest: dict) -> None:
    """Raise FeatureMismatchError unless ``columns`` (id/meta columns aside) are exactly the manifest's features."""
    expected = manifest_feature_names(manifest)
    present = [c for c in columns if c not in NON_FEATURE_COLUMNS]
    missing = [c for c in expected if c not in set(present)]
    extra = [c for c in present if c not in set(expected)]
    if missing or extra:
        raise FeatureMismatchError(missing, extra)


def _as_text(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return "|".join(map(str, value))
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _hashable(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns (the list columns, e.g. offers.eligible_tiers) as text so they can be hashed."""
    objects = [c for c in frame.columns if frame[c].dtype == object]
    if not objects:
        return frame
    return frame.assign(**{c: frame[c].map(_as_text) for c in objects})


def input_digest(tables: dict[str, pd.DataFrame], as_of) -> str:
    """sha256 over the rows of each table that lie before ``as_of`` (row order and later rows ignored)."""
    as_of = to_as_of(as_of)
    digest = hashlib.sha256()
    for name in sorted(TIME_COLUMNS):
        if name not in tables:
            continue
        frame = tables[name]
        column = TIME_COLUMNS[name]
        if column is not None:
            frame = frame.loc[frame[column] < as_of]
        row_hashes = pd.util.hash_pandas_object(_hashable(frame), index=False).to_numpy()
        digest.update(name.encode())
        digest.update(np.sort(row_hashes).tobytes())
    return digest.hexdigest()
