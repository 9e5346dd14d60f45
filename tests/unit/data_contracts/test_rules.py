"""Rules come from the schema, one per declaration; the pandas reference evaluates each of them."""

from __future__ import annotations

import pandas as pd
import pytest

from data_contracts.rules import ROW_LEVEL_KINDS, failing_rows, table_rules, validation_order
from data_contracts.schema import TABLES

RUN_DATE = pd.Timestamp("2026-06-30")


@pytest.mark.parametrize("name", list(TABLES))
def test_one_rule_per_schema_declaration(name):
    t = TABLES[name]
    rules = table_rules(t)
    by_kind = {}
    for r in rules:
        by_kind.setdefault(r.kind, []).append(r.columns)

    assert by_kind["columns"] == [tuple(t.required_columns)]
    assert ("row_count" in by_kind) == t.required
    assert [c for (c,) in by_kind["dtype"]] == t.column_names
    assert [c for (c,) in by_kind["not_null"]] == [c.name for c in t.columns if not c.nullable]
    assert by_kind["unique"] == [t.primary_key]
    allowed = [c.name for c in t.columns if c.vocabulary is not None]  # the coffee program lists every vocabulary
    assert [c for (c,) in by_kind.get("in_set", []) + by_kind.get("elements_in_set", [])] == allowed
    assert [c for (c,) in by_kind.get("range", [])] == [
        c.name for c in t.columns if c.min is not None or c.max is not None
    ]
    assert [c for (c,) in by_kind.get("not_after_run_date", [])] == list(t.not_after_run_date)
    assert by_kind.get("ordered", []) == list(t.ordered_pairs)
    assert [(r.column, r.ref) for r in rules if r.kind == "foreign_key"] == [
        (fk.column, (fk.ref_table, fk.ref_column)) for fk in t.foreign_keys
    ]


def test_list_columns_check_their_elements():
    kinds = {r.column: r.kind for r in table_rules(TABLES["offers"]) if r.kind.endswith("in_set")}
    assert kinds == {
        "reward_category": "in_set",
        "offer_type": "in_set",
        "eligible_tiers": "elements_in_set",
        "channels": "elements_in_set",
    }


def test_parents_are_validated_before_children():
    order = validation_order()
    assert sorted(order) == sorted(TABLES)
    for name, t in TABLES.items():
        for fk in t.foreign_keys:
            assert order.index(fk.ref_table) < order.index(name)


def test_pandas_reference_finds_each_failure_on_its_row(tables):
    tx = tables["transactions"].astype({"quantity": "Int64", "is_refund": "boolean"})
    tx.loc[1, "quantity"] = 0  # range
    tx.loc[2, "channel"] = "fax"  # allowed values
    tx.loc[3, "ts"] = pd.Timestamp("2026-07-01 00:00")  # after the run date
    tx.loc[4, "amount"] = -1.0  # negative, not a refund
    tx.loc[5, "customer_id"] = "C404"  # orphan
    tx.loc[0, "store_id"] = None  # null
    refs = {("customers", "customer_id"): tables["customers"]["customer_id"]}
    found = {
        (r.kind, r.column): list(failing_rows(r, tx, RUN_DATE, refs))
        for r in table_rules(TABLES["transactions"])
        if r.kind in ROW_LEVEL_KINDS
    }
    assert {k: v for k, v in found.items() if v} == {
        ("range", "quantity"): [1],
        ("in_set", "channel"): [2],
        ("not_after_run_date", "ts"): [3],
        ("non_negative_unless", "amount"): [4],
        ("foreign_key", "customer_id"): [5],
        ("not_null", "store_id"): [0],
    }


def test_timestamps_on_the_run_date_itself_are_allowed(tables):
    tx = tables["transactions"]
    rule = next(r for r in table_rules(TABLES["transactions"]) if r.kind == "not_after_run_date")
    tx.loc[0, "ts"] = pd.Timestamp("2026-06-30 23:59:59")
    assert list(failing_rows(rule, tx, RUN_DATE)) == []


def test_a_foreign_key_without_reference_values_is_a_clear_error(tables):
    rule = next(r for r in table_rules(TABLES["feedback"]) if r.kind == "foreign_key")
    with pytest.raises(KeyError, match="table 'feedback': no reference values .* customers.customer_id"):
        failing_rows(rule, tables["feedback"], RUN_DATE, references={})
