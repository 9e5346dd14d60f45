"""Schema -> GX suite round trip: one expectation per declared rule, of the family that checks it."""

from __future__ import annotations

import pandas as pd
import pytest

from data_contracts.expectations import FILE_KINDS, file_suite, value_suite
from data_contracts.rules import table_rules
from data_contracts.schema import TABLES
RUN_DATE = pd.Timestamp("2026-06-30")

EXPECTATION_FAMILY = {
    "columns": {"expect_table_columns_to_match_set"},
    "row_count": {"expect_table_row_count_to_be_between"},
    "dtype": {"expect_column_dtype_to_be_in"},
    "not_null": {"expect_column_values_to_not_be_null"},
    "unique": {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"},
    "in_set": {"expect_column_values_to_be_in_set"},
    "elements_in_set": {"expect_column_list_elements_to_be_in_set"},
    "range": {"expect_column_values_to_be_between"},
    "not_after_run_date": {"expect_column_values_to_be_between"},
    "ordered": {"expect_column_pair_values_a_to_be_greater_than_b"},
    "non_negative_unless": {"expect_column_values_to_be_between"},
    "foreign_key": {"expect_column_values_to_be_in_reference"},
}


def _references():
    return {(fk.ref_table, fk.ref_column): ["X"] for t in TABLES.values() for fk in t.foreign_keys}


@pytest.mark.parametrize("name", list(TABLES))
def test_suites_hold_one_expectation_per_rule(name):
    t = TABLES[name]
    rules = table_rules(t)
    expectations = file_suite(t).expectations + value_suite(t, RUN_DATE, _references()).expectations

    assert sorted(e.meta["rule_id"] for e in expectations) == list(range(len(rules)))
    for e in expectations:
        rule = rules[e.meta["rule_id"]]
        assert e.expectation_type in EXPECTATION_FAMILY[rule.kind], (rule, e.expectation_type)
        assert e.meta["columns"] == list(rule.columns)


def test_file_suite_checks_only_the_file_level_rules():
    kinds = {e.meta["rule"] for e in file_suite(TABLES["transactions"]).expectations}
    assert kinds == set(FILE_KINDS)


def test_compound_keys_use_the_compound_uniqueness_expectation():
    suite = value_suite(TABLES["offer_events"], RUN_DATE, _references())
    unique = [e for e in suite.expectations if e.meta["rule"] == "unique"]
    assert [e.expectation_type for e in unique] == ["expect_compound_columns_to_be_unique"]
    assert unique[0].column_list == ["customer_id", "offer_id", "sent_at"]


def test_the_run_date_bounds_timestamps_and_the_refund_flag_conditions_the_amount():
    suite = value_suite(TABLES["transactions"], RUN_DATE, _references())
    by_rule = {e.meta["rule"]: e for e in suite.expectations}
    assert str(by_rule["not_after_run_date"].max_value) == "2026-07-01 00:00:00"
    assert by_rule["not_after_run_date"].strict_max is True
    assert "is_refund" in repr(by_rule["non_negative_unless"].row_condition)


def test_value_suite_needs_reference_values_for_foreign_keys():
    with pytest.raises(KeyError, match="table 'offer_events': no reference values"):
        value_suite(TABLES["offer_events"], RUN_DATE, references={})
