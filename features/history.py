"""The point-in-time slice every family reads: rows strictly before ``as_of``, keyed by integer customer codes.

``prepare_history`` is the only place that cuts tables at ``as_of``; families never see later rows.
Customers are those who signed up strictly before ``as_of``, sorted by customer_id; a customer's code
is its position in that order, so per-customer sums are ``np.bincount`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.errors import MissingColumnsError
from data_contracts.schema import CATEGORIES, PURCHASE_CHANNELS, TABLES

NS_PER_DAY = 86_400 * 10**9
NS_PER_HOUR = 3_600 * 10**9

REQUIRED_TABLES = ("customers", "transactions", "offers", "offer_events", "feedback")


class AsOfError(ValueError):
    """``as_of`` is not a usable point in time."""


@dataclass(frozen=True)
class History:
    """Everything before ``as_of`` that the families need, as flat arrays and small frames."""

    as_of: pd.Timestamp
    as_of_ns: int
    customers: pd.DataFrame  # signed up before as_of, sorted by customer_id, RangeIndex = customer code
    # One row per visit (receipt with a purchase line), sorted by (cust, ts):
    # cust, ts_ns, store, channel, net_amount, cat_mask (bit i = CATEGORIES[i] bought).
    visits: pd.DataFrame
    # One row per receipt line: cust, cat, amount, is_refund, product, ts_ns.
    lines: pd.DataFrame
    # Offer events sent (not control) before as_of, with offer_type / reward_category codes.
    offer_events: pd.DataFrame
    feedback: pd.DataFrame  # submitted before as_of: cust, ts_ns, nps_score; sorted by (cust, ts_ns)

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    def since(self, days: int) -> int:
        """The int64-ns start of the window of the last ``days`` days before as_of."""
        return self.as_of_ns - days * NS_PER_DAY


def to_as_of(value) -> pd.Timestamp:
    """``value`` as a naive Timestamp; a clear error for a time-zone aware or unparsable one."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise AsOfError(f"as_of must be a date or timestamp, got {value!r}") from err
    if ts is pd.NaT:
        raise AsOfError(f"as_of must be a date or timestamp, got {value!r}")
    if ts.tzinfo is not None:
        raise AsOfError(f"as_of must be naive store-local time like the data, got time-zone aware {ts}")
    return ts.as_unit("ns")


def _ns(series: pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds; NaT becomes the int64 minimum."""
    return series.to_numpy(dtype="datetime64[ns]").view("int64")


def _check_columns(tables: dict[str, pd.DataFrame]) -> None:
    missing_tables = [t for t in REQUIRED_TABLES if t not in tables]
    if missing_tables:
        raise KeyError(f"build_profiles needs tables {list(REQUIRED_TABLES)}; missing {missing_tables}")
    for name in REQUIRED_TABLES:
        frame = tables[name]
        missing = [c for c in TABLES[name].column_names if c not in frame.columns]
        if missing:
            raise MissingColumnsError(name, missing, list(frame.columns))


def _codes(values: pd.Series, categories) -> np.ndarray:
    """Position of each value in ``categories`` (-1 when absent)."""
    return pd.Index(categories).get_indexer(values)


def prepare_history(tables: dict[str, pd.DataFrame], as_of) -> History:
    """Cut every table at ``as_of`` (strictly before) and encode keys as integer codes."""
    _check_columns(tables)
    as_of = to_as_of(as_of)
    as_of_ns = int(as_of.value)

    cust = tables["customers"]
    cust = cust.loc[_ns(cust["signup_date"]) < as_of_ns]
    cust = cust.sort_values("customer_id", kind="stable").reset_index(drop=True)
    cust_index = pd.Index(cust["customer_id"])

    lines, visits = _purchases(tables["transactions"], cust_index, as_of_ns)
    events = _offer_events(tables["offer_events"], tables["offers"], cust_index, as_of_ns)

    fb = tables["feedback"]
    fb_ts = _ns(fb["submitted_at"])
    keep = fb_ts < as_of_ns
    fb_code = cust_index.get_indexer(fb["customer_id"][keep])
    feedback = pd.DataFrame(
        {"cust": fb_code, "ts_ns": fb_ts[keep], "nps_score": fb["nps_score"].to_numpy()[keep].astype("float64")}
    )
    feedback = feedback.loc[feedback["cust"] >= 0].sort_values(["cust", "ts_ns"], kind="stable")
    return History(as_of, as_of_ns, cust, visits, lines, events, feedback.reset_index(drop=True))


def _purchases(tx: pd.DataFrame, cust_index: pd.Index, as_of_ns: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ts = _ns(tx["ts"])
    keep = ts < as_of_ns
    tx = tx.loc[keep]
    ts = ts[keep]
    cust = cust_index.get_indexer(tx["customer_id"])
    known = cust >= 0  # lines of customers not profiled at as_of (none in validated data) are not used
    if not known.all():
        tx, ts, cust = tx.loc[known], ts[known], cust[known]
    is_refund = tx["is_refund"].to_numpy(dtype=bool)
    amount = tx["amount"].to_numpy(dtype="float64")
    cat = _codes(tx["category"], CATEGORIES).astype("int8")
    product = pd.factorize(tx["product_id"])[0]
    receipt = pd.factorize(tx["transaction_id"])[0]
    lines = pd.DataFrame(
        {"cust": cust, "cat": cat, "amount": amount, "is_refund": is_refund, "product": product, "ts_ns": ts}
    )
    n_receipts = int(receipt.max()) + 1 if len(receipt) else 0

    # A visit is a receipt with at least one purchase line; its net amount includes refund lines on it.
    purchase_lines = np.bincount(receipt, weights=~is_refund, minlength=n_receipts) > 0
    net = np.bincount(receipt, weights=amount, minlength=n_receipts)
    bit = np.where(is_refund | (cat < 0), 0, np.left_shift(1, cat.astype("int64"))).astype("int64")
    order = np.argsort(receipt, kind="stable")
    sorted_receipt = receipt[order]
    starts = np.flatnonzero(np.r_[True, sorted_receipt[1:] != sorted_receipt[:-1]]) if len(order) else order
    mask = np.bitwise_or.reduceat(bit[order], starts) if len(order) else np.zeros(0, "int64")
    first = order[starts]
    visits = pd.DataFrame(
        {
            "cust": cust[first],
            "ts_ns": ts[first],
            "store": pd.factorize(tx["store_id"].to_numpy()[first])[0],
            "channel": _codes(tx["channel"].iloc[first], PURCHASE_CHANNELS),
            "net_amount": net,
            "cat_mask": mask,
        }
    )
    visits = visits.loc[purchase_lines]
    visits = visits.sort_values(["cust", "ts_ns"], kind="stable").reset_index(drop=True)
    return lines, visits


def _offer_events(ev: pd.DataFrame, offers: pd.DataFrame, cust_index: pd.Index, as_of_ns: int) -> pd.DataFrame:
    from data_contracts.schema import OFFER_TYPES

    sent_ns = _ns(ev["sent_at"])
    keep = (sent_ns < as_of_ns) & ~ev["is_control"].to_numpy(dtype=bool)
    ev = ev.loc[keep]
    cust = cust_index.get_indexer(ev["customer_id"])
    offer_pos = pd.Index(offers["offer_id"]).get_indexer(ev["offer_id"])
    offer_type = _codes(offers["offer_type"], OFFER_TYPES)
    reward_cat = _codes(offers["reward_category"], CATEGORIES)
    has_offer = offer_pos >= 0
    viewed_ns = _ns(ev["viewed_at"])
    redeemed_ns = _ns(ev["redeemed_at"])
    nat = np.iinfo("int64").min
    out = pd.DataFrame(
        {
            "cust": cust,
            "sent_ns": sent_ns[keep],
            "viewed": (viewed_ns != nat) & (viewed_ns < as_of_ns),
            "redeemed": (redeemed_ns != nat) & (redeemed_ns < as_of_ns),
            "redeemed_ns": np.where(redeemed_ns < as_of_ns, redeemed_ns, nat),
            "offer_type": np.where(has_offer, offer_type[offer_pos], -1),
            "reward_category": np.where(has_offer, reward_cat[offer_pos], -1),
        }
    )
    return out.loc[out["cust"] >= 0].reset_index(drop=True)


def per_customer_sum(h: History, codes: np.ndarray, weights=None) -> np.ndarray:
    """Sum of ``weights`` (or count) per customer code, length ``h.n_customers``."""
    return np.bincount(codes, weights=weights, minlength=h.n_customers)[: h.n_customers]


def per_customer_max(h: History, codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Maximum of int64 ``values`` per customer code; the int64 minimum where a customer has none."""
    out = np.full(h.n_customers, np.iinfo("int64").min, dtype="int64")
    np.maximum.at(out, codes, values.astype("int64"))
    return out


def days_since(h: History, latest_ns: np.ndarray) -> np.ndarray:
    """Fractional days from each customer's latest timestamp to as_of; NaN where there is none."""
    none = latest_ns == np.iinfo("int64").min
    return np.where(none, np.nan, (h.as_of_ns - latest_ns) / NS_PER_DAY)


def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0."""
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)
