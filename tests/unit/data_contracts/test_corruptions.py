"""One corruption per failure family, checked by real GX validation: message, exit code, quarantine counts.

Validating a folder costs a few seconds of GX overhead, so corruptions that cannot interfere with
each other share one folder (one run per module), and each family still has its own test.
"""

from __future__ import annotations

import pandas as pd
import pytest

from data_contracts.coercion import coerce_table
from data_contracts.errors import (
    EmptyTableError,
    ForeignKeyUnavailableError,
    MissingColumnsError,
    MissingTableError,
    TooManyInvalidRowsError,
    UnreadableTableError,
)
from data_contracts.program import COFFEE_PROGRAM_PATH
from data_contracts.quarantine import REASON_COLUMN, ROW_NUMBER_COLUMN
from data_contracts.rules import ROW_LEVEL_KINDS, failing_rows, table_rules
from data_contracts.schema import TABLES, pandas_dtype
from pipelines.io import read_validated
from pipelines.validate import read_raw_table, validate_directory

FK = "[expect_column_values_to_be_in_reference]"


def _validate(tmp, tables, write_raw, validator, csv=(), prepare=None, max_invalid_fraction=1.0):
    write_raw(tables, tmp / "raw", csv=csv)
    if prepare:
        prepare(tmp / "raw")
    result = validate_directory(
        tmp / "raw", tmp / "validated", tmp / "quarantine", tmp / "reports",
        max_invalid_fraction=max_invalid_fraction, validator=validator,
    )
    quarantined = {
        name: pd.read_parquet(path).set_index(ROW_NUMBER_COLUMN)
        for name in TABLES
        if (path := tmp / "quarantine" / f"{name}.parquet").exists()
    }
    for report in result.tables.values():
        assert report.rows_read == report.rows_valid + report.rows_quarantined + report.rows_unchecked
    return result, quarantined


def _counts(result):
    return {name: r.rows_quarantined for name, r in result.tables.items() if r.rows_quarantined}


def _errors(result):
    return {e.table: e for e in result.errors}


@pytest.fixture(scope="module")
def clean(tmp_path_factory, make_tables, write_raw, validator):
    tmp = tmp_path_factory.mktemp("clean")
    return (*_validate(tmp, make_tables(), write_raw, validator, csv=("offers", "feedback")), tmp)


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory, make_tables, write_raw, validator):
    """transactions without amount, offers header-only, offer_events missing, feedback in Latin-1."""
    tables = make_tables()
    tables["transactions"] = tables["transactions"].drop(columns="amount")
    tables["offers"] = tables["offers"].iloc[0:0]
    tables["feedback"].loc[0, "comment"] = "très bon café"

    def prepare(raw):
        (raw / "offer_events.parquet").unlink()
        text = (raw / "feedback.csv").read_text(encoding="utf-8")
        (raw / "feedback.csv").write_bytes(text.encode("latin-1"))

    tmp = tmp_path_factory.mktemp("broken_files")
    return _validate(tmp, tables, write_raw, validator, csv=("offers", "feedback"), prepare=prepare)


@pytest.fixture(scope="module")
def broken_rows(tmp_path_factory, make_tables, write_raw, validator):
    """Row-level corruptions in every table; transactions arrive as CSV text."""
    tables = make_tables()
    tx = tables["transactions"].astype({"quantity": object, "ts": object})
    tx.loc[2, "quantity"] = "abc"  # wrong dtype
    tx.loc[3, "ts"] = "31/02/2026 25:00"  # unparseable timestamp
    tx.loc[4, ["transaction_id", "product_id"]] = ["T1", "P1"]  # duplicate key of row 0
    tx.loc[5, "customer_id"] = "C404"  # orphan
    tables["transactions"] = tx
    tables["customers"].loc[1, "tier"] = "diamond"  # C2 quarantined: its offer event follows
    tables["offers"].loc[1, "eligible_tiers"] = ["gold", "vip"]  # O2 quarantined: its events follow
    tables["feedback"].loc[1, ["nps_score", "customer_id"]] = [11, "C404"]  # two failures, one row
    tmp = tmp_path_factory.mktemp("broken_rows")
    return _validate(tmp, tables, write_raw, validator, csv=("transactions",))


def test_clean_tables_pass_and_validated_dtypes_match_the_schema(clean, make_tables):
    result, quarantined, tmp = clean
    assert (result.exit_code, result.errors, quarantined, result.written) == (0, [], {}, True)
    validated = read_validated(tmp / "validated")
    assert set(validated) == set(TABLES) | {"products", "offer_products"}  # the catalogue tables too, when written
    assert len(validated["products"]) == len(validated["offer_products"]) == 0
    for name, frame in ((n, validated[n]) for n in TABLES):
        assert {c: str(d) for c, d in frame.dtypes.items()} == {c.name: pandas_dtype(c) for c in TABLES[name].columns}
        assert len(frame) == len(make_tables()[name])
    assert validated["offers"]["eligible_tiers"].map(list).tolist() == [["bronze", "silver"], ["gold", "platinum"]]
    assert all(r.failed == 0 and r.passed > 0 for r in result.tables.values() if r.source == "file")
    # products and offer_products are optional: absent, they are validated (and written) as empty tables
    assert {n: r.source for n, r in result.tables.items() if r.source != "file"} == {
        "products": "absent (validated as empty)", "offer_products": "absent (validated as empty)"
    }
    assert (tmp / "validated" / "program.toml").read_text() == (COFFEE_PROGRAM_PATH).read_text()


def test_hard_failures_exit_2_and_write_no_validated_tables(broken_files):
    result, _ = broken_files
    assert (result.exit_code, result.written) == (2, False)
    assert set(_errors(result)) == {"transactions", "feedback"}


def test_missing_required_column(broken_files):
    result, _ = broken_files
    err = _errors(result)["transactions"]
    assert isinstance(err, MissingColumnsError)
    assert err.missing == ["amount"]
    assert str(err).startswith("table 'transactions': must contain columns ['amount'], but they were missing")
    assert err.expectation == "expect_table_columns_to_match_set"
    report = result.tables["transactions"]
    assert (report.rows_read, report.rows_quarantined, report.rows_unchecked) == (6, 0, 6)


def test_header_only_optional_table_is_valid_and_empty(broken_files):
    result, _ = broken_files
    report = result.tables["offers"]
    assert (report.error, report.rows_read, report.source) == (None, 0, "file")


def test_empty_required_table(validator, tables):
    check = validator.check_table(TABLES["transactions"], tables["transactions"].iloc[0:0], {}, file="tx.csv")
    assert isinstance(check.error, EmptyTableError)
    assert str(check.error) == "table 'transactions': file 'tx.csv' holds no rows; expected at least 1"
    assert check.error.expectation == "expect_table_row_count_to_be_between"


def test_absent_optional_table_is_validated_as_empty(broken_files):
    result, _ = broken_files
    report = result.tables["offer_events"]
    assert (report.error, report.rows_read, report.file, report.source) == (None, 0, None, "absent (validated as empty)")


def test_file_not_found_for_the_required_table(validator, tmp_path, make_tables, write_raw):
    def remove_transactions(raw):
        (raw / "transactions.parquet").unlink()

    result, _ = _validate(tmp_path, make_tables(), write_raw, validator, prepare=remove_transactions)
    err = _errors(result)["transactions"]
    assert isinstance(err, MissingTableError) and result.exit_code == 2
    assert str(err).startswith("table 'transactions': no file 'transactions.parquet' or 'transactions.csv' in")


def test_non_utf8_csv(broken_files):
    result, _ = broken_files
    err = _errors(result)["feedback"]
    assert isinstance(err, UnreadableTableError)
    assert str(err) == (
        f"table 'feedback': file '{result.tables['feedback'].file}' is not valid UTF-8: byte 0xe8 on line 2; "
        "expected UTF-8 text, re-export the file as UTF-8"
    )


def test_zero_byte_csv_is_an_empty_table(tmp_path):
    (tmp_path / "feedback.csv").write_bytes(b"")
    with pytest.raises(EmptyTableError, match=r"table 'feedback': file '.*feedback.csv' is empty"):
        read_raw_table("feedback", tmp_path / "feedback.csv")


def test_children_of_a_failed_table_say_which_foreign_key_cannot_be_checked(validator, tmp_path, make_tables, write_raw):
    tables = make_tables()
    tables["customers"] = tables["customers"].drop(columns="customer_id")

    result, _ = _validate(tmp_path, tables, write_raw, validator)
    errors = _errors(result)
    assert isinstance(errors["customers"], MissingColumnsError)
    assert str(errors["feedback"]) == (
        "table 'feedback': cannot check foreign key 'customer_id' -> customers.customer_id because table "
        "'customers' failed; fix that table first"
    )
    assert all(isinstance(errors[n], ForeignKeyUnavailableError) for n in ("transactions", "offer_events"))
    assert "offers" not in errors and result.exit_code == 2


def test_row_failures_exit_1_and_every_row_lands_once(broken_rows):
    result, quarantined = broken_rows
    assert (result.exit_code, result.errors, result.written) == (1, [], True)
    assert _counts(result) == {"customers": 1, "transactions": 5, "offers": 1, "offer_events": 3, "feedback": 1}
    assert {n: sorted(q.index) for n, q in quarantined.items()} == {
        "customers": [1], "transactions": [0, 2, 3, 4, 5], "offers": [1], "offer_events": [1, 2, 3], "feedback": [1],
    }


def test_wrong_dtype(broken_rows):
    result, quarantined = broken_rows
    assert quarantined["transactions"].loc[2, REASON_COLUMN] == "quantity: cannot read 'abc' as int (int64) [coercion]"
    failed = {e.expectation: e for e in result.tables["transactions"].expectations if not e.success}
    assert (failed["coerce_to_int64"].columns, failed["coerce_to_int64"].unexpected_count) == (["quantity"], 1)
    assert failed["coerce_to_int64"].examples == ["'abc'"]


def test_unparseable_timestamp(broken_rows):
    _, quarantined = broken_rows
    row = quarantined["transactions"].loc[3]
    assert row[REASON_COLUMN] == "ts: cannot read '31/02/2026 25:00' as timestamp (datetime64[ns]) [coercion]"
    assert row["ts"] == "31/02/2026 25:00"  # the original value is kept


def test_duplicate_key_quarantines_every_row_sharing_it(broken_rows):
    result, quarantined = broken_rows
    reason = (
        "transaction_id+product_id: expected (transaction_id, product_id) is unique "
        "[expect_compound_columns_to_be_unique], got ('T1', 'P1')"
    )
    assert quarantined["transactions"].loc[[0, 4], REASON_COLUMN].tolist() == [reason, reason]
    unique = next(e for e in result.tables["transactions"].expectations if e.rule == "unique")
    assert (unique.success, unique.unexpected_count) == (False, 2)


def test_out_of_range_and_orphan_on_one_row_join_their_reasons(broken_rows):
    _, quarantined = broken_rows
    assert quarantined["feedback"].loc[1, REASON_COLUMN] == (
        "nps_score: expected nps_score >= 0 and <= 10 [expect_column_values_to_be_between], got 11; "
        f"customer_id: expected customer_id exists in customers.customer_id (parent row missing or quarantined) {FK}, "
        "got 'C404'"
    )


def test_orphan_foreign_keys_and_children_of_quarantined_parents(broken_rows):
    _, quarantined = broken_rows
    assert quarantined["transactions"].loc[5, REASON_COLUMN] == (
        f"customer_id: expected customer_id exists in customers.customer_id (parent row missing or quarantined) {FK}, "
        "got 'C404'"
    )
    assert quarantined["customers"].loc[1, REASON_COLUMN].startswith("tier: expected tier is one of")
    events = quarantined["offer_events"][REASON_COLUMN]
    assert events[1].startswith("customer_id: expected customer_id exists in customers.customer_id")
    assert events[1].endswith("got 'C2'")
    assert events[2].startswith("offer_id: expected offer_id exists in offers.offer_id") and events[2].endswith("'O2'")
    assert quarantined["offers"].loc[1, REASON_COLUMN] == (
        "eligible_tiers: expected every element of eligible_tiers is one of ['bronze', 'silver', 'gold', 'platinum'] "
        f"(vocabulary 'tiers' of program file '{COFFEE_PROGRAM_PATH}') "
        "[expect_column_list_elements_to_be_in_set], got ['gold', 'vip']"
    )


def test_json_report_lists_expectations_with_counts_and_examples(broken_rows):
    import json

    result, _ = broken_rows
    report = json.loads(result.report_path.read_text())
    assert report["exit_code"] == 1
    feedback = report["tables"]["feedback"]
    assert (feedback["rows_read"], feedback["rows_valid"], feedback["rows_quarantined"]) == (2, 1, 1)
    nps = next(e for e in feedback["expectations"] if e["rule"] == "range")
    assert (nps["expectation"], nps["success"], nps["unexpected_count"], nps["examples"]) == (
        "expect_column_values_to_be_between", False, 1, ["11"]
    )
    assert feedback["expectations_passed"] + feedback["expectations_failed"] == len(feedback["expectations"])


@pytest.mark.parametrize(
    ("name", "row", "column", "value", "reason"),
    [
        ("transactions", 1, "channel", "fax", r"channel: expected channel is one of \['store'.* got 'fax'"),
        ("transactions", 2, "ts", pd.Timestamp("2026-07-01 00:00"),
         r"ts: expected ts is not after the run date 2026-06-30 \[expect_column_values_to_be_between\], got 2026-07-01"),
        ("transactions", 3, "amount", -6.0, r"amount: expected amount >= 0 unless is_refund is true .* got -6.0"),
        ("transactions", 0, "store_id", None, r"store_id: expected store_id is not null \[expect_column_values_to_not_be_null\]"),
        ("offer_events", 0, "viewed_at", pd.Timestamp("2026-04-01"),
         r"sent_at\+viewed_at: expected sent_at <= viewed_at where both are set "
         r"\[expect_column_pair_values_a_to_be_greater_than_b\], got \(2026-04-02 07:00:00, 2026-04-01 00:00:00\)"),
        ("offers", 1, "valid_to", pd.Timestamp("2026-04-01"), r"valid_from\+valid_to: expected valid_from <= valid_to"),
    ],
)
def test_row_rules_quarantine_exactly_the_broken_row(validator, tables, name, row, column, value, reason):
    tables[name].loc[row, column] = value
    references = {(n, c): f[c] for n, f in tables.items() for c in f.columns}
    check = validator.check_table(TABLES[name], tables[name], references, max_invalid_fraction=1.0)
    assert check.error is None
    assert check.quarantined[ROW_NUMBER_COLUMN].tolist() == [row]
    assert check.quarantined[REASON_COLUMN].str.fullmatch(".*" + reason + ".*").all(), check.quarantined[REASON_COLUMN][0]
    assert len(check.valid) == len(tables[name]) - 1


def test_too_many_invalid_rows_fail_the_table_naming_column_expectation_count_and_example(validator, tables):
    tables["transactions"].loc[[0, 1, 2], "quantity"] = 0
    references = {("customers", "customer_id"): tables["customers"]["customer_id"]}
    check = validator.check_table(TABLES["transactions"], tables["transactions"], references, max_invalid_fraction=0.25)
    assert isinstance(check.error, TooManyInvalidRowsError)
    assert str(check.error) == (
        "table 'transactions': 3 of 6 rows (50.00%) are invalid, more than the allowed 25.00%: column 'quantity' "
        "failed expect_column_values_to_be_between (quantity > 0) on 3 rows, e.g. 0, 0"
    )
    assert len(check.quarantined) == 3 and len(check.valid) == 3


@pytest.mark.parametrize("grouped", [False, True], ids=["one-batch", "column-groups"])
def test_gx_and_the_pandas_reference_agree_row_for_row(validator, tables, run_date, monkeypatch, grouped):
    if grouped:  # big tables are validated in narrow column groups; force that path on the tiny one
        monkeypatch.setattr(validator, "GROUP_ROWS", 0)
    tx = tables["transactions"]
    tx.loc[0, "quantity"] = -1
    tx.loc[1, "category"] = "pizza"
    tx.loc[2, "amount"] = -3.0
    tx.loc[3, "ts"] = pd.Timestamp("2027-01-01")
    tx.loc[4, ["transaction_id", "product_id"]] = ["T1", "P1"]
    tx.loc[5, "customer_id"] = "C404"
    references = {("customers", "customer_id"): tables["customers"]["customer_id"]}
    check = validator.check_table(TABLES["transactions"], tx, references, max_invalid_fraction=1.0)

    frame = coerce_table(TABLES["transactions"], tx).frame
    for rule_id, rule in enumerate(table_rules(TABLES["transactions"])):
        if rule.kind in ROW_LEVEL_KINDS:
            expected = sorted(failing_rows(rule, frame, run_date, references))
            assert sorted(check.rule_failures.get(rule_id, [])) == expected, rule
    assert sorted(check.quarantined[ROW_NUMBER_COLUMN]) == [0, 1, 2, 3, 4, 5]
