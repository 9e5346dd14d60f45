"""`rewards validate` end to end through the real CLI and real GX on the generated sample.

Done-when checks: the sample passes (exit 0); a copy with exactly 50 corrupted rows across tables
exits 1 with exactly those rows quarantined, each with a reason, and counts that add up; without
transactions.amount (a required column) it exits 2 naming the table and the column.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.quarantine import REASON_COLUMN, ROW_NUMBER_COLUMN
from data_contracts.schema import TABLES
from pipelines.cli import app
from pipelines.config import SAMPLE_END_DATE

pytestmark = pytest.mark.integration


def _validate(raw, out):
    args = [
        "validate", str(raw), "--out", str(out / "validated"), "--quarantine", str(out / "quarantine"),
        "--report-dir", str(out / "reports"), "--run-date", SAMPLE_END_DATE,
    ]
    return CliRunner().invoke(app, args, catch_exceptions=False)


def _write(tables: dict[str, pd.DataFrame], raw, csv=()):
    raw.mkdir(parents=True)
    for name, frame in tables.items():
        if name in csv:
            frame.to_csv(raw / f"{name}.csv", index=False)
        else:
            frame.to_parquet(raw / f"{name}.parquet", index=False)


def _corrupt_50(tables: dict[str, pd.DataFrame], seed: int = 7) -> dict[str, list[int]]:
    """Break exactly 50 rows across four tables (a mix of families), in place; return their positions."""
    rng = np.random.default_rng(seed)
    customers, tx, events, feedback = (tables[n] for n in ("customers", "transactions", "offer_events", "feedback"))
    used = set(tx["customer_id"]) | set(events["customer_id"]) | set(feedback["customer_id"])
    # Customers without dependent rows, so quarantining them orphans nothing.
    childless = np.flatnonzero(~customers["customer_id"].isin(used).to_numpy())
    c = rng.choice(childless, 5, replace=False)
    customers.loc[c[:2], "tier"] = "diamond"
    customers.loc[c[2], "points_balance"] = -5
    customers.loc[c[3], "birth_year"] = 1850
    customers.loc[c[4], "signup_date"] = pd.Timestamp("2026-09-01")

    t = rng.choice(np.flatnonzero(~tx["is_refund"].to_numpy()), 27, replace=False)
    tx.loc[t[0:3], "quantity"] = "abc"  # wrong dtype
    tx.loc[t[3:6], "ts"] = "2026-13-45 99:00"  # unparseable timestamp
    for k, pair in enumerate((t[6:8], t[8:10])):  # duplicate keys: both rows of a pair share a new key
        tx.loc[pair, "transaction_id"] = f"DUP-{k}"
        tx.loc[pair, "product_id"] = "P-DUP"
    tx.loc[t[10:13], "quantity"] = "0"  # out of range
    tx.loc[t[13:16], "customer_id"] = "C9999999"  # orphan
    tx.loc[t[16:19], "category"] = "pizza"  # not an allowed value
    tx.loc[t[19:22], "amount"] = -4.5  # negative without a refund
    tx.loc[t[22:25], "ts"] = "2026-07-15 10:00:00"  # after the run date
    tx.loc[t[25:27], "store_id"] = None  # null

    e = rng.choice(len(events), 11, replace=False)
    events.loc[e[0:3], "viewed_at"] = events.loc[e[0:3], "sent_at"] - pd.Timedelta(hours=1)
    events.loc[e[3:6], "channel"] = "fax"
    events.loc[e[6:9], "offer_id"] = "O999"
    events.loc[e[9:11], "redeemed_at"] = events.loc[e[9:11], "sent_at"] - pd.Timedelta(days=1)

    f = rng.choice(len(feedback), 7, replace=False)
    feedback.loc[f[0:3], "nps_score"] = 11
    feedback.loc[f[3:5], "customer_id"] = "C9999999"
    feedback.loc[f[5:7], "submitted_at"] = pd.Timestamp("2026-08-01")
    return {"customers": sorted(c), "transactions": sorted(t), "offer_events": sorted(e), "feedback": sorted(f)}


def test_generated_sample_passes(sample_raw_dir, tmp_path):
    result = _validate(sample_raw_dir, tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "reports" / "validation_report.json").read_text())
    for name, table in report["tables"].items():
        if name in TABLES:  # the five tables of the sample; products and offer_products are absent (optional)
            assert table["rows_read"] == table["rows_valid"] > 0, name
        else:
            assert (table["source"], table["rows_read"]) == ("absent (validated as empty)", 0), name
        assert table["expectations_failed"] == 0, name
    assert not (tmp_path / "quarantine").exists() or not list((tmp_path / "quarantine").iterdir())


def test_fifty_corrupted_rows_are_exactly_the_quarantined_rows(sample, tmp_path):
    tables = {n: f.copy() for n, f in sample.tables.items()}
    # Loosely typed Parquet: quantity and ts stored as text, so 'abc' and a bad date can be written.
    tables["transactions"] = tables["transactions"].astype({"quantity": "str", "ts": "str"})
    broken = _corrupt_50(tables)
    assert sum(map(len, broken.values())) == 50
    _write(tables, tmp_path / "raw", csv=("feedback",))

    result = _validate(tmp_path / "raw", tmp_path / "out")

    assert result.exit_code == 1, result.output
    total = sum(len(f) for f in tables.values())
    assert f"rows read {total} = valid {total - 50} + quarantined 50" in result.output
    for name in TABLES:
        path = tmp_path / "out" / "quarantine" / f"{name}.parquet"
        quarantined = pd.read_parquet(path) if path.exists() else pd.DataFrame({ROW_NUMBER_COLUMN: []})
        assert sorted(quarantined[ROW_NUMBER_COLUMN]) == broken.get(name, []), name
        if len(quarantined):
            assert quarantined[REASON_COLUMN].str.len().gt(0).all()
        validated = pd.read_parquet(tmp_path / "out" / "validated" / f"{name}.parquet")
        assert len(validated) + len(quarantined) == len(tables[name]), name

    q = pd.read_parquet(tmp_path / "out" / "quarantine" / "transactions.parquet").set_index(ROW_NUMBER_COLUMN)
    reasons = q[REASON_COLUMN]
    assert reasons[q["quantity"] == "abc"].tolist() == ["quantity: cannot read 'abc' as int (int64) [coercion]"] * 3
    assert reasons[q["ts"] == "2026-13-45 99:00"].tolist() == [
        "ts: cannot read '2026-13-45 99:00' as timestamp (datetime64[ns]) [coercion]"
    ] * 3
    assert q[REASON_COLUMN].str.contains(r"customer_id: expected customer_id exists in customers\.customer_id").sum() == 3
    assert q[REASON_COLUMN].str.contains(r"\[expect_compound_columns_to_be_unique\]").sum() == 4


def test_missing_required_column_exits_2_naming_table_and_column(sample, tmp_path):
    tables = dict(sample.tables)
    tables["transactions"] = tables["transactions"].drop(columns="amount")
    _write(tables, tmp_path / "raw")

    result = _validate(tmp_path / "raw", tmp_path / "out")

    assert result.exit_code == 2
    assert (
        "error: table 'transactions': must contain columns ['amount'], but they were missing" in result.stderr
    )
    assert "[expect_table_columns_to_match_set]" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "validated").exists()
