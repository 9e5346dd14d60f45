"""Redemption budgets over a whole decision set: one allocation rule for campaign lists and the API.

An offer with a limited remaining budget is never expected to be redeemed more often than that
budget allows: per offer, the offers given are kept by descending priority (``score``; list order
breaks ties) while their summed P(redeem) fits the budget, the rest are withdrawn (``budget_keep``).
A customer's other offers then move up a rank; a customer left with none is ``budget_exhausted``.

``rewards score`` allocates over every row of its list (two streaming passes); an offer API
configured for a campaign allocates the same way over its whole customer book at load time, in the
campaign's context (``models.policy.setup``), and withdraws those offers from its answers
(``withdraw_for_budget``), so both give the same offers and ranks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import numpy as np
import pandas as pd

from models.policy.decisions import STATUS_BUDGET, STATUS_OK, Decisions


def budget_keep(offer: np.ndarray, score: np.ndarray, p_redeem: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """Which offer rows to keep so that no offer is expected to be redeemed more than its budget allows.

    ``offer`` (int codes into ``remaining``), ``score`` and ``p_redeem`` describe one row per offer given,
    in list order. Per offer, rows are taken by descending priority score (list order breaks ties)
    while the running sum of ``p_redeem`` stays within ``remaining`` (inf: no limit); the rest are
    withdrawn. The sum only grows, so each offer keeps a prefix of its best customers.
    """
    offer = np.asarray(offer, dtype=np.int64)
    n = len(offer)
    keep = np.ones(n, dtype=bool)
    if not n:
        return keep
    order = np.lexsort((np.arange(n), -np.asarray(score, dtype=float), offer))
    grouped, p = offer[order], np.asarray(p_redeem, dtype=float)[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    running = np.cumsum(p)
    before_group = np.repeat(np.r_[0.0, running][starts], np.diff(np.r_[starts, n]))
    within = running - before_group  # cumulative expected redemptions within each offer
    keep[order] = within <= np.asarray(remaining, dtype=float)[grouped] * (1 + 1e-12)
    return keep


class BudgetAllocation:
    """Pass one over a decision set in list order (customer, then rank): ``note`` each block of rows,
    then ``withdrawn()`` flags, per row noted, the offers withdrawn for budget."""

    def __init__(self, budget_remaining: Mapping[str, float]):
        limited = {str(o): float(b) for o, b in budget_remaining.items() if np.isfinite(b)}
        self.offers = pd.Index(sorted(limited))
        self.remaining = np.asarray([limited[o] for o in self.offers], dtype=float)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.rows = 0

    @property
    def limited(self) -> bool:
        return len(self.offers) > 0

    def note(self, offer_id: np.ndarray, given: np.ndarray, score: np.ndarray, p_redeem: np.ndarray) -> None:
        """One block of rows: the offer of each row (None where no offer), whether it is an offer given."""
        if self.limited:
            code = self.offers.get_indexer(pd.Index(np.asarray(offer_id, dtype=object)).fillna(""))
            mine = np.flatnonzero((code >= 0) & np.asarray(given, dtype=bool))
            if len(mine):
                self.parts.append((self.rows + mine, code[mine], np.asarray(score)[mine], np.asarray(p_redeem)[mine]))
        self.rows += len(offer_id)

    def withdrawn(self) -> np.ndarray:
        """A flag per row noted (in order): True where the offer is withdrawn for budget."""
        out = np.zeros(self.rows, dtype=bool)
        if self.parts:
            position, code, score, p = (np.concatenate(x) for x in zip(*self.parts, strict=True))
            out[position[~budget_keep(code, score, p, self.remaining)]] = True
        return out


def rerank_after_withdrawal(customer_id: np.ndarray, withdrawn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For offer rows by customer then rank: (kept mask, new rank 1..n of each kept row, customers left with none).

    The one rule for moving a customer's other offers up when some are withdrawn."""
    customer_id = np.asarray(customer_id, dtype=object)
    withdrawn = np.asarray(withdrawn, dtype=bool)
    kept = ~withdrawn
    ranks = pd.Series(customer_id[kept]).groupby(customer_id[kept], sort=False).cumcount().to_numpy() + 1
    lost = pd.Index(pd.unique(customer_id[withdrawn])).difference(pd.Index(customer_id[kept]))
    return kept, ranks.astype(np.int64), np.asarray(lost, dtype=object)


def withdrawn_pairs(customer_id: np.ndarray, offer_id: np.ndarray, withdrawn: np.ndarray) -> frozenset[tuple[str, str]]:
    """The (customer_id, offer_id) pairs flagged ``withdrawn``."""
    w = np.asarray(withdrawn, dtype=bool)
    return frozenset(zip(np.asarray(customer_id, dtype=object)[w].tolist(),
                         np.asarray(offer_id, dtype=object)[w].tolist(), strict=True))


def withdraw_for_budget(decisions: Decisions, pairs: Iterable[tuple[str, str]]) -> Decisions:
    """``decisions`` without the offers in ``pairs`` (customer_id, offer_id), re-ranked; a customer left
    with no offer gets status ``budget_exhausted``."""
    pairs = pairs if isinstance(pairs, (set, frozenset)) else frozenset(pairs)
    oc = decisions.offer_columns
    cust = np.asarray(oc["customer_id"], dtype=object)
    if not pairs or not len(cust):
        return decisions
    offer = np.asarray(oc["offer_id"], dtype=object)
    gone = np.fromiter(((c, o) in pairs for c, o in zip(cust.tolist(), offer.tolist(), strict=True)),
                       dtype=bool, count=len(cust))
    if not gone.any():
        return decisions
    kept, ranks, lost = rerank_after_withdrawal(cust, gone)
    offers = {k: np.asarray(v)[kept] for k, v in oc.items() if k != "reasons"}
    offers["reasons"] = [r for r, keep in zip(oc["reasons"], kept, strict=True) if keep]
    offers["rank"] = ranks
    cc = dict(decisions.customer_columns)
    ids = np.asarray(cc["customer_id"], dtype=object)
    status = np.asarray(cc["status"], dtype=object).copy()
    status[np.isin(ids, lost) & (status == STATUS_OK)] = STATUS_BUDGET
    cc["status"] = status
    n_offers = pd.Series(offers["customer_id"]).value_counts()
    cc["n_offers"] = n_offers.reindex(ids, fill_value=0).to_numpy(dtype=np.int64)
    return Decisions(offer_columns=offers, customer_columns=cc)
