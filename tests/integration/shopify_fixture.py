"""A seeded shop written in Shopify's exact orders-export format, large enough to train churn on.

Customers join over the first months, buy at their own rate (heterogeneous) until they lapse; orders
have 1-3 line items (order-level fields on the first row only), some use discount codes, some are
refunded or cancelled, and a share is in USD. Every customer has a made-up email, name, address and
phone, so a test can check none of them leaves the importer.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

HEADER = (
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,Currency,Subtotal,"
    "Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,Created at,Lineitem quantity,Lineitem name,"
    "Lineitem price,Lineitem compare at price,Lineitem sku,Lineitem requires shipping,Lineitem taxable,"
    "Lineitem fulfillment status,Billing Name,Billing Street,Billing Address1,Billing Address2,Billing Company,"
    "Billing City,Billing Zip,Billing Province,Billing Country,Billing Phone,Shipping Name,Shipping Street,"
    "Shipping Address1,Shipping Address2,Shipping Company,Shipping City,Shipping Zip,Shipping Province,"
    "Shipping Country,Shipping Phone,Notes,Note Attributes,Cancelled at,Payment Method,Payment Reference,"
    "Refunded Amount,Vendor,Outstanding Balance,Employee,Location,Device ID,Id,Tags,Risk Level,Source,"
    "Lineitem discount,Tax 1 Name,Tax 1 Value,Tax 2 Name,Tax 2 Value,Tax 3 Name,Tax 3 Value,Tax 4 Name,"
    "Tax 4 Value,Tax 5 Name,Tax 5 Value,Phone,Receipt Number,Duties,Billing Province Name,"
    "Shipping Province Name,Payment ID,Payment Terms Name,Next Payment Due At,Payment References"
).split(",")
PRODUCTS = [("BEAN-ESP", "Espresso Beans 250g", 9.50), ("BEAN-FLT", "Filter Beans 250g", 8.50),
            ("KET-01", "Pour-over Kettle", 34.00), ("FLT-100", "Filter Papers", 4.00),
            ("MUG-01", "Stoneware Mug", 14.00), ("CB-1", "Cold Brew Bottle", 6.50)]
FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Niklaus", "Radia", "Tim"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Wirth", "Perlman", "Berners"]
STREETS = ["Analytical Lane", "Bletchley Road", "Cobol Avenue", "Shortest Path", "Substitution Way"]


def person(i: int) -> dict[str, str]:
    """The made-up personal data of customer ``i`` (what must never reach an output file)."""
    return {
        "email": f"{FIRST[i % 10].lower()}.{LAST[i // 10 % 10].lower()}{i}@mail.example",
        "name": f"{FIRST[i % 10]} {LAST[i // 10 % 10]}-{i:04d}",
        "street": f"{100 + i} {STREETS[i % 5]}",
        "phone": f"+44 7700 9{i:05d}",
    }


def write_shop(path: Path, n_customers: int = 300, seed: int = 7, start: str = "2024-01-01",
               end: str = "2025-03-31") -> Path:
    """Write the seeded orders export to ``path``; returns it."""
    rng = np.random.default_rng(seed)
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    span = (t1 - t0).days
    rows: list[dict[str, str]] = []
    number = 1000
    for i in range(n_customers):
        who = person(i)
        joined = t0 + pd.Timedelta(days=int(rng.integers(0, span // 2)))
        lifetime = rng.exponential(220)
        rate = rng.gamma(1.5, 1 / 25)  # orders per day
        currency = "USD" if rng.random() < 0.15 else "EUR"
        consent = "yes" if rng.random() < 0.6 else "no"
        day = joined
        while day <= t1 and (day - joined).days <= lifetime:
            number += 1
            created = day + pd.Timedelta(minutes=int(rng.integers(7 * 60, 21 * 60)))
            rows += _order(rng, number, who, created, currency, consent)
            day = day + pd.Timedelta(days=max(1, int(rng.exponential(1 / rate))))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _order(rng, number: int, who: dict, created: pd.Timestamp, currency: str, consent: str) -> list[dict]:
    stamp = created.strftime("%Y-%m-%d %H:%M:%S +0100")
    picks = rng.choice(len(PRODUCTS), size=int(rng.integers(1, 4)), replace=False)
    lines = [(PRODUCTS[p], int(rng.integers(1, 3))) for p in picks]
    subtotal = sum(price * q for (_, _, price), q in lines)
    code, discount = ("WELCOME10", round(subtotal * 0.1, 2)) if rng.random() < 0.1 else ("", 0.0)
    roll = rng.random()
    status, refunded, cancelled = "paid", 0.0, ""
    if roll < 0.03:
        status, cancelled = "refunded", (created + pd.Timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S +0100")
        refunded = subtotal - discount
    elif roll < 0.07:
        status, refunded = "partially_refunded", round(lines[0][0][2], 2)
    out = []
    for k, ((sku, title, price), quantity) in enumerate(lines):
        row = dict.fromkeys(HEADER, "")
        row.update({"Name": f"#{number}", "Email": who["email"], "Created at": stamp, "Lineitem quantity": str(quantity),
                    "Lineitem name": title, "Lineitem price": f"{price:.2f}", "Lineitem sku": sku,
                    "Lineitem requires shipping": "true", "Lineitem taxable": "true",
                    "Lineitem fulfillment status": "fulfilled", "Vendor": "Northwind Roasters",
                    "Lineitem discount": "0.00"})
        if k == 0:
            row.update({
                "Financial Status": status, "Paid at": stamp, "Fulfillment Status": "fulfilled", "Fulfilled at": stamp,
                "Accepts Marketing": consent, "Currency": currency, "Subtotal": f"{subtotal - discount:.2f}",
                "Shipping": "4.90", "Taxes": "0.00", "Total": f"{subtotal - discount + 4.9:.2f}", "Discount Code": code,
                "Discount Amount": f"{discount:.2f}", "Shipping Method": "Standard", "Billing Name": who["name"],
                "Billing Street": who["street"], "Billing Address1": who["street"], "Billing City": "Manchester",
                "Billing Zip": "M1 1AE", "Billing Country": "GB", "Billing Phone": who["phone"],
                "Shipping Name": who["name"], "Shipping Street": who["street"], "Shipping Address1": who["street"],
                "Shipping City": "Manchester", "Shipping Zip": "M1 1AE", "Shipping Country": "GB",
                "Shipping Phone": who["phone"], "Notes": f"Leave with {who['name']}", "Cancelled at": cancelled,
                "Payment Method": "Shopify Payments", "Refunded Amount": f"{refunded:.2f}", "Outstanding Balance": "0.00",
                "Id": str(5_000_000_000 + number), "Risk Level": "Low", "Source": "web", "Phone": who["phone"],
            })
        out.append(row)
    return out
