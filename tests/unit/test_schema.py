"""The schema module is the single source of truth: it must be internally consistent and documented."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.docs import render_schema_markdown
from data_contracts.schema import TABLES, empty_frame, pandas_dtype, table

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("name", list(TABLES))
def test_keys_and_ordered_pairs_name_declared_columns(name):
    t = TABLES[name]
    declared = set(t.column_names)
    assert set(t.primary_key) <= declared
    assert set(t.not_after_run_date) <= declared
    for a, b in t.ordered_pairs:
        assert {a, b} <= declared
        assert t.column(a).type == t.column(b).type == "timestamp"


@pytest.mark.parametrize("name", list(TABLES))
def test_foreign_keys_reference_a_declared_primary_key(name):
    for fk in TABLES[name].foreign_keys:
        ref = table(fk.ref_table)
        assert ref.primary_key == (fk.ref_column,)
        assert TABLES[name].column(fk.column).type == ref.column(fk.ref_column).type


def test_sign_exemptions_name_a_bool_column_of_the_same_table():
    exempt = [(t, c) for t in TABLES.values() for c in t.columns if c.negative_only_when]
    assert [(t.name, c.name) for t, c in exempt] == [("transactions", "amount")]
    for t, c in exempt:
        assert t.column(c.negative_only_when).type == "bool"


def test_primary_key_columns_are_never_nullable():
    for t in TABLES.values():
        for name in t.primary_key:
            assert not t.column(name).nullable, f"{t.name}.{name}"


def test_empty_frame_has_the_declared_dtypes():
    frame = empty_frame("offer_events")
    assert list(frame.columns) == TABLES["offer_events"].column_names
    assert frame["viewed_at"].dtype == "datetime64[ns]"
    assert frame["is_control"].dtype == bool
    assert pandas_dtype(table("customers").column("birth_year")) == "Int64"
    assert pd.api.types.is_string_dtype(frame["customer_id"].dtype)


def test_unknown_names_raise_with_the_choices():
    with pytest.raises(KeyError, match=r"unknown table 'orders'; expected one of \['customers'"):
        table("orders")
    with pytest.raises(KeyError, match="table 'customers' has no column 'email'"):
        table("customers").column("email")


def test_readme_schema_block_is_generated_from_the_schema():
    assert render_schema_markdown() in README.read_text(), (
        "README.md's schema block is stale: run `.venv/bin/python -m pipelines.docs`"
    )


def test_readme_program_block_is_generated_from_the_program_schema():
    from data_contracts.docs import render_program_markdown

    block = render_program_markdown()
    assert "`economics.gross_margin_rate`" in block and "`hierarchy.levels`" in block  # every key is listed
    assert block in README.read_text(), (
        "README.md's 'Bring your own program' block is stale: run `.venv/bin/python -m pipelines.docs`"
    )
