"""The offer model's taxonomy columns: the customer's history with the offer's node at every level and
with the offer's own products, joined per (customer, offer, as_of).

The width is fixed whatever the taxonomy: the offer's node at the finest ``DEPTHS`` levels
(``node_d0_*`` its finest node, ``node_d1_*`` the level above, ...) times ``NODE_FEATURES``, plus
``OFFER_PRODUCT_FEATURES``. An offer covering several nodes at one level sums their shares and
counts (shares capped at 1) and takes the most recent purchase. Nothing here names an offer, so an
offer the model never saw is scored from its nodes and products on day one.

``TaxonomyLookup`` indexes the long tables once (customer x node and customer x product as sparse
matrices, offer x node and offer x product incidences) for a set of customers at one ``as_of``; it
answers per (customer, offer) pair (``pairs``: training rows, the reference path) and for a customers x
offers grid (``grid``: ``models.offer_response.offer_matrix``, the API and the lists) with the same
rules. ``TaxonomySource`` (the tables and the cut) is what a decision set-up keeps to build lookups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from features.catalogue import (
    node_feature_names,
    node_offer_feature_names,
    offer_product_feature_names,
)
from features.hierarchy import (
    offer_nodes,
    offer_products,
    product_nodes,
    with_product_nodes,
)
from features.node_affinity import PurchaseLog, node_affinity_features, purchase_lines
from features.offer_products import RECENT_DAYS
from models.sparse_ops import csr, grid_min, pair_min, pair_sum

DEPTHS = 3  # levels joined, from the finest up; a deeper program's coarsest levels are not joined
# What the lookups read of the validated tables (the rest of a folder is not needed for these columns).
SOURCE_TABLES: tuple[str, ...] = ("customers", "transactions", "offers", "products", "offer_products", "offer_events")
# The purchase-log columns the taxonomy columns read (features.node_affinity.PurchaseLog; category for a
# one-level program without a products table).
TAXONOMY_TRANSACTION_COLUMNS: tuple[str, ...] = ("customer_id", "transaction_id", "ts", "product_id", "category",
                                                 "amount", "is_refund")
SHRINK_STRENGTH = 3.0  # sends' worth of the customer's overall rate in the shrunk category rate
_RECENCY = "days_since_last_purchase"
_PRODUCT_RECENCY = "days_since_offer_product_purchase"


def taxonomy_columns() -> list[str]:
    """The model-facing taxonomy columns, in order."""
    node = [f"node_d{d}_{name}" for d in range(DEPTHS) for name in node_feature_names()]
    return node + offer_product_feature_names() + node_offer_feature_names()


def uses_taxonomy(model_or_names) -> bool:
    """Whether an offer model (or a list of its feature names) consumes taxonomy columns."""
    if isinstance(model_or_names, (list, tuple, np.ndarray, pd.Index)):
        names = model_or_names
    else:  # a model: one without feature names (not ours) is scored through its own path
        names = getattr(model_or_names, "feature_names_in_", None)
    wanted = set(taxonomy_columns())
    return names is not None and any(str(n) in wanted for n in names)


def has_hierarchy(tables: dict[str, pd.DataFrame]) -> bool:
    """Whether the program's tables have a category or hierarchy to join offers to: a products table with
    rows, or transactions with a category (the one level then, as in the built-in sample)."""
    products = tables.get("products")
    if products is not None and len(products) and len([c for c in products.columns if c != "product_id"]):
        return True
    tx = tables.get("transactions")
    return tx is not None and "category" in tx.columns and bool(tx["category"].notna().any())


@dataclass(frozen=True)
class TaxonomySource:
    """The tables the taxonomy columns come from (``SOURCE_TABLES``; None: given per call, e.g. a list
    chunk's own tables) and the cut: history strictly before ``as_of``."""

    tables: dict[str, pd.DataFrame] | None
    as_of: pd.Timestamp

    def __post_init__(self):
        object.__setattr__(self, "as_of", pd.Timestamp(self.as_of))
        if self.tables is not None:
            object.__setattr__(self, "tables", source_tables(self.tables))

    def lookup(self, customer_ids, offers: pd.DataFrame, tables: dict[str, pd.DataFrame] | None = None) -> TaxonomyLookup:
        """The lookup of ``customer_ids`` x ``offers`` from ``tables`` (default: this source's)."""
        if tables is None and self.tables is None:
            raise ValueError("taxonomy columns: no tables to compute them from (give the chunk's tables, or a "
                             "TaxonomySource with the validated transactions, customers and products)")
        if tables is not None:
            return TaxonomyLookup(tables, self.as_of, customer_ids, offers)
        # this source's own tables: the first lookup cuts the log straight off (the API's one lookup: an
        # index would cost more than it saves); from the second (a list's chunks) it is indexed once
        cache = self._cache
        earlier = cache.get("lookups", 0)
        cache["lookups"] = earlier + 1
        if earlier and "log" not in cache:
            cache["log"] = PurchaseLog(self.tables)
        return TaxonomyLookup(self.tables, self.as_of, customer_ids, offers, structure=self._structure(offers),
                              log=cache.get("log"))

    def at(self, as_of) -> TaxonomySource:
        """This source's tables at another cut, sharing what does not depend on the cut (the offers'
        structure, the product map): a reload of a new profile snapshot over the same tables."""
        other = TaxonomySource.__new__(TaxonomySource)
        object.__setattr__(other, "tables", self.tables)
        object.__setattr__(other, "as_of", pd.Timestamp(as_of))
        object.__setattr__(other, "_memo", {"shared": self._shared})
        return other

    def _structure(self, offers: pd.DataFrame) -> OfferStructure:
        """The ``OfferStructure`` of this source's tables with ``offers``, built once per offers frame."""
        held = self._shared.get("structure")
        if held is None or held[0] is not offers:
            held = self._shared["structure"] = (offers, offer_structure({**self.tables, "offers": offers}))
        return held[1]

    def for_customers(self, customer_ids) -> TaxonomySource:
        """This source with the customer-keyed tables cut to ``customer_ids`` (their taxonomy columns are
        the same: each customer's come from their own purchases and offer events only)."""
        if self.tables is None:
            return self
        wanted = pd.Index(pd.unique(np.asarray(customer_ids).astype(str)))
        if "nodes" not in self._shared:  # a one-level map of the whole log, once per source's tables
            self._shared["nodes"] = with_product_nodes(self.tables)
        cut = {name: (frame[frame["customer_id"].astype(str).isin(wanted)] if "customer_id" in frame.columns else frame)
               for name, frame in self._shared["nodes"].items()}
        return TaxonomySource(cut, self.as_of)

    @property
    def _cache(self) -> dict:
        """What this source computed once: the indexed log and its lookup count (this cut), and under
        "shared" what does not depend on the cut (shared with ``at``'s sources)."""
        if "_memo" not in self.__dict__:
            object.__setattr__(self, "_memo", {})
        return self.__dict__["_memo"]

    @property
    def _shared(self) -> dict:
        return self._cache.setdefault("shared", {})

    def __getstate__(self):  # the cache is rebuilt where it is needed, never shipped
        return {"tables": self.tables, "as_of": self.as_of}


def source_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables a lookup reads (``SOURCE_TABLES`` that are present)."""
    return {name: tables[name] for name in SOURCE_TABLES if name in tables}


@dataclass(frozen=True)
class OfferStructure:
    """What does not change with the cut: each product's node per level, each offer's nodes and products."""

    nodes: pd.DataFrame  # features.hierarchy.product_nodes
    levels: list[str]
    nodes_of_offer: pd.DataFrame  # features.hierarchy.offer_nodes
    covered: pd.DataFrame  # features.hierarchy.offer_products


def offer_structure(tables: dict[str, pd.DataFrame]) -> OfferStructure:
    """The ``OfferStructure`` of the tables' products and offers (``tables["offers"]``)."""
    nodes = product_nodes(tables)
    return OfferStructure(nodes, [c for c in nodes.columns if c != "product_id"], offer_nodes(tables, nodes),
                          offer_products(tables, nodes))


@dataclass
class _Items:
    """Customer x item values (sparse) and the offer x item incidence, for one level or the products."""

    sums: dict[str, sparse.csr_matrix]  # customers x items, summed over an offer's items
    recency: sparse.csr_matrix  # customers x items, the smallest over an offer's items (stored entries)
    incidence: sparse.csc_matrix  # items x offers
    incidence_t: sparse.csr_matrix  # offers x items
    reached: np.ndarray  # per offer: covers at least one item


class TaxonomyLookup:
    """``taxonomy_columns()`` for customers x offers at one ``as_of``, from the long tables indexed once.

    Customers outside ``customer_ids`` read as customers without purchases.
    """

    def __init__(self, tables: dict[str, pd.DataFrame], as_of, customer_ids, offers: pd.DataFrame,
                 structure: OfferStructure | None = None, log: PurchaseLog | None = None):
        every_offer = tables.get("offers", offers)  # what past events name (the scored offers may be fewer)
        tables = {**source_tables(tables), "offers": offers}
        self.as_of = pd.Timestamp(as_of)
        self.customers = pd.Index(pd.unique(np.asarray(customer_ids).astype(str)))
        self.offers = pd.Index(pd.unique(offers["offer_id"].astype(str).to_numpy()))
        n_c, n_o = len(self.customers), len(self.offers)
        structure = structure if structure is not None else offer_structure(tables)
        nodes, levels = structure.nodes, structure.levels
        nodes_of_offer = structure.nodes_of_offer[structure.nodes_of_offer["offer_id"].isin(self.offers)]
        # One cut: read straight off the log (Arrow kernel; ~6x faster than indexing it first with a
        # PurchaseLog, which pays off only over many cuts, e.g. training's one per send day).
        lines = log.lines(self.as_of, self.customers) if log is not None else purchase_lines(
            tables, self.as_of, self.customers)
        affinity = node_affinity_features(tables, self.as_of, self.customers, nodes, lines)
        self.has_visits = self.customers.isin(pd.unique(affinity["customer_id"].to_numpy()))
        sum_names = [n for n in node_feature_names() if n != _RECENCY]
        self.depths: list[_Items | None] = []
        for d in range(DEPTHS):
            if d >= len(levels):
                self.depths.append(None)
                continue
            level = levels[len(levels) - 1 - d]
            on = nodes_of_offer[nodes_of_offer["level"] == level]
            aff = affinity[affinity["level"] == level]
            index = pd.Index(pd.unique(np.concatenate([on["node"].to_numpy(dtype=object),
                                                       aff["node"].to_numpy(dtype=object)])))
            rows, cols = self.customers.get_indexer(aff["customer_id"]), index.get_indexer(aff["node"])
            self.depths.append(self._items(
                {n: csr(aff[n], rows, cols, (n_c, len(index))) for n in sum_names},
                csr(aff[_RECENCY], rows, cols, (n_c, len(index))),
                index.get_indexer(on["node"]), self.offers.get_indexer(on["offer_id"]), len(index)))
        per_product = lines.assign(recent=lines["age_days"] <= RECENT_DAYS).groupby(
            ["customer_id", "product_id"], sort=False).agg(
            purchases=("age_days", "size"), recent=("recent", "sum"), youngest=("age_days", "min")).reset_index()
        covered = structure.covered[structure.covered["offer_id"].isin(self.offers)]
        index = pd.Index(pd.unique(np.concatenate([covered["product_id"].to_numpy(dtype=object),
                                                   per_product["product_id"].to_numpy(dtype=object)])))
        rows, cols = self.customers.get_indexer(per_product["customer_id"]), index.get_indexer(per_product["product_id"])
        shape = (n_c, len(index))
        self.products = self._items(
            {"purchases": csr(per_product["purchases"], rows, cols, shape),
             "recent": csr(per_product["recent"], rows, cols, shape),
             "bought": csr(np.ones(len(per_product)), rows, cols, shape)},
            csr(per_product["youngest"], rows, cols, shape),
            index.get_indexer(covered["product_id"]), self.offers.get_indexer(covered["offer_id"]), len(index))
        self.n_covered = np.bincount(self.offers.get_indexer(covered["offer_id"]), minlength=n_o).astype(float)
        self._offer_history(tables.get("offer_events"), every_offer, offers)

    def _offer_history(self, events, every_offer: pd.DataFrame, offers: pd.DataFrame) -> None:
        """Sends and redemptions per (customer, reward category) strictly before as_of (control hold-outs
        were never sent; a redemption counts once it happened), and each customer's overall rate."""
        cat_of = pd.Series(pd.concat([every_offer["reward_category"], offers["reward_category"]]).astype(str).to_numpy(),
                           index=pd.concat([every_offer["offer_id"], offers["offer_id"]]).astype(str).to_numpy())
        cat_of = cat_of[~cat_of.index.duplicated()]
        scored = offers.drop_duplicates("offer_id").set_index(offers.drop_duplicates("offer_id")["offer_id"].astype(str))
        scored_cat = scored["reward_category"].astype(str).reindex(self.offers).to_numpy(dtype=object)
        n_c = len(self.customers)
        if events is None or not len(events):
            cust, cat, redeemed = np.zeros(0, np.int64), np.zeros(0, dtype=object), np.zeros(0, bool)
        else:
            at = self.as_of.to_datetime64()
            keep = (events["sent_at"].to_numpy(dtype="datetime64[ns]") < at) & ~events["is_control"].to_numpy(dtype=bool)
            ev = events[keep]
            cust = self.customers.get_indexer(ev["customer_id"].astype(str))
            cat = ev["offer_id"].astype(str).map(cat_of).to_numpy(dtype=object)
            red = ev["redeemed_at"].to_numpy(dtype="datetime64[ns]")
            redeemed = ~np.isnat(red) & (red < at)
            mine = cust >= 0
            cust, cat, redeemed = cust[mine], cat[mine], redeemed[mine]
        sent_all = np.bincount(cust, minlength=n_c).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.overall_rate = np.where(sent_all > 0, np.bincount(cust[redeemed], minlength=n_c) / sent_all, np.nan)
        known = pd.notna(cat)
        index = pd.Index(pd.unique(np.concatenate([scored_cat, cat[known]])))
        cols = index.get_indexer(cat[known])
        shape = (n_c, len(index))
        self.sent = csr(np.ones(int(known.sum())), cust[known], cols, shape)
        self.redeemed = csr(redeemed[known].astype(float), cust[known], cols, shape)
        self.offer_category = index.get_indexer(scored_cat)

    def _items(self, sums, recency, item_of, offer_of, n_items) -> _Items:
        n_o = len(self.offers)
        incidence = sparse.csc_matrix((np.ones(len(item_of)), (item_of, offer_of)), shape=(n_items, n_o))
        reached = np.zeros(n_o, dtype=bool)
        reached[offer_of] = True
        return _Items(sums, recency, incidence, incidence.T.tocsr(), reached)

    def customer_positions(self, customer_ids) -> np.ndarray:
        """Rows of ``customer_ids`` in this lookup (-1: not in it)."""
        return self.customers.get_indexer(np.asarray(customer_ids).astype(str))

    def offer_positions(self, offer_ids) -> np.ndarray:
        """Columns of ``offer_ids``; KeyError naming those this lookup was not built for."""
        pos = self.offers.get_indexer(np.asarray(offer_ids).astype(str))
        if (pos < 0).any():
            missing = np.asarray(offer_ids)[pos < 0][:3].tolist()
            raise KeyError(f"taxonomy lookup: offers {missing} are not among the offers it was built for")
        return pos

    def grid(self, customer_ids, offer_ids, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """``names`` (default all ``taxonomy_columns()``) as (len(customer_ids), len(offer_ids)) arrays."""
        cust = self.customer_positions(customer_ids)
        offer = self.offer_positions(offer_ids)
        known = cust >= 0
        rows = np.where(known, cust, 0)
        everything = len(offer) == len(self.offers) and bool((offer == np.arange(len(offer))).all())
        columns: dict[int, sparse.csc_matrix] = {}  # each level's incidence cut to these offers, once

        def incidence(items: _Items) -> sparse.csc_matrix:
            if id(items) not in columns:
                columns[id(items)] = items.incidence if everything else items.incidence[:, offer]
            return columns[id(items)]

        def sums(m: sparse.csr_matrix, items: _Items) -> np.ndarray:
            out = (m[rows] @ incidence(items)).toarray()
            out[~known] = 0.0
            return out

        def smallest(items: _Items) -> np.ndarray:
            out = grid_min(items.recency[rows], incidence(items), len(offer))
            out[~known] = np.nan
            return out

        visits = (self.has_visits[rows] & known)[:, None]

        def history() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            cat = self.offer_category[offer]
            sent = self.sent[rows].toarray()[:, cat]
            redeemed = self.redeemed[rows].toarray()[:, cat]
            sent[~known], redeemed[~known] = 0.0, 0.0
            return sent, redeemed, np.where(known, self.overall_rate[rows], np.nan)[:, None]

        return self._columns(names, sums, smallest, visits, offer, (len(cust), len(offer)), history)

    def pairs(self, customer_ids, offer_ids, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """``names`` (default all) for the pairs (customer_ids[k], offer_ids[k]), as 1-d arrays."""
        cust = self.customer_positions(customer_ids)
        offer = self.offer_positions(offer_ids)
        known = cust >= 0
        rows = np.where(known, cust, 0)

        def sums(m: sparse.csr_matrix, items: _Items) -> np.ndarray:
            return np.where(known, pair_sum(m, items.incidence_t, rows, offer), 0.0)

        def smallest(items: _Items) -> np.ndarray:
            return np.where(known, pair_min(items.recency, items.incidence_t, rows, offer), np.nan)

        visits = self.has_visits[rows] & known

        def history() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            cat = self.offer_category[offer]
            sent = np.where(known, np.asarray(self.sent[rows, cat]).ravel(), 0.0)
            redeemed = np.where(known, np.asarray(self.redeemed[rows, cat]).ravel(), 0.0)
            return sent, redeemed, np.where(known, self.overall_rate[rows], np.nan)

        return self._columns(names, sums, smallest, visits, offer, (len(cust),), history)

    def _columns(self, names, sums, smallest, visits, offer, shape, history) -> dict[str, np.ndarray]:
        """The rules, once for both shapes: shares capped at 1 and NaN without visits; NaN for an offer
        without a node at the level; counts summed, recency the smallest."""
        names = list(taxonomy_columns() if names is None else names)
        wanted = set(names)
        out: dict[str, np.ndarray] = {}
        for d, items in enumerate(self.depths):
            cols = {f"node_d{d}_{n}": n for n in node_feature_names()}
            if not wanted & set(cols):
                continue
            for col, name in cols.items():
                if col not in wanted:
                    continue
                if items is None:
                    out[col] = np.full(shape, np.nan)
                    continue
                if name == _RECENCY:
                    values = smallest(items)
                else:
                    values = sums(items.sums[name], items)
                    if name.endswith("_share_365d"):
                        values = np.where(visits, np.minimum(values, 1.0), np.nan)
                reached = items.reached[offer]
                out[col] = np.where(reached if len(shape) == 1 else reached[None, :], values, np.nan)
        product_cols = offer_product_feature_names()
        if wanted & set(product_cols):
            items = self.products
            size = self.n_covered[offer] if len(shape) == 1 else self.n_covered[offer][None, :]
            computed = {
                "offer_product_purchases": lambda: sums(items.sums["purchases"], items),
                f"offer_product_purchases_{RECENT_DAYS}d": lambda: sums(items.sums["recent"], items),
                _PRODUCT_RECENCY: lambda: smallest(items),
                "offer_products_bought_share": lambda: _share(sums(items.sums["bought"], items), size),
            }
            for col in product_cols:
                if col in wanted:
                    out[col] = computed[col]()
        if wanted & set(node_offer_feature_names()):
            sent, redeemed, prior = history()
            with np.errstate(divide="ignore", invalid="ignore"):
                out.update({
                    "cust_sent_reward_category": sent,
                    "cust_redeemed_reward_category": redeemed,
                    "cust_redeem_rate_reward_category": np.where(sent > 0, redeemed / sent, np.nan),
                    "cust_redeem_rate_reward_category_shrunk": (redeemed + SHRINK_STRENGTH * prior) / (sent + SHRINK_STRENGTH),
                })
        return {n: np.broadcast_to(out[n], shape) for n in names}


def _share(bought: np.ndarray, size: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(size > 0, bought / size, np.nan)


def offer_taxonomy_features(tables: dict[str, pd.DataFrame], rows: pd.DataFrame,
                            offers: pd.DataFrame | None = None) -> pd.DataFrame:
    """``taxonomy_columns()`` for each row of ``rows`` (customer_id, offer_id, as_of), same index order;
    ``offers``: the offers the rows name (default ``tables["offers"]``, which past events are read against).

    Each row sees only history strictly before its own ``as_of`` (one ``TaxonomyLookup`` per as_of).
    """
    rows = rows[["customer_id", "offer_id", "as_of"]].reset_index(drop=True)
    rows = rows.assign(customer_id=rows["customer_id"].astype("str"), offer_id=rows["offer_id"].astype("str"))
    names = taxonomy_columns()
    out = np.full((len(rows), len(names)), np.nan)
    offers = tables["offers"] if offers is None else offers
    structure, log = offer_structure({**tables, "offers": offers}), PurchaseLog(tables)
    for as_of, group in rows.groupby("as_of", sort=True):
        lookup = TaxonomyLookup(tables, as_of, group["customer_id"].unique(), offers, structure, log)
        block = lookup.pairs(group["customer_id"].to_numpy(), group["offer_id"].to_numpy(), names)
        out[group.index.to_numpy()] = np.column_stack([block[n] for n in names])
    return pd.DataFrame(out, columns=names, index=rows.index, dtype="float64")
