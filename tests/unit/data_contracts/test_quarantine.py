"""Every row lands once: valid, or quarantined with its original values and all its reasons."""

from __future__ import annotations

import pandas as pd

from data_contracts.quarantine import REASON_COLUMN, ROW_NUMBER_COLUMN, RowReasons, split


def test_split_keeps_original_values_and_joins_reasons():
    raw = pd.DataFrame({"id": ["a", "b", "c"], "n": ["1", "x", "-2"]})
    coerced = pd.DataFrame({"id": ["a", "b", "c"], "n": pd.array([1, None, -2], dtype="Int64")})
    reasons = RowReasons()
    reasons.add([1], "n: cannot read 'x' as int")
    reasons.add([2], "n: expected n >= 0")
    reasons.add([2], "id: expected id unique")
    reasons.add([2], "n: expected n >= 0")  # the same reason twice is kept once

    valid, quarantined = split(raw, coerced, reasons)

    assert valid["id"].tolist() == ["a"]
    assert quarantined["n"].tolist() == ["x", "-2"]
    assert quarantined[ROW_NUMBER_COLUMN].tolist() == [1, 2]
    assert quarantined[REASON_COLUMN].tolist() == [
        "n: cannot read 'x' as int",
        "n: expected n >= 0; id: expected id unique",
    ]
    assert len(valid) + len(quarantined) == len(raw)


def test_mixed_object_columns_become_text_so_parquet_can_store_them(tmp_path):
    raw = pd.DataFrame({"v": pd.Series([1, "abc", None], dtype=object)})
    reasons = RowReasons()
    reasons.add([0, 1, 2], "bad")
    _, quarantined = split(raw, raw, reasons)
    quarantined.to_parquet(tmp_path / "q.parquet")
    assert pd.read_parquet(tmp_path / "q.parquet")["v"].tolist()[:2] == ["1", "abc"]
