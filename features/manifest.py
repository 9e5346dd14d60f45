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
# Columns whose values at or after as_of are not yet known at as_of (blanked before hashing).
MASKED_AFTER_AS_OF: dict[str, tuple[str, ...]] = {"offer_events": ("viewed_at", "redeemed_at")}


# Features that read only one optional table: a table with no rows (absent from the raw folder, so
# validated as empty) leaves them out of profiles, manifests and models, rather than a column of zeros.
TABLE_FAMILIES: dict[str, tuple[str, ...]] = {"offer_events": ("offer_history",)}
TABLE_FEATURES: dict[str, tuple[str, ...]] = {
    "feedback": ("feedback_count", "last_nps_score", "mean_nps_score", "last_nps_group", "days_since_last_feedback"),
}


def absent_features(tables: dict[str, pd.DataFrame], program=None) -> dict[str, list[str]]:
    """Per optional table that holds no rows, the declared features (of ``program``'s catalogue,
    default the built-in program's) that would read it."""
    from features.catalogue import catalogue

    features = catalogue(program).features
    out: dict[str, list[str]] = {}
    for table in sorted(set(TABLE_FAMILIES) | set(TABLE_FEATURES)):
        frame = tables.get(table)
        if frame is not None and len(frame):
            continue
        families, names = TABLE_FAMILIES.get(table, ()), TABLE_FEATURES.get(table, ())
        out[table] = [f.name for f in features if f.family in families or f.name in names]
    return out


def drop_absent(frame: pd.DataFrame, absent: dict[str, list[str]]) -> pd.DataFrame:
    """``frame`` without the features of absent tables (those it has)."""
    names = {n for features in absent.values() for n in features}
    return frame.drop(columns=[c for c in frame.columns if c in names])


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


def make_manifest(profiles: pd.DataFrame, as_of, input_digest: str, program_digest: str | None = None,
                  absent: dict[str, list[str]] | None = None, *, program=None) -> dict:
    """The manifest describing ``profiles`` built at ``as_of`` from inputs with ``input_digest``.

    ``program_digest`` names the program file of the data; ``absent`` lists, per table that holds no
    rows, the features left out of the profiles because they would read it; ``feature_set`` is the
    digest of ``program``'s catalogue (default: the built-in program's)."""
    features = [c for c in profiles.columns if c not in NON_FEATURE_COLUMNS]
    extra = {"program_digest": program_digest} if program_digest else {}
    if absent is not None:
        extra["absent_tables"] = {table: list(names) for table, names in absent.items()}
    return {
        "manifest_version": MANIFEST_VERSION,
        "feature_set": feature_set_digest(program),
        "as_of": to_as_of(as_of).isoformat(),
        "row_count": int(len(profiles)),
        "input_digest": input_digest,
        "features": [{"name": c, "dtype": str(profiles[c].dtype)} for c in features],
        "non_feature_columns": [c for c in profiles.columns if c in NON_FEATURE_COLUMNS],
        **extra,
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


def _quote(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def input_digest(tables: dict[str, pd.DataFrame], as_of) -> str:
    """sha256 over what a profile at ``as_of`` can see of the input tables.

    Rows before ``as_of`` only (by each table's TIME_COLUMNS entry), with views and redemptions at or
    after ``as_of`` blanked, hashed row by row and combined order-free (count, sum and xor of row
    hashes per table): row order and later rows do not change it. Row hashes come from DuckDB's
    ``hash()`` (a vectorised C++ hash, ~5x faster than pandas' on 10M rows of strings), so the digest
    is stable for one DuckDB version.
    """
    import duckdb

    as_of = to_as_of(as_of)
    digest = hashlib.sha256()
    con = duckdb.connect()
    try:
        for name in sorted(TIME_COLUMNS):
            if name not in tables:
                continue
            frame = tables[name]
            view = f"input_{name}"
            con.register(view, frame)
            values = []
            for column in sorted(map(str, frame.columns)):
                q = _quote(column)
                hidden = column in MASKED_AFTER_AS_OF.get(name, ())
                values.append(f"CASE WHEN {q} < $as_of THEN {q} END" if hidden else q)
            where = f"WHERE {_quote(TIME_COLUMNS[name])} < $as_of" if TIME_COLUMNS[name] else ""
            sql = (
                f"SELECT count(*), coalesce(sum(h::HUGEINT), 0)::VARCHAR, coalesce(bit_xor(h), 0)::VARCHAR "
                f"FROM (SELECT hash({', '.join(values)}) AS h FROM {view} {where})"
            )
            params = {"as_of": as_of} if "$as_of" in sql else None
            count, total, xor = con.execute(sql, params).fetchall()[0]
            digest.update(f"{name}:{','.join(sorted(map(str, frame.columns)))}:{count}:{total}:{xor}\n".encode())
            con.unregister(view)
    finally:
        con.close()
    return digest.hexdigest()
