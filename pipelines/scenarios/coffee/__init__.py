"""The coffee scenario: synthetic loyalty data for a coffee-and-bakery chain, with planted structure and ground truth.

The generator is vectorised numpy/pandas (loops run per day and per campaign, never per customer or per
transaction) and deterministic for a seed. It produces the five canonical tables of
``data_contracts.schema`` plus a ``ground_truth`` dictionary (personas, true affinities, churn dates,
catalogue) that the pipeline never reads.

Planted structure, so models have something true to find:

* personas with daypart, weekday, basket, channel and spend habits (``PERSONAS``);
* a churn hazard that rises with low satisfaction (NPS detractors) and short tenure; in the weeks
  before churn a latent disengagement lowers the visit rate, and nothing happens after ``churn_date``;
* offer redemption ``P = sigmoid(base + affinity[persona, category] + f(value) + g(recent visits) + ...)``
  with random control groups (``is_control``: eligible but not sent, never viewed or redeemed);
  ``morning_commuter`` rarely buys bakery but has the strongest bakery-offer affinity.

Modules: ``parameters`` (everything planted), ``sampling`` (helpers), ``visits`` (customers, visits,
transactions, tiers), ``campaigns`` (offers and sends), ``tables`` (the canonical tables), ``data``
(``SyntheticData`` and ``write``), ``generate`` (the whole run).
"""

from pipelines.scenarios.coffee.data import SyntheticData, write
from pipelines.scenarios.coffee.generate import generate
from pipelines.scenarios.coffee.parameters import PERSONAS

__all__ = ["PERSONAS", "SyntheticData", "generate", "write"]
