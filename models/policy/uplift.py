"""The arbitration priority under the uplift objective: the incremental value of sending each offer.

``UpliftScorer`` builds the same offer rows the response model is scored on (``offer_features``:
profile x offer x context) and ranks them with ``models.uplift.incremental_value``: the uplift
model's estimated margin in the 30 days after the send net of the reward cost, minus what the
customer would have brought without it (T-learner: mu_treated - mu_control). It is in currency
units, like the expected value, but counts only what the offer changes: a sure thing who redeems
anyway gets about zero, a persuadable a positive value, a customer the offer puts off a negative one.
"""

from __future__ import annotations

import numpy as np

from models.policy.context import Context
from models.policy.customers import CustomerBatch
from models.policy.errors import PolicyError
from models.policy.offers import OfferCatalog


class UpliftScorer:
    """Incremental value of (customer, offer) pairs in a context, from an uplift model
    (``models.uplift.UpliftModel`` or anything with ``predict(offer rows)``)."""

    def __init__(self, model, feature_builder=None):
        self.model = model
        self.feature_builder = feature_builder

    def incremental_pairs(self, batch: CustomerBatch, rows: np.ndarray, offers: OfferCatalog, cols: np.ndarray,
                          ctx: Context) -> np.ndarray:
        """Incremental value of shape (len(rows), len(cols)) for the profiled customers ``rows`` x offers ``cols``."""
        from models.uplift import incremental_value

        if batch.profiles is None:
            raise PolicyError("UpliftScorer needs the customers' profile rows (CustomerBook.batch(with_profiles=True))")
        if self.feature_builder is None:
            from models.offer_response import offer_features as build
        else:
            build = self.feature_builder
        prof_rows = batch.profiles.iloc[np.searchsorted(np.flatnonzero(batch.known), rows)].reset_index(drop=True)
        X = build(prof_rows, offers.frame.iloc[cols].reset_index(drop=True), ctx.as_dict())
        if len(X) != len(rows) * len(cols):
            raise PolicyError(f"feature_builder returned {len(X)} rows for {len(rows)} customers x {len(cols)} offers; "
                              f"expected {len(rows) * len(cols)} (customer-major cross product)")
        return np.asarray(incremental_value(self.model, X), dtype=float).reshape(len(rows), len(cols))
