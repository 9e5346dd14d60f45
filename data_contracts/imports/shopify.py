"""Shopify's orders export (Admin > Orders > Export, CSV) to the canonical tables.

The export has one row per line item; order-level fields (financial status, currency, discount,
refund, consent, ...) are filled on an order's first row only, so each order's values are taken from
the first non-empty one among its rows (rows grouped by ``Name``). What becomes what:

- ``transactions``: one line per line item, ``transaction_id`` = the order's ``Name``, ``ts`` = ``Created
  at`` (the wall-clock time as written: the offset is ignored), amount = quantity x price minus the
  line's discount and its share of the order's other discounts, in the program's currency; plus one
  refund line (negative) per refunded order, dated at the order's latest time (the export has no
  refund date) and capped at what the order's lines cost;
- ``customers``: one per email, keyed by a salted hash of it; consent from ``Accepts Marketing`` of
  the customer's latest order (the customers export wins when given);
- ``offers`` / ``offer_events``: each discount code is an offer, each order using it a redemption
  (sent and redeemed at the order: the export says nothing of codes sent but not used);
- ``products``: from the products export when given (``Type``, else ``Product Category``'s finest
  segment, else the first tag, by variant SKU).

Cancelled and voided orders are not purchases: their rows are quarantined with that reason, as are
rows without an email, or in a currency the program file has no rate for. Names, addresses, phones,
notes and every other column not listed in :data:`KEPT_COLUMNS` are never copied anywhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.imports.pseudonyms import normalise_emails, pseudonymise
from data_contracts.imports.result import ImportResult, merge_repeated_lines, require_columns, split_rows
from data_contracts.imports.shopify_catalogue import categories_by_sku, consent_by_customer
from data_contracts.imports.values import format_times, parse_bools, parse_numbers, parse_times, present, shown, text
from data_contracts.program import Economics
from data_contracts.quarantine import RowReasons
from data_contracts.schema import UNKNOWN

SOURCE = "Shopify orders export"
REQUIRED = ("Name", "Email", "Created at", "Currency", "Lineitem quantity", "Lineitem price")
# Order-level columns: the first non-empty value of the order's rows holds for every row.
ORDER_LEVEL = ("Email", "Financial Status", "Paid at", "Fulfilled at", "Accepts Marketing", "Currency",
               "Discount Code", "Discount Amount", "Created at", "Cancelled at", "Refunded Amount", "Source",
               "Location")
# Columns the importer reads; the only ones a quarantined row keeps (Email replaced by its customer_id).
KEPT_COLUMNS = ("Name", "Financial Status", "Paid at", "Fulfilled at", "Accepts Marketing", "Currency",
                "Subtotal", "Discount Code", "Discount Amount", "Created at", "Cancelled at", "Refunded Amount",
                "Source", "Location", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku",
                "Lineitem discount", "Vendor", "Id")
NOT_PURCHASE = "not a purchase"
REFUND_PRODUCT = "refund"
ONLINE_STORE = "online"
HOW_TO_EXPORT = ("expected Shopify's orders export: Admin > Orders > Export > 'Plain CSV file' (or 'CSV for Excel'), "
                 "with its header row unchanged")


def convert_orders(
    orders: pd.DataFrame,
    *,
    economics: Economics,
    salt: bytes,
    products: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
) -> ImportResult:
    """The canonical tables for a Shopify orders export (text cells, as read) under ``economics``."""
    require_columns(orders, REQUIRED, SOURCE, HOW_TO_EXPORT)
    raw = orders.reset_index(drop=True)
    order = _order_fields(raw)
    customer_id = pseudonymise(normalise_emails(order["Email"]), salt)
    created = parse_times(order["Created at"])
    latest = pd.concat([created, parse_times(order["Paid at"]), parse_times(order["Fulfilled at"])], axis=1).max(axis=1)
    quantity = parse_numbers(raw["Lineitem quantity"], currency_symbols=())
    price = parse_numbers(raw["Lineitem price"])
    line_discount = parse_numbers(raw["Lineitem discount"]) if "Lineitem discount" in raw else _zeros(raw)
    order_discount = parse_numbers(order["Discount Amount"])
    refunded = parse_numbers(order["Refunded Amount"])
    rate = order["Currency"].map(lambda c: economics.rate(str(c).strip().upper()) if pd.notna(c) else None)
    status = text(order["Financial Status"]).str.lower()

    reasons = RowReasons()
    _row_reasons(reasons, raw, order, economics, customer_id, created, quantity, price, line_discount,
                 order_discount, refunded, rate, status)

    skus = text(raw["Lineitem sku"]) if "Lineitem sku" in raw else pd.Series(None, index=raw.index, dtype=object)
    names = text(raw["Lineitem name"]) if "Lineitem name" in raw else pd.Series(None, index=raw.index, dtype=object)
    product_id = skus.fillna(names).fillna(UNKNOWN)
    category = product_id.map(categories_by_sku(products) if products is not None else {}).fillna(UNKNOWN)
    lines = pd.DataFrame({
        "transaction_id": text(raw["Name"]), "customer_id": customer_id, "ts": created, "latest": latest,
        "store_id": text(order["Location"]).fillna(ONLINE_STORE), "channel": text(order["Source"]).fillna(UNKNOWN),
        "product_id": product_id, "category": category, "quantity": quantity,
        "gross": quantity * price, "line_discount": line_discount.fillna(0.0),
        "order_discount": order_discount.fillna(0.0), "refunded": refunded.fillna(0.0), "rate": rate,
        "status": status, "codes": text(order["Discount Code"]),
        "consent": parse_bools(order["Accepts Marketing"]),
    }, index=raw.index)
    kept = raw[[c for c in KEPT_COLUMNS if c in raw.columns]].copy()
    kept.insert(1, "customer_id", customer_id)
    good, quarantined = split_rows(kept, lines, reasons)

    good = good.assign(amount=_net_amounts(good))
    transactions, merged = _transactions(good)
    refunds = _refund_lines(good)
    offers, events, duplicates = _discount_codes(good, economics)
    customer_table = _customers(good, consent_by_customer(customers, salt) if customers is not None else None)
    tables = {
        "transactions": pd.concat([transactions, refunds], ignore_index=True).assign(ts=lambda f: format_times(f["ts"])),
        "customers": customer_table,
        "offers": offers,
        "offer_events": events,
    }
    if products is not None:
        mapping = categories_by_sku(products)
        tables["products"] = pd.DataFrame({"product_id": list(mapping), "category": list(mapping.values())})
    not_purchases = int(quarantined["reason"].str.contains(NOT_PURCHASE, regex=False).sum()) if len(quarantined) else 0
    converted = good.loc[good["rate"] != 1.0]
    converted_currencies = converted.groupby(text(order["Currency"]).str.upper().reindex(converted.index))["transaction_id"]
    counts = {
        "orders_read": int(text(raw["Name"]).nunique()),
        "orders_imported": int(good["transaction_id"].nunique()),
        "rows_not_purchases": not_purchases,
        "lines_merged": merged,
        "refund_lines": len(refunds),
        "refunded_amount": round(float(-refunds["amount"].sum()), 2) if len(refunds) else 0.0,
        "discount_codes": len(offers),
        "redemptions": len(events),
        "redemptions_duplicated": duplicates,
        "customers": len(customer_table),
        "orders_converted_by_currency": {str(k): int(v.nunique()) for k, v in converted_currencies},
    }
    notes = [
        "customers keyed by a salted hash of the email; names, addresses, phones and notes dropped",
        f"amounts in {economics.currency}" + (
            f"; converted {counts['orders_converted_by_currency']} orders with economics.exchange_rates"
            if counts["orders_converted_by_currency"] else ""),
        f"{len(refunds)} refund lines (dated at the order's latest time: the export has no refund date)",
        f"{len(offers)} discount codes as offers, {len(events)} uses as redemptions (offer_events)",
    ]
    if products is None:
        notes.append("no products export: every line's category is 'unknown' (pass --products for categories)")
    return ImportResult(SOURCE, tables, quarantined, len(raw), len(good), counts, notes, economics.currency)


def main_currency(orders: pd.DataFrame) -> str | None:
    """The currency most of the export's orders are in (None when no order names one)."""
    require_columns(orders, REQUIRED, SOURCE, HOW_TO_EXPORT)
    per_order = _order_fields(orders.reset_index(drop=True))["Currency"].groupby(text(orders["Name"]).to_numpy()).first()
    counts = per_order.dropna().str.upper().value_counts()
    return str(counts.index[0]) if len(counts) else None


def _zeros(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(0.0, index=frame.index)


def _order_fields(raw: pd.DataFrame) -> pd.DataFrame:
    """Per row, its order's value of every order-level column (first non-empty among the order's rows)."""
    name = text(raw["Name"])
    out = {}
    for column in ORDER_LEVEL:
        if column not in raw.columns:
            out[column] = pd.Series(None, index=raw.index, dtype=object)
            continue
        values = text(raw[column])
        first = values.groupby(name).transform("first")
        out[column] = values.where(name.isna(), first)
    return pd.DataFrame(out, index=raw.index)


def _row_reasons(reasons, raw, order, economics, customer_id, created, quantity, price, line_discount,
                 order_discount, refunded, rate, status) -> None:
    def add(mask: pd.Series, why) -> None:
        labels = raw.index[mask.fillna(False).to_numpy(dtype=bool)]
        reasons.add(labels, why if isinstance(why, str) else {i: why(i) for i in labels})

    name = text(raw["Name"])
    add(name.isna(), "Name: empty; expected the order name (e.g. #1001) that groups an order's rows")
    cancelled = present(order["Cancelled at"])
    add(cancelled, lambda i: f"Cancelled at: order {name[i]} was cancelled at {order['Cancelled at'][i]}: {NOT_PURCHASE}")
    add(status.eq("voided"), lambda i: f"Financial Status: order {name[i]} is 'voided': {NOT_PURCHASE}")
    add(customer_id.isna(), "Email: empty; expected the customer's email (it keys the customer as a salted hash): "
        "an order without one cannot be attributed to a customer")
    add(created.isna(), lambda i: f"Created at: expected a time like '2024-05-01 10:00:00 +0000', got "
        f"{shown(order['Created at'][i])}")
    currency = text(order["Currency"])
    add(currency.isna(), "Currency: empty; expected the order's ISO 4217 currency code")
    add(currency.notna() & rate.isna(), lambda i: (
        f"Currency: {currency[i]!r} is not the program's currency {economics.currency!r} and the program file has no "
        f"rate for it; expected key economics.exchange_rates.{currency[i]} (units of {economics.currency} per "
        f"{currency[i]}) to convert it"))
    bad_quantity = ~(quantity.gt(0) & quantity.eq(np.floor(quantity)))
    add(bad_quantity, lambda i: f"Lineitem quantity: expected a whole number > 0, got {shown(raw['Lineitem quantity'][i])}")
    add(~price.ge(0), lambda i: f"Lineitem price: expected a number >= 0, got {shown(raw['Lineitem price'][i])}")
    for column, values, where in (("Lineitem discount", line_discount, raw),
                                  ("Discount Amount", order_discount, order), ("Refunded Amount", refunded, order)):
        if column in where.columns:
            add(present(where[column]) & ~values.ge(0),
                lambda i, c=column, w=where: f"{c}: expected a number >= 0, got {shown(w[c][i])}")


def _net_amounts(good: pd.DataFrame) -> pd.Series:
    """Each line's amount after its own discount and its share of the order's remaining discount, converted."""
    by_order = good.groupby("transaction_id")
    gross_total = by_order["gross"].transform("sum")
    rest = (good["order_discount"] - by_order["line_discount"].transform("sum")).clip(lower=0.0)
    share = (good["gross"] / gross_total.where(gross_total > 0)).fillna(0.0)
    net = (good["gross"] - good["line_discount"] - rest * share).clip(lower=0.0)
    return (net * good["rate"].astype("float64")).round(2)


def _transactions(good: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One line per (order, product): rows of the same product in one order are summed (their count returned)."""
    columns = ["transaction_id", "customer_id", "ts", "store_id", "channel", "product_id", "category",
               "quantity", "amount"]
    lines, merged = merge_repeated_lines(good[columns])
    return lines.assign(quantity=lambda f: f["quantity"].astype("int64"), is_refund=False), merged


def _refund_lines(good: pd.DataFrame) -> pd.DataFrame:
    """One negative line per refunded order: the refunded amount (all of it for 'refunded'), capped at its lines."""
    orders = good.sort_values("amount", ascending=False).groupby("transaction_id", sort=False).agg(
        customer_id=("customer_id", "first"), ts=("latest", "first"), store_id=("store_id", "first"),
        channel=("channel", "first"), category=("category", "first"), refunded=("refunded", "first"),
        rate=("rate", "first"), status=("status", "first"), merchandise=("amount", "sum"))
    refunded = (orders["refunded"] * orders["rate"].astype("float64")).round(2)
    refunded = refunded.where(~(orders["status"].eq("refunded") & refunded.eq(0)), orders["merchandise"])
    amount = np.minimum(refunded, orders["merchandise"])
    orders = orders.loc[amount > 0].assign(amount=-amount[amount > 0])
    return pd.DataFrame({
        "transaction_id": orders.index.astype("str") + "-refund", "customer_id": orders["customer_id"],
        "ts": orders["ts"], "store_id": orders["store_id"], "channel": orders["channel"],
        "product_id": REFUND_PRODUCT, "category": orders["category"], "quantity": 1,
        "amount": orders["amount"], "is_refund": True,
    }).reset_index(drop=True)


def _discount_codes(good: pd.DataFrame, economics: Economics) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """``(offers, offer_events, duplicated uses)``: each code an offer, each order using it a redemption."""
    orders = good.dropna(subset=["codes"]).groupby("transaction_id", sort=False).agg(
        customer_id=("customer_id", "first"), ts=("ts", "first"), codes=("codes", "first"),
        discount=("order_discount", "first"), rate=("rate", "first"))
    uses = orders.assign(offer_id=orders["codes"].str.split(",")).explode("offer_id")
    uses["offer_id"] = uses["offer_id"].str.strip()
    uses = uses[uses["offer_id"].str.len() > 0]
    per_code = uses.groupby(level=0)["offer_id"].transform("size")
    uses = uses.assign(value=(uses["discount"] * uses["rate"].astype("float64") / per_code).round(2))
    events = uses.drop_duplicates(["customer_id", "offer_id", "ts"])
    offers = uses.groupby("offer_id", sort=True).agg(
        valid_from=("ts", "min"), valid_to=("ts", "max"), value=("value", "median")).reset_index()
    offers = pd.DataFrame({
        "offer_id": offers["offer_id"], "name": offers["offer_id"], "reward_category": UNKNOWN,
        "offer_type": "discount", "value": offers["value"].round(2),
        "valid_from": format_times(offers["valid_from"]), "valid_to": format_times(offers["valid_to"]),
    })
    events = pd.DataFrame({
        "customer_id": events["customer_id"].to_numpy(), "offer_id": events["offer_id"].to_numpy(),
        "sent_at": format_times(events["ts"]).to_numpy(), "redeemed_at": format_times(events["ts"]).to_numpy(),
        "is_control": False,
    })
    return offers, events, len(uses) - len(events)


def _customers(good: pd.DataFrame, consent_export: pd.Series | None) -> pd.DataFrame:
    """One member per customer_id: first order as signup, consent of the latest order (the export wins)."""
    ordered = good.sort_values("ts")
    first = ordered.groupby("customer_id")["ts"].min()
    consent = ordered.dropna(subset=["consent"]).groupby("customer_id")["consent"].last()
    consent = consent.reindex(first.index).astype("boolean")
    if consent_export is not None:
        consent = consent_export.reindex(first.index).astype("boolean").fillna(consent)
    return pd.DataFrame({
        "customer_id": first.index.to_numpy(), "signup_date": format_times(first).to_numpy(),
        "marketing_consent": consent.fillna(False).astype(bool).to_numpy(),
    })
