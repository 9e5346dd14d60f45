"""Bring your own program, through the real CLI and real GX: `rewards init`, then `rewards validate`.

A purchase log alone (customer_id, ts, amount) is a program; a value outside a listed vocabulary is
quarantined naming the column and the program file; a bad program file exits 2 naming the key; data
problems never show a traceback (mixed offsets, duplicated headers, a semicolon CSV); an internal
error exits 3.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.program import load_program
from data_contracts.quarantine import REASON_COLUMN
from pipelines.cli import app

pytestmark = pytest.mark.integration

RUN_DATE = "2026-06-30"
# Mixed offsets in one column: +02:00, Z and none (read as the wall-clock time as written).
LOG = """customer_id,ts,amount
C1,2026-05-01 08:00,3.50
C1,2026-05-02 09:00+02:00,4.00
C2,2026-05-03T10:00:00Z,-2.00
C2,2026-05-04 10:00,5.25
C3,2026-06-01 18:30:00-05:00,12.00
"""


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _validate(raw, out, *extra):
    return _run(
        "validate", raw, "--out", out / "validated", "--quarantine", out / "quarantine",
        "--report-dir", out / "reports", "--run-date", RUN_DATE, *extra,
    )


@pytest.fixture
def log_only(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "transactions.csv").write_text(LOG)
    return raw


def test_a_purchase_log_alone_goes_through_init_and_validate(log_only, tmp_path):
    init = _run("init", log_only)
    assert init.exit_code == 0, init.output
    assert "tiers: none" in init.output and f"wrote {log_only / 'program.toml'}" in init.output

    result = _validate(log_only, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    validated = tmp_path / "out" / "validated"
    tx = pd.read_parquet(validated / "transactions.parquet")
    customers = pd.read_parquet(validated / "customers.parquet")
    assert tx["ts"].dt.strftime("%H:%M").tolist() == ["08:00", "09:00", "10:00", "10:00", "18:30"]  # offsets ignored
    assert tx["is_refund"].tolist() == [False, False, True, False, False]
    assert tx["quantity"].tolist() == [1] * 5
    assert tx["transaction_id"].nunique() == 5
    assert customers.set_index("customer_id")["signup_date"].dt.strftime("%m-%d").to_dict() == {
        "C1": "05-01", "C2": "05-03", "C3": "06-01"
    }
    assert len(pd.read_parquet(validated / "offers.parquet")) == 0
    assert (validated / "program.toml").read_text() == (log_only / "program.toml").read_text()
    report = json.loads((tmp_path / "out" / "reports" / "validation_report.json").read_text())
    assert report["tables"]["customers"]["source"] == "derived from transactions"
    assert report["program"]["digest"].startswith("sha256:")


def test_a_log_with_products_and_categories_lists_them(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    pd.DataFrame({
        "customer_id": ["C1", "C1", "C2"], "ts": ["2026-05-01 08:00"] * 2 + ["2026-05-02 12:00"],
        "amount": ["3.5", "2.0", "9.9"], "product_id": ["P1", "P2", "P3"], "category": ["drinks", "food", "food"],
    }).to_csv(raw / "transactions.csv", index=False)
    assert _run("init", raw).exit_code == 0
    assert load_program(raw / "program.toml").allowed("hierarchy") == ("drinks", "food")
    result = _validate(raw, tmp_path / "out")
    assert result.exit_code == 0, result.output
    tx = pd.read_parquet(tmp_path / "out" / "validated" / "transactions.parquet")
    assert tx.groupby("transaction_id").size().tolist() == [2, 1]  # two lines of one visit

    # A value outside the listed vocabulary: quarantined, the reason names the column and the program file.
    with open(raw / "transactions.csv", "a") as f:
        f.write("C2,2026-05-03 09:00,4.0,P9,pizza\n")
    result = _validate(raw, tmp_path / "out2", "--max-invalid-fraction", "0.5")
    assert result.exit_code == 1, result.output
    reason = pd.read_parquet(tmp_path / "out2" / "quarantine" / "transactions.parquet")[REASON_COLUMN].tolist()
    assert reason == [
        "category: expected category is one of ['drinks', 'food'] (vocabulary 'hierarchy' of program file "
        f"'{raw / 'program.toml'}') [expect_column_values_to_be_in_set], got 'pizza'"
    ]


def test_init_never_overwrites_without_force(log_only):
    assert _run("init", log_only).exit_code == 0
    again = _run("init", log_only)
    assert again.exit_code == 2
    assert "exists; expected no program file there: pass --force to overwrite it" in again.stderr
    assert _run("init", log_only, "--force").exit_code == 0


def test_the_default_program_points_to_rewards_init(log_only, tmp_path):
    result = _validate(log_only, tmp_path / "out")
    assert result.exit_code == 2
    assert f"run `rewards init {log_only}`" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: "colour = 'blue'\n" + t, "unknown key 'colour'"),
        (lambda t: t.replace("operating_cost_per_month = 0.0", "operating_cost_per_month = 'lots'"),
         "key 'economics.operating_cost_per_month': expected a valid number"),
    ],
)
def test_a_bad_program_file_exits_2_naming_the_key(log_only, tmp_path, edit, message):
    assert _run("init", log_only).exit_code == 0
    path = log_only / "program.toml"
    path.write_text(edit(path.read_text()))
    result = _validate(log_only, tmp_path / "out")
    assert result.exit_code == 2
    assert f"error: program file '{path}': {message}" in result.stderr
    assert "Traceback" not in result.output


def test_a_hierarchy_level_missing_from_products_exits_2_naming_it(log_only, tmp_path):
    pd.DataFrame({"product_id": ["P1"], "department": ["dairy"], "commodity": ["milk"]}).to_csv(
        log_only / "products.csv", index=False
    )
    assert _run("init", log_only).exit_code == 0
    (log_only / "products.csv").write_text("product_id,department\nP1,dairy\n")
    result = _validate(log_only, tmp_path / "out")
    assert result.exit_code == 2
    assert "error: table 'products': must contain columns ['commodity'], but they were missing" in result.stderr


def test_duplicated_header_fails_naming_the_column(log_only, tmp_path):
    (log_only / "transactions.csv").write_text("customer_id,ts,amount,amount\nC1,2026-05-01 08:00,3.5,4.0\n")
    _run("init", log_only)
    result = _validate(log_only, tmp_path / "out")
    assert result.exit_code == 2
    assert "repeats column 'amount' 2 times in its header" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("delimiter", "word"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_one_column_csv_gets_a_delimiter_hint(tmp_path, delimiter, word):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "transactions.csv").write_text(LOG.replace(",", delimiter))
    result = _validate(raw, tmp_path / "out")
    assert result.exit_code == 2
    assert f"it looks separated by {word}; expected comma-separated values" in result.stderr
    assert "Traceback" not in result.output


def test_an_internal_error_exits_3(log_only, tmp_path, monkeypatch):
    import pipelines.validate as validate

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(validate, "validate_directory", broken)
    result = _validate(log_only, tmp_path / "out")
    assert result.exit_code == 3
    assert "internal error: ZeroDivisionError: a bug" in result.stderr
    assert "not in the data" in result.stderr
