"""The DuckDB reference of benchmarks/bench_taxonomy_features.py computes what node_affinity_features computes.

On a two-level toy taxonomy (a refund, a line older than 180 days, a customer signed up after as_of): same
(customer, level, node) rows, same values, NaN where NaN. If the node features change meaning, the benchmark's
reference must follow, or its "x DuckDB" ratio compares different work.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.bench_taxonomy_features import KEYS, duckdb_sql
from features.catalogue import node_feature_names
from features.hierarchy import hierarchy_levels
from features.node_affinity import node_affinity_features

AS_OF = pd.Timestamp("2026-03-01")
T = pd.Timestamp


def toy() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame({"customer_id": ["a1", "a2", "late"],
                              "signup_date": [T("2025-01-01"), T("2025-01-01"), T("2026-03-02")]})
    rows = [  # transaction_id, customer, ts, product, amount, is_refund
        ("v1", "a1", T("2026-02-20 10:00"), "m1", 2.0, False),
        ("v1", "a1", T("2026-02-20 10:00"), "b1", 3.0, False),
        ("v2", "a1", T("2025-11-15 10:00"), "m1", 2.0, False),
        ("v2", "a1", T("2025-11-15 10:00"), "c1", 5.0, False),
        ("v3", "a1", T("2025-08-01 10:00"), "m2", 8.0, False),
        ("v4", "a1", T("2026-02-25 10:00"), "m1", -2.0, True),
        ("v5", "a2", T("2026-02-28 09:00"), "b1", 3.0, False),
        ("v6", "a2", T("2026-03-01 09:00"), "m1", 3.0, False),  # at as_of: not seen
        ("v7", "late", T("2026-02-28 09:00"), "m1", 3.0, False),
    ]
    tx = pd.DataFrame(rows, columns=["transaction_id", "customer_id", "ts", "product_id", "amount", "is_refund"])
    products = pd.DataFrame({"product_id": ["m1", "m2", "c1", "b1"], "department": ["dairy", "dairy", "dairy", "bakery"],
                             "commodity": ["milk", "milk", "cheese", "bread"]})
    return {"customers": customers, "transactions": tx.assign(category=tx["product_id"]), "products": products}


def test_duckdb_reference_equals_node_affinity_features():
    import duckdb

    tables = toy()
    con = duckdb.connect()
    for name, frame in tables.items():
        con.register(name, frame)
    ref = con.execute(duckdb_sql(hierarchy_levels(tables)), {"as_of": AS_OF}).df()
    ours = node_affinity_features(tables, AS_OF)
    ref, ours = (f.astype({k: "str" for k in KEYS}).set_index(KEYS).sort_index() for f in (ref, ours))
    assert list(ours.index) == list(ref.index) and len(ours) == 7  # a1: 2 departments + 3 commodities; a2: 1 + 1
    for col in node_feature_names():
        np.testing.assert_allclose(ours[col].to_numpy("float64"), ref[col].to_numpy("float64"), rtol=1e-12, err_msg=col)
