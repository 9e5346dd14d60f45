"""Labelled training rows built from validated tables: pure functions, point-in-time correct.

Churn: one row per customer and snapshot date ``as_of``, features from ``features.build_training_snapshots``
(history strictly before ``as_of``; point-in-time features only), label 1 when the customer makes no visit in
``[as_of, as_of + horizon_days)``. Customers already inactive for more than ``max_inactive_days`` at
``as_of`` (no visit in that long, or signed up that long ago without a visit) are left out: they
have already churned, predicting it again teaches nothing. Their count is reported, not hidden.

Offer response: one row per sent (non-control) offer event, with the customer's profile as of the
send date's midnight, offer attributes and sending context (``models.offer_response.offer_features``);
label 1 when redeemed within the offer's validity and at most ``response_days`` after sending (most
offers run for months; the cap makes recent sends labelable, and redemptions come within days of
sending). Left out, and counted in ``meta.attrs``: sends whose label window
``min(valid_to, sent_at + response_days)`` ends after the observed data (label not yet known), and
sends of an offer whose redemption budget was already used up when it was sent (no one could redeem
it, so the label says nothing about the customer; the policy never proposes such offers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.errors import EmptyTableError, MissingColumnsError
from models.offer_response import offer_features, send_dayparts
from models.tabular import KEY_COLUMNS

NS_PER_DAY = 86_400 * 10**9


class LabelHorizonError(ValueError):
    """A snapshot date's label window reaches past the end of the observed data."""


class TrainingWindowError(ValueError):
    """The requested validation date, horizon and snapshots cannot all be labelled by the data."""


# Defaults of the churn training windows: snapshots 30 days apart, at least 30 days of history before the first.
DEFAULT_SNAPSHOTS = 5
DEFAULT_EVERY_DAYS = 30
MIN_HISTORY_DAYS = 30


def _require(frame: pd.DataFrame, table: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingColumnsError(table, missing, list(frame.columns))


def observed_until(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """Midnight after the last transaction: the end of what the data has observed."""
    ts = tables["transactions"]["ts"]
    if ts.empty:
        raise EmptyTableError("transactions", "no rows, cannot tell how far the data reaches")
    return ts.max().normalize() + pd.Timedelta(days=1)


def visit_days(transactions: pd.DataFrame) -> pd.DataFrame:
    """One row per (customer_id, day) with at least one purchase (non-refund line)."""
    _require(transactions, "transactions", ["customer_id", "ts", "is_refund"])
    bought = transactions.loc[~transactions["is_refund"].astype(bool), ["customer_id", "ts"]]
    days = pd.DataFrame({"customer_id": bought["customer_id"].astype("str"), "day": bought["ts"].dt.normalize()})
    return days.drop_duplicates().sort_values(["customer_id", "day"], ignore_index=True)


def rfm_snapshots(
    customers: pd.DataFrame, transactions: pd.DataFrame, as_of_dates: Sequence, visits: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per (customer signed up before as_of, as_of): BG/NBD inputs in days, computed on visit days before as_of.

    frequency = repeat visit days, recency = last minus first visit day, T = as_of minus first visit
    day (as_of minus signup when there is no visit), days_inactive = as_of minus the last visit day
    (minus signup when there is none).
    """
    _require(customers, "customers", ["customer_id", "signup_date"])
    visits = visit_days(transactions) if visits is None else visits
    out = []
    cust = customers[["customer_id", "signup_date"]].assign(customer_id=lambda d: d["customer_id"].astype("str"))
    for as_of in as_of_dates:
        as_of = pd.Timestamp(as_of)
        base = cust[cust["signup_date"] < as_of]
        before = visits[visits["day"] < as_of]
        g = before.groupby("customer_id")["day"].agg(first="min", last="max", n="count")
        frame = base.merge(g, left_on="customer_id", right_index=True, how="left")
        has = frame["n"].notna()
        first = frame["first"].where(has, frame["signup_date"])
        last = frame["last"].where(has, frame["signup_date"])
        out.append(
            pd.DataFrame(
                {
                    "customer_id": frame["customer_id"].to_numpy(),
                    "as_of": as_of,
                    "frequency": np.where(has, frame["n"].fillna(1) - 1, 0).astype(float),
                    "recency": np.where(has, (last - first).dt.days, 0).astype(float),
                    "T": ((as_of - first).dt.total_seconds() / 86400.0).to_numpy(dtype=float),
                    "days_inactive": ((as_of - last).dt.total_seconds() / 86400.0).to_numpy(dtype=float),
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def churn_labels(visits: pd.DataFrame, keys: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """1 where the customer has no visit day in [as_of, as_of + horizon_days), per row of ``keys``."""
    labels = np.ones(len(keys), dtype=int)
    as_of = keys["as_of"].to_numpy()
    for date in np.unique(as_of):
        date = pd.Timestamp(date)
        window = visits[(visits["day"] >= date) & (visits["day"] < date + pd.Timedelta(days=horizon_days))]
        rows = as_of == date.to_datetime64()
        active = keys.loc[rows, "customer_id"].isin(window["customer_id"].unique()).to_numpy()
        labels[rows] = (~active).astype(int)
    return labels


def churn_feature_columns(program=None) -> list[str]:
    """The profile features the churn model learns from: point-in-time ones only (tier and points are
    current values from the customers table, which would leak the future into past snapshots), of
    ``program``'s catalogue (default: the built-in program's)."""
    from features import feature_names

    return feature_names(point_in_time_only=True, program=program)


def churn_snapshot_dates(
    tables: dict[str, pd.DataFrame], horizon_days: int = 60, n_snapshots: int = 6, every_days: int = 30
) -> list[pd.Timestamp]:
    """``n_snapshots`` dates ``every_days`` apart, the latest being the last with a fully observed label window."""
    last = observed_until(tables) - pd.Timedelta(days=horizon_days)
    return [last - pd.Timedelta(days=every_days * k) for k in reversed(range(n_snapshots))]


@dataclass(frozen=True)
class ChurnWindows:
    """The snapshot dates of a churn training run: training snapshots, then the validation snapshot.

    Every training snapshot's label window [as_of, as_of + horizon_days) closes by the validation
    date, and the validation snapshot's closes by the end of the data.
    """

    training: tuple[pd.Timestamp, ...]
    validation: pd.Timestamp
    horizon_days: int
    every_days: int

    @property
    def dates(self) -> list[pd.Timestamp]:
        return [*self.training, self.validation]

    def as_params(self) -> dict[str, str | int]:
        return {"validation_as_of": str(self.validation.date()), "horizon_days": self.horizon_days,
                "training_as_of": ",".join(str(d.date()) for d in self.training),
                "snapshots": len(self.training), "every_days": self.every_days}

    def describe(self) -> str:
        return (f"validation snapshot {self.validation.date()}, {len(self.training)} training snapshots "
                f"{self.every_days} days apart from {self.training[0].date()} to {self.training[-1].date()} "
                f"(label horizon {self.horizon_days} days)")


def churn_windows(
    tables: dict[str, pd.DataFrame],
    horizon_days: int = 60,
    as_of=None,
    n_snapshots: int | None = None,
    every_days: int | None = None,
    min_history_days: int = MIN_HISTORY_DAYS,
) -> ChurnWindows:
    """Snapshot dates for the churn model, or a ``TrainingWindowError`` saying what the data allows.

    The validation date is ``as_of`` (default: the latest with a fully observed label window); the
    latest training snapshot is ``horizon_days`` before it, the others ``every_days`` (default 30)
    apart before that, none earlier than ``min_history_days`` after the first transaction.
    ``n_snapshots`` (default: up to 5, as many as fit) asks for exactly that many.
    """
    if horizon_days < 1:
        raise TrainingWindowError(f"churn windows: horizon_days must be >= 1, got {horizon_days}")
    for name, value in (("n_snapshots", n_snapshots), ("every_days", every_days)):
        if value is not None and value < 1:
            raise TrainingWindowError(f"churn windows: {name} must be >= 1, got {value}")
    end = observed_until(tables)
    earliest = tables["transactions"]["ts"].min().normalize() + pd.Timedelta(days=min_history_days)
    horizon = pd.Timedelta(days=horizon_days)
    latest_valid = end - horizon
    earliest_valid = earliest + horizon
    data = (f"the data runs from {(earliest - pd.Timedelta(days=min_history_days)).date()} to {(end - pd.Timedelta(days=1)).date()}")
    if earliest_valid > latest_valid:
        longest = (end - earliest).days // 2
        raise TrainingWindowError(
            f"churn windows: a {horizon_days}-day horizon needs a labelled training snapshot and a labelled validation "
            f"snapshot, but {data} ({min_history_days} days of history kept before the first snapshot); the longest "
            f"horizon it can label is {longest} days: use --horizon-days {longest} or less"
        )
    try:
        valid = latest_valid if as_of is None else pd.Timestamp(as_of).normalize()
    except (ValueError, TypeError):
        raise TrainingWindowError(f"churn windows: as_of must be a date like 2026-01-31, got '{as_of}'") from None
    if valid > latest_valid:
        raise TrainingWindowError(
            f"churn windows: validation date {valid.date()} needs {horizon_days} days of labels after it, but {data}; "
            f"the latest possible validation date is {latest_valid.date()}"
        )
    if valid < earliest_valid:
        raise TrainingWindowError(
            f"churn windows: validation date {valid.date()} leaves no training snapshot whose {horizon_days}-day label "
            f"window closes by then ({data}); use a date from {earliest_valid.date()} to {latest_valid.date()} "
            f"(the latest possible validation date)"
        )
    every = DEFAULT_EVERY_DAYS if every_days is None else every_days
    last_train = valid - horizon
    fit = (last_train - earliest).days // every + 1
    wanted = DEFAULT_SNAPSHOTS if n_snapshots is None else n_snapshots
    if n_snapshots is not None and n_snapshots > fit:
        raise TrainingWindowError(
            f"churn windows: {n_snapshots} training snapshots {every} days apart ending {last_train.date()} start before "
            f"{earliest.date()} (the first date with {min_history_days} days of history; {data}); at most {fit} fit: "
            f"use --snapshots {fit}, a smaller --every-days, or a later --as-of (the latest possible validation date "
            f"is {latest_valid.date()})"
        )
    count = min(wanted, fit)
    training = tuple(last_train - pd.Timedelta(days=every * k) for k in reversed(range(count)))
    return ChurnWindows(training, valid, horizon_days, every)


def churn_training_set(
    tables: dict[str, pd.DataFrame],
    as_of_dates: Sequence,
    horizon_days: int = 60,
    max_inactive_days: int = 180,
    program=None,
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """(X profile features, y churned, meta: customer_id, as_of, frequency, recency, T, days_inactive).

    The profiles are ``program``'s catalogue (default: the built-in program's).
    ``meta.attrs`` holds the row accounting: candidates, excluded_inactive, rows.
    """
    from features import build_training_snapshots

    if horizon_days < 1:
        raise ValueError(f"churn_training_set: horizon_days must be >= 1, got {horizon_days}")
    dates = sorted(pd.Timestamp(d) for d in as_of_dates)
    if not dates:
        raise ValueError("churn_training_set: as_of_dates is empty; give at least one snapshot date")
    end = observed_until(tables)
    late = [str(d.date()) for d in dates if d + pd.Timedelta(days=horizon_days) > end]
    if late:
        raise LabelHorizonError(
            f"churn_training_set: as_of dates {late} need {horizon_days} days of labels after them, but the "
            f"data ends at {end.date()}; use dates on or before {(end - pd.Timedelta(days=horizon_days)).date()}"
        )
    visits = visit_days(tables["transactions"])
    snaps = build_training_snapshots(tables, dates, program=program)
    snaps = snaps.assign(customer_id=snaps["customer_id"].astype("str"), as_of=pd.to_datetime(snaps["as_of"]))
    rfm = rfm_snapshots(tables["customers"], tables["transactions"], dates, visits=visits)
    rows = snaps.merge(rfm, on=["customer_id", "as_of"], how="left", validate="one_to_one")
    candidates = len(rows)
    keep = rows["days_inactive"] <= max_inactive_days
    rows = rows[keep].reset_index(drop=True)
    y = pd.Series(churn_labels(visits, rows[["customer_id", "as_of"]], horizon_days), name="churned")
    meta = rows[["customer_id", "as_of", "frequency", "recency", "T", "days_inactive"]].copy()
    meta.attrs = {"candidates": candidates, "excluded_inactive": int((~keep).sum()), "rows": len(rows),
                  "horizon_days": horizon_days, "max_inactive_days": max_inactive_days}
    X = rows[churn_feature_columns(program)]
    return X, y, meta


def _grid_day(days: pd.Series, every_days: int) -> pd.Series:
    if every_days <= 1:
        return days
    origin = pd.Timestamp("2000-01-03")  # a Monday: with every_days=7 the grid is week starts
    steps = ((days - origin) // pd.Timedelta(days=every_days)).astype("int64")
    return origin + pd.to_timedelta(steps * every_days, unit="D")


def _subset(tables: dict[str, pd.DataFrame], customer_ids) -> dict[str, pd.DataFrame]:
    ids = pd.Index(customer_ids)
    out = {}
    for name, frame in tables.items():
        out[name] = frame[frame["customer_id"].isin(ids)] if "customer_id" in frame.columns else frame
    return out


def budget_used_up(events: pd.DataFrame, offers: pd.DataFrame, at: pd.Series) -> np.ndarray:
    """Per row of ``events``: had its offer's redemption budget been used up before ``at`` (same index)?"""
    budget = offers.set_index("offer_id")["budget_redemptions"]
    budget = pd.to_numeric(budget, errors="coerce").astype("float64")
    redeemed = events.loc[events["redeemed_at"].notna(), ["offer_id", "redeemed_at"]]
    out = np.zeros(len(events), dtype=bool)
    offer_of = events["offer_id"].to_numpy()
    for offer_id, times in redeemed.groupby("offer_id")["redeemed_at"]:
        cap = budget.get(offer_id, np.nan)
        if not np.isfinite(cap):
            continue
        rows = offer_of == offer_id
        used = np.searchsorted(np.sort(times.to_numpy()), at.to_numpy()[rows], side="left")
        out[rows] = used >= cap
    return out


def offer_response_training_set(
    tables: dict[str, pd.DataFrame], response_days: int = 30, snapshot_every_days: int = 1, *,
    taxonomy: bool = False, program=None,
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """(X offer_features columns, y redeemed, meta: customer_id, offer_id, sent_at, as_of, reward_category,
    offer_type, label_end).

    Profiles are computed as of the send date's midnight (only earlier history), for just the customers
    sent something that day. ``snapshot_every_days`` > 1 snaps as_of back to a coarser grid (still only
    earlier history, slightly staler) to cut the number of profile builds on big data.
    ``taxonomy`` adds the columns of ``models.offer_taxonomy`` (the offer's node at every level and its
    own products; ``tables`` may hold ``products`` and ``offer_products``), each as of its row's as_of.
    Profiles are ``program``'s catalogue (default: the built-in program's).
    """
    from features import build_profiles

    events = tables["offer_events"]
    offers = tables["offers"]
    _require(events, "offer_events", ["customer_id", "offer_id", "sent_at", "channel", "redeemed_at", "is_control"])
    _require(offers, "offers", ["offer_id", "valid_to", "budget_redemptions"])
    sent = events[~events["is_control"].astype(bool)]
    sent = sent.merge(offers[["offer_id", "valid_to"]], on="offer_id", how="left", validate="many_to_one")
    if response_days < 1:
        raise ValueError(f"offer_response_training_set: response_days must be >= 1, got {response_days}")
    end = observed_until(tables)
    sent["label_end"] = sent["valid_to"].where(
        sent["valid_to"] < sent["sent_at"] + pd.Timedelta(days=response_days), sent["sent_at"] + pd.Timedelta(days=response_days)
    )
    observed = (sent["label_end"] < end).to_numpy()
    exhausted = budget_used_up(sent, offers, sent["sent_at"]) & observed
    candidates = len(sent)
    sent = sent[observed & ~exhausted].reset_index(drop=True)
    sent["as_of"] = _grid_day(sent["sent_at"].dt.normalize(), snapshot_every_days)
    sent["customer_id"] = sent["customer_id"].astype("str")
    profiles = []
    for as_of, group in sent.groupby("as_of", sort=True):
        prof = build_profiles(_subset(tables, group["customer_id"].unique()), as_of, program=program)
        profiles.append(pd.concat([prof, pd.DataFrame({"as_of": pd.Series(as_of, index=prof.index)})], axis=1))
    profiles = pd.concat(profiles, ignore_index=True)
    profiles["customer_id"] = profiles["customer_id"].astype("str")
    # Members sent an offer on their signup day have no profile as of that midnight: no history to learn from.
    has_profile = pd.MultiIndex.from_frame(sent[["customer_id", "as_of"]]).isin(
        pd.MultiIndex.from_frame(profiles[["customer_id", "as_of"]])
    )
    sent = sent[has_profile].reset_index(drop=True)
    context = sent[["customer_id", "offer_id", "as_of", "sent_at", "channel"]].assign(
        daypart=send_dayparts(sent["sent_at"], program))
    rows = offer_features(profiles, offers, context, tables=tables if taxonomy else None)
    y = pd.Series(
        (sent["redeemed_at"].notna() & (sent["redeemed_at"] <= sent["label_end"])).astype(int).to_numpy(), name="redeemed"
    )
    meta = pd.DataFrame(
        {
            "customer_id": sent["customer_id"].to_numpy(),
            "offer_id": sent["offer_id"].astype("str").to_numpy(),
            "sent_at": sent["sent_at"].to_numpy(),
            "as_of": sent["as_of"].to_numpy(),
            "reward_category": rows["reward_category"].to_numpy(),
            "offer_type": rows["offer_type"].to_numpy(),
            "label_end": sent["label_end"].to_numpy(),
        }
    )
    meta.attrs = {"candidates": candidates, "excluded_unobserved": int((~observed).sum()),
                  "excluded_budget_used_up": int(exhausted.sum()),
                  "excluded_no_profile": int((~has_profile).sum()), "rows": len(sent),
                  "snapshot_every_days": snapshot_every_days,
                  "response_days": response_days, "profile_builds": int(sent["as_of"].nunique())}
    X = rows[[c for c in rows.columns if c not in KEY_COLUMNS]]
    return X, y, meta
