"""A first program file inferred from a program's tables (what `rewards init` writes for review).

Pure: raw tables in, a :class:`Program` and the decisions taken (in words) out. Vocabularies seen in
the tables are listed; a vocabulary whose column is absent is open; hierarchy levels come from a
products table, coarsest (fewest distinct values) first.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from data_contracts.program import Program

DEFAULT_DAYPARTS = (("night", 0.0, 6.0), ("morning", 6.0, 11.0), ("midday", 11.0, 14.0),
                    ("afternoon", 14.0, 17.0), ("evening", 17.0, 24.0))
DEFAULT_CURRENCY = "EUR"
DEFAULT_GROSS_MARGIN_RATE = 0.3


def _seen(frame: pd.DataFrame | None, column: str, elements: bool = False) -> list[str]:
    """Distinct non-empty text values of ``frame[column]`` (list elements with ``elements``), sorted."""
    if frame is None or column not in frame.columns:
        return []
    values = frame[column].dropna()
    if elements:
        from data_contracts.coercion import _parse_list

        values = values.map(_parse_list).dropna().explode().dropna()
    text = values.astype("str").str.strip()
    return sorted(set(text[text.str.len() > 0]))


def _vocabulary(values: list[str], what: str, decisions: list[str]) -> dict:
    if values:
        decisions.append(f"{what}: listed, the {len(values)} values seen ({_preview(values)})")
        return {"kind": "listed", "values": values}
    decisions.append(f"{what}: open (no column holds them)")
    return {"kind": "open"}


def _preview(values: list[str], n: int = 6) -> str:
    return ", ".join(values[:n]) + (f", ... ({len(values) - n} more)" if len(values) > n else "")


def infer_program(
    tables: Mapping[str, pd.DataFrame], name: str, economics: Mapping[str, object] | None = None
) -> tuple[Program, list[str]]:
    """``(program, decisions)`` for the raw ``tables`` (table name -> frame as read).

    ``economics`` sets keys of ``[economics]`` the caller knows (an importer: the export's currency).
    """
    decisions: list[str] = []
    customers, tx, offers, events, products = (
        tables.get(n) for n in ("customers", "transactions", "offers", "offer_events", "products")
    )
    hierarchy = _hierarchy(products, tx, offers, decisions)

    tier_values = []
    if customers is not None and "tier" in customers.columns:
        counts = customers["tier"].dropna().astype("str").str.strip()
        tier_values = [v for v in counts[counts.str.len() > 0].value_counts().index]
    if tier_values:
        tiers = {"kind": "listed", "values": tier_values}
        decisions.append(
            f"tiers: listed, {len(tier_values)} seen, ordered by number of members, most first "
            f"({_preview(tier_values)}); the order is the tier order, lowest first: review it"
        )
    else:
        tiers = {"kind": "none"}
        decisions.append("tiers: none (customers has no tier column)")

    channels = sorted(set(_seen(offers, "channels", elements=True)) | set(_seen(events, "channel")))
    data = {
        "name": name,
        "description": f"Inferred by `rewards init` from the tables of '{name}'; review before use.",
        "hierarchy": hierarchy,
        "tiers": tiers,
        "purchase_channels": _vocabulary(_seen(tx, "channel"), "purchase_channels (transactions.channel)", decisions),
        "offer_channels": _vocabulary(channels, "offer_channels (offers.channels, offer_events.channel)", decisions),
        "regions": _vocabulary(_seen(customers, "region"), "regions (customers.region)", decisions),
        "offer_types": _vocabulary(_seen(offers, "offer_type"), "offer_types (offers.offer_type)", decisions),
        "dayparts": [{"name": n, "start_hour": a, "end_hour": b} for n, a, b in DEFAULT_DAYPARTS],
        "customers": {"marketing_consent": False},
        "economics": {
            "currency": DEFAULT_CURRENCY,
            "operating_cost_per_month": 0.0,
            "gross_margin_rate": DEFAULT_GROSS_MARGIN_RATE,
        },
    }
    decisions.append("dayparts: " + ", ".join(f"{n} {a:g}-{b:g}h" for n, a, b in DEFAULT_DAYPARTS) + " (defaults)")
    decisions.append("customers.marketing_consent: false when the column is absent (no consent assumed)")
    data["economics"].update(economics or {})
    decisions.append(
        f"economics: currency {data['economics']['currency']}, operating cost 0 per month, gross margin rate "
        f"{DEFAULT_GROSS_MARGIN_RATE:g} (placeholders: set your own)"
    )
    return Program.model_validate(data), decisions


def _hierarchy(products, tx, offers, decisions: list[str]) -> dict:
    level_columns = [] if products is None else [c for c in products.columns if c != "product_id"]
    if level_columns:
        distinct = {c: len(_seen(products, c)) for c in level_columns}
        levels = sorted(level_columns, key=lambda c: (distinct[c], level_columns.index(c)))
        decisions.append(
            "hierarchy: levels from products, coarsest first by number of distinct values: "
            + " > ".join(f"{c} ({distinct[c]})" for c in levels)
        )
        nodes = {c: {"kind": "listed", "values": _seen(products, c)} for c in levels}
        outside = sorted((set(_seen(tx, "category")) | set(_seen(offers, "reward_category")))
                         - {v for n in nodes.values() for v in n["values"]})
        if outside:
            nodes[levels[-1]]["values"] += outside
            decisions.append(
                f"hierarchy: {len(outside)} categories of transactions/offers are not in products "
                f"({_preview(outside)}): added to level '{levels[-1]}'"
            )
        return {"levels": levels, "nodes": nodes}
    categories = sorted(set(_seen(tx, "category")) | set(_seen(offers, "reward_category")))
    if categories:
        decisions.append(f"hierarchy: one level 'category', listed, the {len(categories)} values seen "
                         f"({_preview(categories)})")
        return {"levels": ["category"], "nodes": {"category": {"kind": "listed", "values": categories}}}
    decisions.append("hierarchy: one level 'category', open (no products table, no category column)")
    return {"levels": ["category"]}
