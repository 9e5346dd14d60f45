"""Defaults of absent optional columns, and members derived from a purchase log."""

from __future__ import annotations

import pandas as pd
import pytest

from data_contracts.coercion import parse_timestamps
from data_contracts.defaults import derive_customers, fill_defaults
from data_contracts.program import coffee_program
from data_contracts.schema import TABLES, UNKNOWN

LOG = pd.DataFrame({
    "customer_id": ["C1", "C1", "C2"],
    "ts": ["2026-05-02 09:00", "2026-05-01 08:00", "2026-05-03 10:00"],
    "amount": ["3.5", "-1.0", "abc"],
})


def test_a_purchase_log_gets_every_transactions_column():
    filled, defaulted = fill_defaults(TABLES["transactions"], LOG, coffee_program())
    assert defaulted == ["transaction_id", "store_id", "channel", "product_id", "category", "quantity", "is_refund"]
    assert filled["transaction_id"].tolist() == ["C1@2026-05-02 09:00", "C1@2026-05-01 08:00", "C2@2026-05-03 10:00"]
    assert filled["is_refund"].tolist() == [False, True, False]  # 'abc' is no refund; coercion quarantines it
    assert filled["quantity"].tolist() == [1, 1, 1]
    assert (filled["category"] == UNKNOWN).all() and (filled["product_id"] == UNKNOWN).all()


def test_category_comes_from_the_products_table_when_there_is_one():
    log = LOG.assign(product_id=["P1", "P2", "P9"])
    products = pd.DataFrame({"product_id": ["P1", "P2"], "category": ["coffee", "bakery"]})
    filled, _ = fill_defaults(TABLES["transactions"], log, coffee_program(), {"products": products})
    assert filled["category"].tolist() == ["coffee", "bakery", UNKNOWN]


def test_members_and_offers_get_program_defaults():
    customers, _ = fill_defaults(TABLES["customers"], pd.DataFrame({"customer_id": ["C1", "C2"]}), coffee_program(),
                                 {"transactions": LOG})
    assert customers["tier"].tolist() == ["bronze", "bronze"]  # the program's lowest tier
    assert customers["marketing_consent"].tolist() == [False, False]
    assert customers["signup_date"].astype(str).tolist() == ["2026-05-01 08:00:00", "2026-05-03 10:00:00"]
    offers = pd.DataFrame({"offer_id": ["O1"], "valid_from": ["2026-01-01"], "valid_to": ["2026-02-01"]})
    offers, _ = fill_defaults(TABLES["offers"], offers, coffee_program())
    assert offers.loc[0, "channels"] == list(coffee_program().allowed("offer_channels"))
    assert (offers.loc[0, "name"], offers.loc[0, "value"]) == ("O1", 0.0)


def test_a_required_column_is_never_defaulted():
    with pytest.raises(ValueError, match=r"table 'transactions': required columns \['amount'\] are absent"):
        fill_defaults(TABLES["transactions"], LOG.drop(columns="amount"), coffee_program())


def test_derived_members_sign_up_at_their_first_purchase():
    members = derive_customers(LOG)
    assert members["customer_id"].tolist() == ["C1", "C2"]
    assert members["signup_date"].astype(str).tolist() == ["2026-05-01 08:00:00", "2026-05-03 10:00:00"]


def test_mixed_offsets_keep_the_time_as_written():
    ts = parse_timestamps(pd.Series(["2026-05-01 08:15+02:00", "2026-05-01T09:00:00Z", "2026-05-01 10:00",
                                     "2026-05-01", "2026-05-01 11:00:00.5-0530", None, "not a time"]))
    assert str(ts.dtype) == "datetime64[ns]"
    assert ts.tolist()[:5] == [pd.Timestamp(v) for v in (
        "2026-05-01 08:15", "2026-05-01 09:00", "2026-05-01 10:00", "2026-05-01", "2026-05-01 11:00:00.5")]
    assert ts.isna().tolist()[5:] == [True, True]
