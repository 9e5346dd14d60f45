"""The offer_events table indexed by customer (``index_history``) and the contact rules that read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_contracts.schema import OFFER_EVENTS
from features.catalogue import Dayparts, daypart_names
from models.columns import require_columns
from models.policy.context import DAY_NS, EMPTY_POSITIONS, HOUR_NS, NAT_NS, as_ns
from models.policy.errors import MissingPolicyInputError
from models.policy.offers import OfferCatalog

# The offer_events table's columns the policy reads.
POLICY_EVENT_COLUMNS: tuple[str, ...] = ("customer_id", "offer_id", "sent_at", "channel", "redeemed_at", "is_control")
_EMPTY = EMPTY_POSITIONS


@dataclass(frozen=True)
class ContactHistory:
    """The offer_events table indexed by customer, plus per-offer redemption times and popularity counts."""

    customers: np.ndarray  # sorted unique customer ids (object)
    starts: np.ndarray  # row range of each customer in the arrays below
    ends: np.ndarray
    offer_id: np.ndarray  # object, one per non-control event, sorted by (customer, sent_at)
    sent_at: np.ndarray  # int64 ns
    redeemed_at: np.ndarray  # int64 ns, NAT_NS when never redeemed
    redemptions_by_offer: Mapping[str, np.ndarray]  # offer_id -> sorted redemption times (ns)
    popularity: pd.DataFrame  # non-control sends: offer_id, daypart, channel, sends, redemptions
    _offer_pos: dict = field(default_factory=dict, compare=False, repr=False)

    def offer_positions(self, catalog: OfferCatalog) -> np.ndarray:
        """Position in ``catalog`` of each event's offer (-1 when not there), computed once per catalog."""
        hit = self._offer_pos.get(id(catalog))
        if hit is None or hit[0] is not catalog:
            pos = np.fromiter((catalog.positions.get(o, -1) for o in self.offer_id), dtype=np.int64,
                              count=len(self.offer_id))
            hit = self._offer_pos[id(catalog)] = (catalog, pos)
        return hit[1]

    def redeemed_before(self, catalog: OfferCatalog, t: int) -> np.ndarray:
        """Redemptions up to ``t`` of each catalogue offer (all customers)."""
        key = ("budget", id(catalog))
        hit = self._offer_pos.get(key)
        if hit is None or hit[0] is not catalog:
            segments = [self.redemptions_by_offer.get(o, _EMPTY) for o in catalog.offer_id]
            ends = np.cumsum([len(x) for x in segments]).astype(np.int64)
            flat = np.concatenate(segments) if segments else _EMPTY
            hit = self._offer_pos[key] = (catalog, flat, ends - np.asarray([len(x) for x in segments], dtype=np.int64), ends)
        _, flat, starts, ends = hit
        upto = np.concatenate([[0], np.cumsum(flat <= t)])
        return (upto[ends] - upto[starts]).astype(np.float64)


def index_history(offer_events: pd.DataFrame, dayparts: Dayparts | None = None) -> ContactHistory:
    """Index the offer_events table (schema ``offer_events``) for the policy. Control rows are not contacts.
    Popularity is counted per daypart of ``dayparts`` (the program's; default the built-in program's)."""
    require_columns(offer_events.columns, POLICY_EVENT_COLUMNS, OFFER_EVENTS.name, error=MissingPolicyInputError)
    ev = offer_events.loc[~offer_events["is_control"].astype(bool), list(POLICY_EVENT_COLUMNS)]
    ev = ev.sort_values(["customer_id", "sent_at"], kind="stable")
    # Codes, not one Python string per event (millions of events: their strings, and the survivors
    # scattered among them, would stay resident); the customers in sorted order, each with its first row.
    cust = ev["customer_id"].astype(str)
    cust_codes, cust_names = pd.factorize(cust, use_na_sentinel=False)
    uniq = np.asarray(cust_names, dtype=object)
    if len(uniq) > 1 and not (uniq[1:] > uniq[:-1]).all():  # not sorted as strings (ids of another dtype)
        uniq, starts = np.unique(cust.to_numpy(dtype=object), return_index=True)
    else:
        starts = np.flatnonzero(np.diff(cust_codes, prepend=-1) != 0)
    ends = np.append(starts[1:], len(ev)).astype(np.int64)
    sent = as_ns(ev["sent_at"], missing=NAT_NS)
    redeemed = as_ns(ev["redeemed_at"], missing=NAT_NS)
    offer_ids = _shared_strings(ev["offer_id"])
    red_mask = redeemed != NAT_NS
    by_offer = {
        oid: np.sort(np.asarray(times, dtype=np.int64))
        for oid, times in pd.Series(redeemed[red_mask]).groupby(offer_ids[red_mask]).agg(np.asarray).items()
    }
    sent_ts = pd.to_datetime(ev["sent_at"])
    hours = (sent_ts.dt.hour + sent_ts.dt.minute / 60.0).to_numpy(dtype=float)
    pop = pd.DataFrame(
        {
            "offer_id": offer_ids,
            "daypart": daypart_names(hours, dayparts),
            "channel": _shared_strings(ev["channel"]),
            "redeemed": red_mask,
        }
    )
    popularity = (
        pop.groupby(["offer_id", "daypart", "channel"])["redeemed"].agg(sends="size", redemptions="sum").reset_index()
    )
    return ContactHistory(
        customers=uniq.astype(object),
        starts=np.asarray(starts, dtype=np.int64),
        ends=ends,
        offer_id=offer_ids,
        sent_at=sent,
        redeemed_at=redeemed,
        redemptions_by_offer=by_offer,
        popularity=popularity,
    )


def _shared_strings(column: pd.Series) -> np.ndarray:
    """``column.astype(str)`` as an object array holding one str object per distinct value (not one per row)."""
    codes, names = pd.factorize(column.astype(str), use_na_sentinel=False)
    return np.asarray(names, dtype=object)[codes]


def history_rows(hist: ContactHistory, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the indexed history that belong to ``ids`` and the customer position of each row."""
    if len(hist.customers) == 0 or len(ids) == 0:
        return _EMPTY, _EMPTY
    pos = np.searchsorted(hist.customers, ids)
    pos = np.minimum(pos, len(hist.customers) - 1)
    found = hist.customers[pos] == ids
    cust_pos = np.flatnonzero(found)
    starts, ends = hist.starts[pos[found]], hist.ends[pos[found]]
    lengths = ends - starts
    if lengths.sum() == 0:
        return _EMPTY, _EMPTY
    ev_cust = np.repeat(cust_pos, lengths)
    offsets = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths)
    rows = np.arange(lengths.sum()) + offsets
    return rows, ev_cust


def contact_rules(hist, rows, ev_cust, n_c, catalog, t, config):
    """(blocked customer x offer pairs, customers at the weekly cap, customers in cooldown)."""
    blocked = np.zeros((n_c, len(catalog)), dtype=bool)
    cap_hit = np.zeros(n_c, dtype=bool)
    cooling = np.zeros(n_c, dtype=bool)
    if len(rows) == 0:
        return blocked, cap_hit, cooling
    sent, redeemed = hist.sent_at[rows], hist.redeemed_at[rows]
    past = sent <= t
    sends_week = np.bincount(ev_cust[past & (sent > t - 7 * DAY_NS)], minlength=n_c)
    cap_hit = sends_week >= config.max_sends_per_week
    cooling = np.bincount(ev_cust[past & (sent > t - int(config.cooldown_hours * HOUR_NS))], minlength=n_c) > 0

    offer_pos = hist.offer_positions(catalog)[rows]
    in_cat = offer_pos >= 0
    # suitability: the same offer redeemed in the lookback window
    recent_red = in_cat & (redeemed <= t) & (redeemed > t - int(config.redeemed_lookback_days * DAY_NS))
    blocked[ev_cust[recent_red], offer_pos[recent_red]] = True
    # suppression: too many ignored sends of a reward_category in the window
    ignored = (
        in_cat
        & (sent <= t - int(config.ignored_after_days * DAY_NS))
        & (sent > t - int(config.ignored_window_days * DAY_NS))
        & (redeemed > t)
    )
    if ignored.any():
        cat = catalog.category[offer_pos[ignored]]
        counts = np.zeros((n_c, len(catalog.categories)), dtype=np.int64)
        np.add.at(counts, (ev_cust[ignored], cat), 1)
        suppressed = counts >= config.max_ignored_per_category  # (n_c, n_categories)
        blocked |= suppressed[:, np.clip(catalog.category, 0, None)] & (catalog.category >= 0)[None, :]
    return blocked, cap_hit, cooling
