"""The next-best-offer policy: which offers a customer gets, in which order, and why.

Pure code (frames and arrays in, frames out). The offer API and campaign lists both build their
decisions with ``decision_setup`` (``models.policy.setup``) and decide with ``recommend``:

- ``context``: the moment and touchpoint of a decision (``Context``), the business levers (``PolicyConfig``);
- ``holdout``: the control group, one rule for the API and the lists;
- ``offers`` / ``contacts`` / ``customers``: the offers, the contact history and the customers, indexed once;
- ``scoring``: P(redeem) for customer x offer pairs (the model's own path, or faster equivalents);
- ``uplift``: the incremental value of a send, the priority under the uplift objective;
- ``recommend``: the rules, arbitration and top-k; ``decisions``: what was decided;
- ``budget``: withdrawing offers beyond a redemption budget, for lists and campaign-configured APIs;
- ``setup``: everything above built once from profiles, models and the tables;
- ``vocabulary``: the tiers, reward categories and offer channels the policy codes offers in.
"""

from models.policy.budget import BudgetAllocation, budget_keep, withdraw_for_budget
from models.policy.contacts import ContactHistory, index_history
from models.policy.context import (
    DAY_NS,
    HOUR_NS,
    NAT_NS,
    OBJECTIVE_EXPECTED_VALUE,
    OBJECTIVE_UPLIFT,
    OBJECTIVES,
    Context,
    PolicyConfig,
)
from models.policy.customers import ATTRIBUTE_COLUMNS, CustomerBatch, CustomerBook, customer_book
from models.policy.decisions import (
    DECISION_CUSTOMER_COLUMNS,
    DECISION_OFFER_COLUMNS,
    STATUS_BUDGET,
    STATUS_CONTACT_CAP,
    STATUS_CONTROL,
    STATUS_COOLDOWN,
    STATUS_NO_CONSENT,
    STATUS_NO_OFFER,
    STATUS_OK,
    Decisions,
)
from models.policy.errors import (
    MissingPolicyInputError,
    PolicyError,
    ScorerMismatchError,
    UnknownChannelError,
    UnknownOfferError,
)
from models.policy.holdout import DEFAULT_HOLDOUT_SALT, holdout_salt, holdout_unit, is_holdout
from models.policy.offers import OfferCatalog, prepare_offers, remaining_budget
from models.policy.recommend import recommend
from models.policy.scoring import (
    VERIFY_CONTEXTS,
    FeatureBuilder,
    FrameScorer,
    MatrixScorer,
    OfferModel,
    PrecomputedScorer,
    Scorer,
    check_scorer,
    precompute_scorer,
)
from models.policy.setup import Campaign, DecisionSetup, decision_setup, offer_scorer
from models.policy.uplift import UpliftScorer
from models.policy.vocabulary import SCHEMA_VOCABULARY, Vocabulary

__all__ = [name for name in dir() if not name.startswith("_")]
