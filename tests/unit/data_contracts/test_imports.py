"""The pure import converters: money and time parsing, salted customer keys, Shopify order arithmetic,
mapping files, and the program file's exchange rates."""

from __future__ import annotations

import pandas as pd
import pytest

from data_contracts.imports.generic import convert_with_mapping
from data_contracts.imports.mapping import SQUARE_ITEM_SALES, MappingError, load_mapping, parse_mapping
from data_contracts.imports.pseudonyms import SaltError, normalise_emails, pseudonymise
from data_contracts.imports.result import ExportFormatError
from data_contracts.imports.shopify import convert_orders, main_currency
from data_contracts.imports.values import parse_numbers, parse_times
from data_contracts.program import COFFEE_PROGRAM_PATH, Economics, ProgramError, parse_program

SALT = b"0123456789abcdef-test"
EUR = Economics(currency="EUR", operating_cost_per_month=0.0, gross_margin_rate=0.3, exchange_rates={"USD": 0.5})


def test_numbers_read_currency_symbols_separators_and_accounting_negatives():
    values = pd.Series(["8.00", "$8.00", "-$1.50", "($1.50)", "$1,234.50", "abc", None])
    assert parse_numbers(values, thousands_separator=",").fillna(-99).tolist() == [
        8.0, 8.0, -1.5, -1.5, 1234.5, -99, -99]
    assert parse_numbers(pd.Series(["1.234,56 €"]), decimal_separator=",", thousands_separator=".").tolist() == [1234.56]


def test_times_keep_the_wall_clock_and_follow_a_declared_format():
    shopify = parse_times(pd.Series(["2024-05-01 10:00:00 +0000", "2024-05-01 10:00:00 -0500", "soon"]))
    assert shopify.dt.strftime("%F %T").fillna("unread").tolist() == [
        "2024-05-01 10:00:00", "2024-05-01 10:00:00", "unread"]
    square = parse_times(pd.Series(["05/01/2024 08:01:13", "13/01/2024 08:00:00"]), "%m/%d/%Y %H:%M:%S")
    assert square.dt.strftime("%F %T").fillna("unread").tolist() == ["2024-05-01 08:01:13", "unread"]


def test_customer_keys_are_salted_hashes_of_the_normalised_email():
    emails = normalise_emails(pd.Series(["Ada@Example.com ", "ada@example.com", "", None]))
    ids = pseudonymise(emails, SALT)
    assert ids[0] == ids[1] and ids[0].startswith("c_") and len(ids[0]) == 22
    assert ids[2] is None and ids[3] is None
    assert pseudonymise(emails, SALT + b"x")[0] != ids[0]
    with pytest.raises(SaltError, match="expected at least 16 bytes, found 5"):
        pseudonymise(emails, b"short")


def _order(name, lines, **first):
    """Rows of one order in the export's shape: order-level fields on the first row only."""
    rows = []
    for k, (qty, price, sku, line_discount) in enumerate(lines):
        row = {"Name": name, "Email": "a@b.example", "Created at": "2024-05-01 10:00:00 +0000",
               "Lineitem quantity": str(qty), "Lineitem price": price, "Lineitem sku": sku,
               "Lineitem discount": line_discount, "Currency": None}
        if k == 0:
            row.update({"Currency": "EUR", "Financial Status": "paid", **first})
        rows.append(row)
    return rows


def test_an_order_discount_is_shared_by_line_value_after_each_line_s_own_discount():
    orders = pd.DataFrame(_order("#1", [(1, "8.00", "A", "1.00"), (2, "3.50", "B", "0.00")],
                                 **{"Discount Code": "X", "Discount Amount": "1.50"}))
    tx = convert_orders(orders, economics=EUR, salt=SALT).tables["transactions"].set_index("product_id")["amount"]
    assert tx.to_dict() == {"A": round(8 - 1 - 0.5 * 8 / 15, 2), "B": round(7 - 0.5 * 7 / 15, 2)}


def test_refunds_cancellations_and_currencies():
    orders = pd.DataFrame(
        _order("#1", [(1, "10.00", "A", "0")], **{"Financial Status": "refunded", "Refunded Amount": "14.90"})
        + _order("#2", [(1, "10.00", "A", "0")], **{"Cancelled at": "2024-05-01 11:00:00 +0000"})
        + _order("#3", [(2, "10.00", "A", "0")], Currency="USD")
        + _order("#4", [(1, "10.00", "A", "0")], Currency="GBP")
        + _order("#5", [(0, "10.00", "A", "0"), (1, "x", "B", "0")])
    )
    result = convert_orders(orders, economics=EUR, salt=SALT)
    tx = result.tables["transactions"].set_index("transaction_id")["amount"].to_dict()
    assert tx == {"#1": 10.0, "#3": 10.0, "#1-refund": -10.0}  # refund capped at the lines (shipping aside); USD x 0.5
    reasons = dict(zip(result.quarantined["row_number"], result.quarantined["reason"]))
    assert reasons[1].endswith("cancelled at 2024-05-01 11:00:00 +0000: not a purchase")
    assert "expected key economics.exchange_rates.GBP (units of EUR per GBP)" in reasons[3]
    assert reasons[4] == "Lineitem quantity: expected a whole number > 0, got '0'"
    assert reasons[5] == "Lineitem price: expected a number >= 0, got 'x'"
    assert result.rows_read == 6 == result.rows_converted + result.rows_quarantined
    assert result.counts["rows_not_purchases"] == 1 and main_currency(orders) == "EUR"


def test_an_export_without_the_shopify_columns_names_them():
    with pytest.raises(ExportFormatError, match=r"must contain columns \['Created at', 'Currency'"):
        convert_orders(pd.DataFrame({"Name": ["#1"], "Email": ["a@b.c"], "Lineitem quantity": ["1"],
                                     "Lineitem price": ["1"]}), economics=EUR, salt=SALT)


def test_the_square_mapping_is_valid_and_a_constant_fills_its_column():
    mapping = load_mapping(SQUARE_ITEM_SALES)
    assert mapping.table == "transactions" and mapping.constants == {"channel": "store"}
    frame = pd.DataFrame({c: ["x"] for c in mapping.source_columns()} | {
        "Date": ["05/01/2024"], "Time": ["08:00:00"], "Qty": ["-1"], "Net Sales": ["($2.00)"]})
    tx = convert_with_mapping(frame, mapping).tables["transactions"]
    assert tx.loc[0, ["ts", "quantity", "amount", "channel"]].tolist() == ["2024-05-01 08:00:00", 1, -2.0, "store"]


@pytest.mark.parametrize(("extra", "message"), [
    ("[constants]\nregion = 'x'\n", r"unknown key 'constants.region'; expected a column of table 'transactions'"),
    ("[format]\nhash_customer_id = 'yes'\n", r"key 'format.hash_customer_id': expected a valid boolean"),
    ("[constants]\namount = 1.0\n", r"columns \['amount'\] are given both in \[columns\] and \[constants\]"),
])
def test_a_bad_mapping_names_the_key(extra, message):
    text = 'table = "transactions"\n[columns]\ncustomer_id = "C"\nts = "T"\namount = "A"\n' + extra
    with pytest.raises(MappingError, match=message):
        parse_mapping(text)


def test_exchange_rates_in_the_program_file_are_checked_naming_the_key():
    text = COFFEE_PROGRAM_PATH.read_text().replace(
        "[economics.gross_margin_by_node]", "[economics.exchange_rates]\nUSD = 0.9\n\n[economics.gross_margin_by_node]")
    economics = parse_program(text).economics
    assert (economics.rate("USD"), economics.rate("EUR"), economics.rate("GBP")) == (0.9, 1.0, None)
    with pytest.raises(ProgramError, match=r"key 'economics.exchange_rates': keys must be ISO 4217 codes"):
        parse_program(text.replace("USD = 0.9", "usd = 0.9"))
    with pytest.raises(ProgramError, match=r"key 'economics.exchange_rates': rates must be positive numbers"):
        parse_program(text.replace("USD = 0.9", "USD = -1.0"))


def test_a_product_listed_twice_in_one_order_becomes_one_line():
    orders = pd.DataFrame(_order("#1", [(1, "8.00", "A", "0"), (2, "8.00", "A", "1.00"), (1, "3.00", "B", "0")]))
    result = convert_orders(orders, economics=EUR, salt=SALT)
    tx = result.tables["transactions"].set_index("product_id")
    assert tx[["quantity", "amount"]].to_dict("index") == {"A": {"quantity": 3, "amount": 23.0},
                                                           "B": {"quantity": 1, "amount": 3.0}}
    assert result.counts["lines_merged"] == 1 and result.rows_converted == 3
