"""The point-in-time slice every family reads: rows strictly before ``as_of``, keyed by integer customer codes.

``prepare_history`` is the only place that cuts tables at ``as_of``; families never see later rows.
Customers are those who signed up strictly before ``as_of``, sorted by customer_id; a customer's code
is its position in that order, so per-customer sums are ``np.bincount`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_contracts.errors import MissingColumnsError, MissingTableError
from data_contracts.schema import TABLES

if TYPE_CHECKING:
    from data_contracts.program import Program

NS_PER_DAY = 86_400 * 10**9
NS_PER_HOUR = 3_600 * 10**9

# Columns of equal length, by name: plain numpy arrays (a DataFrame would copy them into blocks).
Arrays = dict[str, np.ndarray]

REQUIRED_TABLES = ("customers", "transactions", "offers", "offer_events", "feedback")


class AsOfError(ValueError):
    """``as_of`` is not a usable point in time."""


@dataclass(frozen=True)
class History:
    """Everything before ``as_of`` that the families need, as flat arrays and small frames."""

    as_of: pd.Timestamp
    as_of_ns: int
    customers: pd.DataFrame  # signed up before as_of, sorted by customer_id, RangeIndex = customer code
    # One row per visit (receipt with a purchase line), sorted by (cust, ts): cust, ts_ns, store,
    # channel (code in the program's listed purchase channels; a code per distinct value when open),
    # cat_mask (bit i = the program's i-th habit node, ``program.habits.nodes``, bought).
    visits: Arrays
    # One row per receipt line: cust, cat (a code per distinct category, -1 when missing), amount, is_refund,
    # product, ts_ns.
    lines: Arrays
    # Offer events sent (not control) before as_of: cust, sent_ns, viewed, redeemed, redeemed_ns, offer_type
    # (code in the program's listed offer types; -1 for another type or an offer missing from the offers table).
    offer_events: Arrays
    feedback: Arrays  # submitted before as_of: cust, ts_ns, nps_score; sorted by (cust, ts_ns)
    # The program whose vocabularies (dayparts, channels, tiers) the families follow.
    program: Program = field(default=None)  # type: ignore[assignment]  # None: the default program

    def __post_init__(self):
        if self.program is None:
            from features.catalogue import default_program

            object.__setattr__(self, "program", default_program())

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
        raise MissingTableError(
            missing_tables[0],
            f"build_profiles needs tables {list(REQUIRED_TABLES)}; missing {missing_tables}; pass every validated table",
        )
    for name in REQUIRED_TABLES:
        frame = tables[name]
        missing = [c for c in TABLES[name].column_names if c not in frame.columns]
        if missing:
            raise MissingColumnsError(name, missing, list(frame.columns))


def _arrow(values: pd.Series) -> pa.Array:
    """A string column as one contiguous Arrow array (zero-copy for pandas' Arrow-backed ``str``)."""
    arr = pa.array(values) if not isinstance(values, pa.ChunkedArray) else values
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    return arr


def codes(values: pd.Series, categories) -> np.ndarray:
    """Position of each value in ``categories`` (-1 when absent or null), via an Arrow hash lookup."""
    if not isinstance(categories, pd.Series):
        categories = pd.Series(list(categories), dtype="str")
    value_set = _arrow(categories)
    found = pc.index_in(_arrow(values), value_set=value_set)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype("int32", copy=False)


def factorize(values: pd.Series) -> np.ndarray:
    """Integer codes, equal values sharing one (Arrow dictionary encoding; no Python objects)."""
    encoded = pc.dictionary_encode(_arrow(values))
    return encoded.indices.to_numpy(zero_copy_only=False).astype("int64", copy=False)


def category_codes(values: pd.Series, nodes) -> tuple[np.ndarray, np.ndarray]:
    """(a code per distinct value, -1 when null, int32; the position of each value in ``nodes``, -1 when
    absent or null, int8) from one Arrow dictionary encoding: the second is looked up on the distinct values."""
    encoded = pc.dictionary_encode(_arrow(values))
    cat = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype("int32", copy=False)
    node_set = _arrow(pd.Series(list(nodes), dtype="str"))
    in_nodes = pc.index_in(encoded.dictionary, value_set=node_set).fill_null(-1).to_numpy(zero_copy_only=False)
    lut = np.append(np.asarray(in_nodes, dtype="int8"), np.int8(-1))  # code -1 (null) reads the last entry
    return cat, lut[cat]


def receipt_codes(values: pd.Series) -> np.ndarray:
    """Integer codes of receipt ids: equal ids share a code.

    When the ids are sorted (as exported receipts usually are) a new code starts wherever the id
    changes, a string comparison instead of a hash table; otherwise this is ``factorize``.
    """
    arr = _arrow(values)
    if len(arr) > 1 and pc.all(pc.greater_equal(arr[1:], arr[:-1])).as_py():
        change = pc.not_equal(arr[1:], arr[:-1]).to_numpy(zero_copy_only=False)
        return np.r_[0, np.cumsum(change, dtype="int64")]
    return factorize(values)


def _select(mask: np.ndarray) -> np.ndarray | slice:
    """Row selector for ``mask``: a plain slice when every row is selected (saves a copy of each column)."""
    return slice(None) if mask.all() else np.flatnonzero(mask)


def prepare_history(tables: dict[str, pd.DataFrame], as_of, program: Program | None = None) -> History:
    """Cut every table at ``as_of`` (strictly before) and encode keys as integer codes, in the
    vocabularies of ``program`` (default: the built-in default program)."""
    if program is None:
        from features.catalogue import default_program

        program = default_program()
    _check_columns(tables)
    as_of = to_as_of(as_of)
    as_of_ns = int(as_of.value)

    cust = tables["customers"]
    cust = cust.loc[_ns(cust["signup_date"]) < as_of_ns]
    cust = cust.sort_values("customer_id", kind="stable").reset_index(drop=True)
    ids = cust["customer_id"]

    lines, visits = _purchases(tables["transactions"], ids, as_of_ns, program.allowed("purchase_channels"),
                               program.habits.nodes)
    events = _offer_events(tables["offer_events"], tables["offers"], ids, as_of_ns, program.allowed("offer_types") or ())

    fb = tables["feedback"]
    fb_ts = _ns(fb["submitted_at"])
    fb_cust = codes(fb["customer_id"], ids)
    keep = np.flatnonzero((fb_ts < as_of_ns) & (fb_cust >= 0))
    keep = keep[np.lexsort((fb_ts[keep], fb_cust[keep]))]
    feedback = {"cust": fb_cust[keep], "ts_ns": fb_ts[keep], "nps_score": fb["nps_score"].to_numpy("float64")[keep]}
    return History(as_of, as_of_ns, cust, visits, lines, events, feedback, program)


def _purchases(tx: pd.DataFrame, ids: pd.Series, as_of_ns: int, channels: tuple[str, ...] | None,
               habit_nodes: tuple[str, ...]) -> tuple[Arrays, Arrays]:
    ts = _ns(tx["ts"])
    cust = codes(tx["customer_id"], ids)
    # Lines of customers not profiled at as_of (none in validated data) are not used.
    keep = _select((ts < as_of_ns) & (cust >= 0))
    lines: Arrays = {
        "cust": cust[keep],
        **{k: v[keep] for k, v in zip(("cat", "habit"), category_codes(tx["category"], habit_nodes), strict=True)},
        "amount": tx["amount"].to_numpy(dtype="float64")[keep],
        "is_refund": tx["is_refund"].to_numpy(dtype=bool)[keep],
        "product": factorize(tx["product_id"]).astype("int32")[keep],
        "ts_ns": ts[keep],
    }
    receipt = receipt_codes(tx["transaction_id"])[keep]
    row = np.arange(len(tx))[keep]  # position in tx of each kept line

    # Group lines by receipt; ids that are not in order need one stable sort.
    if len(receipt) and (np.diff(receipt) < 0).any():
        order = np.argsort(receipt, kind="stable")
        receipt, row = receipt[order], row[order]
        by_receipt = {k: lines[k][order] for k in ("habit", "is_refund")}
    else:
        by_receipt = lines
    if len(receipt):
        starts = np.flatnonzero(np.r_[True, receipt[1:] != receipt[:-1]])
        habit, is_refund = by_receipt["habit"], by_receipt["is_refund"]
        bit = np.where(is_refund | (habit < 0), 0, np.left_shift(1, habit.astype("int64")))
        mask = np.bitwise_or.reduceat(bit, starts)
        # A visit is a receipt with at least one purchase line (refund-only receipts are not visits).
        is_visit = np.add.reduceat((~is_refund).astype("int64"), starts) > 0
    else:
        starts, mask, is_visit = np.zeros(0, "int64"), np.zeros(0, "int64"), np.zeros(0, bool)
    first = row[starts[is_visit]]  # row in tx of each visit's first line
    first_ts = ts[first]
    if len(first) and (np.diff(first_ts) >= 0).all():  # already in time order: a stable sort by customer will do
        by_time = np.argsort(cust[first], kind="stable")
    else:
        by_time = np.lexsort((first_ts, cust[first]))
    by_customer_time = first[by_time]
    visits: Arrays = {
        "cust": cust[by_customer_time],
        "ts_ns": ts[by_customer_time],
        "store": factorize(tx["store_id"])[by_customer_time],
        "channel": (codes(tx["channel"], channels) if channels is not None else factorize(tx["channel"]))[by_customer_time],
        "cat_mask": mask[is_visit][by_time],
    }
    return lines, visits


def _offer_events(ev: pd.DataFrame, offers: pd.DataFrame, ids: pd.Series, as_of_ns: int,
                  offer_types: tuple[str, ...]) -> Arrays:
    sent_ns = _ns(ev["sent_at"])
    cust = codes(ev["customer_id"], ids)
    keep = _select((sent_ns < as_of_ns) & ~ev["is_control"].to_numpy(dtype=bool) & (cust >= 0))
    offer_pos = codes(ev["offer_id"], offers["offer_id"])[keep]
    offer_type = codes(offers["offer_type"], offer_types)
    has_offer = offer_pos >= 0
    viewed_ns = _ns(ev["viewed_at"])[keep]
    redeemed_ns = _ns(ev["redeemed_at"])[keep]
    nat = np.iinfo("int64").min
    redeemed = (redeemed_ns != nat) & (redeemed_ns < as_of_ns)
    return {
        "cust": cust[keep],
        "sent_ns": sent_ns[keep],
        "viewed": (viewed_ns != nat) & (viewed_ns < as_of_ns),
        "redeemed": redeemed,
        "redeemed_ns": np.where(redeemed, redeemed_ns, nat),
        "offer_type": np.where(has_offer, offer_type[offer_pos], -1),
    }


def distinct_per_customer(h: History, cust: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Number of distinct non-negative int ``values`` per customer."""
    if not len(cust):
        return np.zeros(h.n_customers, dtype="int64")
    width = int(values.max()) + 1
    keys = cust.astype("int64") * width + values
    if h.n_customers * width <= 4 * len(keys):  # a presence table no bigger than the input: no sort
        present = np.bincount(keys, minlength=h.n_customers * width) > 0
        return present.reshape(h.n_customers, width).sum(axis=1).astype("int64")
    pairs, _ = unique_counts(keys)
    return per_customer_sum(h, pairs // width).astype("int64")


def unique_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of an int array and how often each occurs (sort-based: fast on 10M rows)."""
    if not len(keys):
        return keys, np.zeros(0, dtype="int64")
    ordered = np.sort(keys)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return ordered[starts], np.diff(np.r_[starts, len(ordered)])


def per_customer_sums(h: History, cust: np.ndarray, group: np.ndarray, n_groups: int, weights=None) -> np.ndarray:
    """(customers x groups) sums of ``weights`` (or counts) per customer and group code; group < 0 skipped."""
    ok = group >= 0
    flat = cust[ok].astype("int64") * n_groups + group[ok]
    w = None if weights is None else weights[ok]
    size = h.n_customers * n_groups
    return np.bincount(flat, weights=w, minlength=size)[:size].reshape(-1, n_groups)


def per_customer_counts(h: History, cust: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """(customers x groups) counts of rows per customer and group code (rows with group < 0 skipped)."""
    return per_customer_sums(h, cust, group, n_groups)


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
