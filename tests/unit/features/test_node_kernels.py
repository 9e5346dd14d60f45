"""features.node_kernels: the integer-code kernel returns exactly node_affinity_features' long frame.

Same rows, order, dtypes and NaN/0 conventions; spend shares equal to 1e-12 relative (pandas sums each
group with Kahan compensation, the kernel with np.bincount: the last bits may differ).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from features.catalogue import node_feature_names
from features.hierarchy import product_nodes
from features.node_affinity import node_affinity_features, purchase_lines
from features.node_kernels import KEYS, PurchaseLinesError, node_features_from_lines, purchase_lines_arrow

AS_OF = pd.Timestamp("2026-03-01")
T = pd.Timestamp


def pandas_reference(lines: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """The pandas groupby aggregation node_affinity_features held before the kernel (main at f826c41), kept
    here verbatim as the test's independent oracle once node_affinity_features calls the kernel."""
    levels = [c for c in nodes.columns if c != "product_id"]
    recent = lines[lines["age_days"] <= 365]
    total_spend = recent.groupby("customer_id")["amount"].sum()
    total_visits = recent.groupby("customer_id")["transaction_id"].nunique()
    frames = []
    for level in levels:
        node = lines["product_id"].map(nodes.set_index("product_id")[level])
        at = lines.assign(node=node.to_numpy()).dropna(subset=["node"])
        visits = at.groupby(["customer_id", "node", "transaction_id"], sort=False)["age_days"].min().reset_index()
        g = visits.groupby(["customer_id", "node"])
        out = pd.DataFrame({"days_since_last_purchase": g["age_days"].min()})
        for days in (30, 90, 180):
            out[f"visits_{days}d"] = (visits["age_days"] <= days).groupby(
                [visits["customer_id"], visits["node"]]).sum().astype("int64")
        in_window = at[at["age_days"] <= 365]
        spend = in_window.groupby(["customer_id", "node"])["amount"].sum()
        n365 = visits[visits["age_days"] <= 365].groupby(["customer_id", "node"]).size()
        out = out.reset_index()
        idx = pd.MultiIndex.from_frame(out[["customer_id", "node"]])
        cust = out["customer_id"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["spend_share_365d"] = (spend.reindex(idx).fillna(0).to_numpy()
                                       / cust.map(total_spend).to_numpy(dtype=float))
            out["visit_share_365d"] = (n365.reindex(idx).fillna(0).to_numpy()
                                       / cust.map(total_visits).to_numpy(dtype=float))
        out["level"] = level
        frames.append(out)
    cols = list(KEYS) + node_feature_names()
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="str" if c in KEYS else "float64") for c in cols})
    out = pd.concat(frames, ignore_index=True)[cols]
    out["node"] = out["node"].astype("str")
    return out.sort_values(list(KEYS), kind="stable", ignore_index=True)


def assert_same(tables: dict[str, pd.DataFrame], as_of, customer_ids=None) -> pd.DataFrame:
    """The kernel on ``purchase_lines`` equals the pandas reference and ``node_affinity_features`` (exact dtypes
    and order)."""
    nodes = product_nodes(tables)
    lines = purchase_lines(tables, as_of, customer_ids)
    got = node_features_from_lines(lines, nodes)
    pdt.assert_frame_equal(got, pandas_reference(lines, nodes), check_exact=False, rtol=1e-12, atol=0)
    expected = node_affinity_features(tables, as_of, customer_ids, nodes=nodes)
    pdt.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=0)
    return got


def world(rows: list[tuple], products: list[tuple] | None = None) -> dict[str, pd.DataFrame]:
    """Tables from (transaction_id, customer, ts, product, category, amount) rows; refunds: amount < 0."""
    tx = pd.DataFrame(rows, columns=["transaction_id", "customer_id", "ts", "product_id", "category", "amount"])
    tx["is_refund"] = tx["amount"] < 0
    ids = sorted(set(tx["customer_id"])) or ["nobody"]
    tables = {"customers": pd.DataFrame({"customer_id": ids, "signup_date": T("2024-01-01")}), "transactions": tx}
    if products is not None:
        tables["products"] = pd.DataFrame(products, columns=["product_id", "department", "commodity"])
    return tables


PRODUCTS = [("m1", "dairy", "milk"), ("c1", "dairy", "cheese"), ("b1", "bakery", "bread")]


@pytest.fixture(scope="module")
def grocery() -> dict[str, pd.DataFrame]:
    from pipelines.scenarios.grocery import generate

    tables = generate(n_customers=300, days=500, seed=11, end_date="2026-06-30").tables
    tables["transactions"]["is_refund"] = tables["transactions"]["amount"] < 0
    return tables


def test_grocery_households_match_node_affinity_features(grocery):
    got = assert_same(grocery, "2026-06-30")
    assert got["level"].unique().tolist() == ["commodity", "department"]
    assert got["customer_id"].nunique() > 250 and got["node"].nunique() > 200
    assert (got["days_since_last_purchase"] > 365).any()  # 500 days of history: lines past the share window
    # lines already grouped by customer and receipt (as PurchaseLog cuts them): the kernel skips its sort
    lines = purchase_lines(grocery, "2026-06-30")
    grouped = lines.sort_values(["customer_id", "transaction_id"], kind="stable", ignore_index=True)
    pdt.assert_frame_equal(node_features_from_lines(grouped, product_nodes(grocery)), got, check_exact=False, rtol=1e-12)


def test_grocery_at_an_earlier_as_of_for_a_few_customers(grocery):
    some = sorted(grocery["customers"]["customer_id"])[::7]
    got = assert_same(grocery, "2026-01-15", some)
    assert set(got["customer_id"]) <= set(some) and len(got)


def test_refund_only_customer_has_no_rows():
    tables = world([("v1", "a", T("2026-02-01"), "m1", "milk", 2.0), ("r1", "z", T("2026-02-02"), "m1", "milk", -2.0)],
                   PRODUCTS)
    got = assert_same(tables, AS_OF)
    assert set(got["customer_id"]) == {"a"}


def test_product_without_node_counts_in_totals_only():
    # x9 is in no products row: product_nodes gives it its category at the finest level only
    tables = world([("v1", "a", T("2026-02-01"), "m1", "milk", 2.0), ("v2", "a", T("2026-02-10"), "x9", "misc", 6.0)],
                   PRODUCTS)
    got = assert_same(tables, AS_OF).set_index(["level", "node"])
    assert got.loc[("department", "dairy"), "spend_share_365d"] == pytest.approx(0.25)
    assert got.loc[("department", "dairy"), "visit_share_365d"] == pytest.approx(0.5)
    assert ("commodity", "misc") in got.index and ("department", "nan") not in got.index
    # a node table that does not know the product at all: the line has no node at any level
    lines = purchase_lines(tables, AS_OF)
    bare = node_features_from_lines(lines, product_nodes(tables).iloc[:3])
    assert "misc" not in set(bare["node"]) and bare["spend_share_365d"].max() == pytest.approx(0.25)


def test_node_bought_only_before_the_share_window():
    tables = world([
        ("v1", "a", T("2024-12-01"), "c1", "cheese", 5.0),  # cheese only > 365 days ago
        ("v2", "a", T("2026-02-01"), "m1", "milk", 2.0),
        ("v3", "b", T("2024-11-01"), "b1", "bread", 3.0),  # b: nothing in the window at all
    ], PRODUCTS)
    got = assert_same(tables, AS_OF).set_index(["customer_id", "level", "node"])
    cheese = got.loc[("a", "commodity", "cheese")]
    assert cheese["spend_share_365d"] == 0.0 and cheese["visit_share_365d"] == 0.0 and cheese["visits_180d"] == 0
    assert np.isnan(got.loc[("b", "commodity", "bread"), "spend_share_365d"])  # no purchase in the window: NaN


def test_several_lines_of_one_receipt_in_one_node_are_one_visit():
    tables = world([
        ("v1", "a", T("2026-02-20 10:00"), "m1", "milk", 2.0),
        ("v1", "a", T("2026-02-20 10:05"), "c1", "cheese", 5.0),  # same receipt, same department, younger line
        ("v1", "a", T("2026-02-20 10:00"), "b1", "bread", 3.0),
        ("v2", "a", T("2025-12-01 10:00"), "m1", "milk", 1.0),
    ], PRODUCTS)
    got = assert_same(tables, AS_OF).set_index(["level", "node"])
    dairy = got.loc[("department", "dairy")]
    assert (dairy["visits_30d"], dairy["visits_90d"], dairy["visits_180d"]) == (1, 2, 2)
    assert dairy["days_since_last_purchase"] == pytest.approx((AS_OF - T("2026-02-20 10:05")) / pd.Timedelta(days=1))


def test_one_level_only_without_products_table():
    tables = world([("v1", "a", T("2026-02-01"), "m1", "milk", 2.0), ("v1", "a", T("2026-02-01"), "b1", "bread", 2.0),
                    ("v2", "b", T("2026-01-01"), "b1", "bread", 3.0)])
    got = assert_same(tables, AS_OF)
    assert got["level"].unique().tolist() == ["category"] and len(got) == 3


def test_no_lines_gives_the_same_empty_frame():
    tables = world([("v1", "a", T("2026-04-01"), "m1", "milk", 2.0)], PRODUCTS)  # after as_of only
    got = assert_same(tables, AS_OF)
    assert got.empty


def test_missing_column_and_null_key_are_named():
    lines = purchase_lines(world([("v1", "a", T("2026-02-01"), "m1", "milk", 2.0)], PRODUCTS), AS_OF)
    nodes = pd.DataFrame(PRODUCTS, columns=["product_id", "department", "commodity"])
    with pytest.raises(PurchaseLinesError, match=r"lack column\(s\) \['age_days'\]"):
        node_features_from_lines(lines.drop(columns="age_days"), nodes)
    with pytest.raises(PurchaseLinesError, match="column 'transaction_id' holds 1 null"):
        node_features_from_lines(lines.assign(transaction_id=pd.Series([None], dtype="str")), nodes)


def test_a_transaction_id_shared_by_two_customers_is_a_visit_of_each():
    tables = world([("v1", "a", T("2026-02-01"), "m1", "milk", 2.0), ("v1", "b", T("2026-02-03"), "m1", "milk", 4.0),
                    ("v2", "b", T("2026-02-05"), "b1", "bread", 1.0)], PRODUCTS)
    got = assert_same(tables, AS_OF).set_index(["customer_id", "level", "node"])
    assert got.loc[("b", "commodity", "milk"), "visit_share_365d"] == pytest.approx(0.5)
    assert got.loc[("a", "commodity", "milk"), "visits_30d"] == 1


@pytest.mark.parametrize("as_of, every", [("2026-06-30", 1), ("2026-01-15", 5)])
def test_purchase_lines_arrow_is_purchase_lines(grocery, as_of, every):
    some = None if every == 1 else sorted(grocery["customers"]["customer_id"])[::every]
    expected = purchase_lines(grocery, as_of, some)
    pdt.assert_frame_equal(purchase_lines_arrow(grocery, as_of, some), expected, check_exact=True)
    assert len(expected) and (some is None or set(expected["customer_id"]) <= set(some))
