"""Raw values become schema dtypes; what cannot be coerced is flagged on its row, never guessed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.coercion import coerce_column, coerce_table, to_canonical
from data_contracts.rules import validation_dtypes
from data_contracts.schema import TABLES, pandas_dtype


def _text(values):
    return pd.Series(values, dtype="str")


def test_csv_text_is_coerced_to_validation_dtypes_and_canonical_dtypes(tables):
    t = TABLES["offers"]
    raw = tables["offers"].astype(str)  # every value as text, the way a CSV arrives
    raw["eligible_tiers"] = ['["bronze", "silver"]', "gold|platinum"]
    raw["budget_redemptions"] = ["100", None]
    raw["channels"] = ['["app", "push"]', "email"]

    result = coerce_table(t, raw)

    assert result.failures == {}
    # No nulls in the int column: it is int64 already; budget_redemptions is nullable: Int64.
    assert all(str(result.frame[c.name].dtype) in validation_dtypes(c) for c in t.columns)
    assert str(result.frame["budget_redemptions"].dtype) == "Int64"
    canonical = to_canonical(t, result.frame)
    assert {c: str(d) for c, d in canonical.dtypes.items()} == {c.name: pandas_dtype(c) for c in t.columns}
    assert canonical["eligible_tiers"].tolist() == [["bronze", "silver"], ["gold", "platinum"]]
    assert canonical["valid_to"].tolist() == [pd.Timestamp("2026-06-30"), pd.Timestamp("2026-05-31")]


def test_unparseable_values_are_flagged_and_nulls_are_not():
    column = TABLES["transactions"].column("quantity")
    values, failed = coerce_column(column, _text(["2", "abc", None, "1.5", " 3 "]))
    assert values.tolist()[0] == 2 and values.tolist()[4] == 3
    assert failed.tolist() == [False, True, False, True, False]


def test_unparseable_timestamps_and_booleans_are_flagged():
    ts, ts_failed = coerce_column(TABLES["transactions"].column("ts"), _text(["2026-05-01 08:00:00", "yesterday"]))
    assert ts_failed.tolist() == [False, True]
    assert ts.iloc[0] == pd.Timestamp("2026-05-01 08:00")
    flag, flag_failed = coerce_column(TABLES["transactions"].column("is_refund"), _text(["True", "false", "maybe"]))
    assert flag.tolist()[:2] == [True, False]
    assert flag_failed.tolist() == [False, False, True]


def test_list_columns_accept_arrays_json_and_pipes_and_flag_the_rest():
    column = TABLES["offers"].column("channels")
    raw = pd.Series([np.array(["app", "push"], dtype=object), '["email"]', "store|web", "[1, 2]", "[oops"], dtype=object)
    values, failed = coerce_column(column, raw)
    assert values.tolist()[:3] == [["app", "push"], ["email"], ["store", "web"]]
    assert failed.tolist() == [False, False, False, True, True]


def test_typed_parquet_values_pass_through_unchanged(tables):
    t = TABLES["transactions"]
    result = coerce_table(t, tables["transactions"])
    assert result.failures == {}
    pd.testing.assert_frame_equal(to_canonical(t, result.frame), tables["transactions"])
