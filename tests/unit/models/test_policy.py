"""The next-best-offer policy on tiny hand-built frames, with a stub offer model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.policy import (
    STATUS_CONTACT_CAP,
    STATUS_CONTROL,
    STATUS_COOLDOWN,
    STATUS_NO_CONSENT,
    STATUS_OK,
    Context,
    PolicyConfig,
    PolicyError,
    UnknownChannelError,
    UnknownOfferError,
    customer_book,
    index_history,
    is_holdout,
    prepare_offers,
    recommend,
)

from models.policy.vocabulary import SCHEMA_VOCABULARY  # noqa: E402

T = pd.Timestamp("2026-06-29 08:30")
NO_HOLDOUT = PolicyConfig(holdout_fraction=0.0)


def offer(offer_id, category, *, tiers=("bronze", "silver", "gold", "platinum"), channels=("app", "push"),
          valid_from="2026-06-01", valid_to="2026-07-31", budget=None, min_spend=5.0, cost=1.0, offer_type="discount"):
    return {
        "offer_id": offer_id, "name": f"{category} offer {offer_id}", "reward_category": category,
        "offer_type": offer_type, "value": 1.0, "cost_per_redemption": cost, "min_spend": min_spend,
        "eligible_tiers": list(tiers), "channels": list(channels),
        "valid_from": pd.Timestamp(valid_from), "valid_to": pd.Timestamp(valid_to), "budget_redemptions": budget,
    }


def offers_frame(*rows) -> pd.DataFrame:
    f = pd.DataFrame(list(rows))
    f["budget_redemptions"] = f["budget_redemptions"].astype("Int64")
    return f


def customers(*rows) -> pd.DataFrame:
    """rows: (customer_id, tier, consent, {category: preference})."""
    out = []
    for cid, tier, consent, prefs in rows:
        out.append({"customer_id": cid, "tier": tier, "marketing_consent": consent, "known": True,
                    "churn_risk": 0.1, "habit_tags": ["buys coffee before 11:00"], "prefs": prefs})
    return pd.DataFrame(out)


def events(*rows) -> pd.DataFrame:
    """rows: (customer_id, offer_id, sent_at, redeemed_at or None[, is_control])."""
    out = []
    for r in rows:
        cid, oid, sent, redeemed = r[:4]
        out.append({"customer_id": cid, "offer_id": oid, "sent_at": pd.Timestamp(sent), "channel": "app",
                    "viewed_at": pd.NaT, "redeemed_at": pd.Timestamp(redeemed) if redeemed else pd.NaT,
                    "is_control": r[4] if len(r) > 4 else False})
    f = pd.DataFrame(out, columns=["customer_id", "offer_id", "sent_at", "channel", "viewed_at", "redeemed_at", "is_control"])
    return f.astype({"sent_at": "datetime64[ns]", "viewed_at": "datetime64[ns]", "redeemed_at": "datetime64[ns]",
                     "is_control": bool})


def stub_features(profiles: pd.DataFrame, offers: pd.DataFrame, context: dict) -> pd.DataFrame:
    """Customer-major cross product; feature 'pref' = the customer's preference for the offer's category."""
    rows = []
    for _, c in profiles.iterrows():
        for _, o in offers.iterrows():
            rows.append({"pref": float(c["prefs"].get(o["reward_category"], 0.1)), "offer_value": 1.0})
    return pd.DataFrame(rows, columns=["pref", "offer_value"])


class StubModel:
    def predict_proba(self, X):
        p = X["pref"].to_numpy(dtype=float)
        return np.column_stack([1 - p, p])

    def contributions(self, X):
        return pd.DataFrame({"pref": X["pref"].to_numpy() - 0.2, "offer_value": 0.0, "bias": -1.0})


def decide(custs, offers, history=None, ctx=None, config=NO_HOLDOUT, k=3, **kw):
    history = events() if history is None else history
    ctx = ctx or Context(T, "app")
    return recommend(custs, offers, history, ctx, StubModel(), config, k, feature_builder=stub_features, **kw)


def test_top_k_orders_by_priority_with_one_offer_per_category():
    offers = offers_frame(offer("B1", "bakery"), offer("B2", "bakery"), offer("C1", "coffee"), offer("L1", "lunch"))
    d = decide(customers(("c1", "gold", True, {"bakery": 0.6, "coffee": 0.4, "lunch": 0.2})), offers, k=3)
    got = d.offers
    assert got["reward_category"].is_unique
    assert got["reward_category"].tolist() == ["bakery", "coffee", "lunch"]
    assert got["rank"].tolist() == [1, 2, 3]
    assert got["score"].is_monotonic_decreasing
    assert d.customers.loc[0, "status"] == STATUS_OK and d.customers.loc[0, "n_offers"] == 3


def test_k_limits_the_number_of_offers():
    offers = offers_frame(offer("B1", "bakery"), offer("C1", "coffee"), offer("L1", "lunch"))
    d = decide(customers(("c1", "gold", True, {"bakery": 0.6})), offers, k=1)
    assert d.offers["offer_id"].tolist() == ["B1"]


def test_inactive_offers_are_not_candidates():
    offers = offers_frame(offer("OLD", "bakery", valid_to="2026-06-28"), offer("NEW", "coffee", valid_from="2026-06-30"),
                          offer("NOW", "lunch"))
    d = decide(customers(("c1", "gold", True, {"bakery": 0.9, "coffee": 0.9})), offers)
    assert d.offers["offer_id"].tolist() == ["NOW"]


def test_tier_and_channel_eligibility():
    offers = offers_frame(offer("GOLD", "bakery", tiers=("gold", "platinum")), offer("PUSH", "coffee", channels=("push",)),
                          offer("ANY", "lunch", channels=("app",)))
    d = decide(customers(("b", "bronze", True, {"bakery": 0.9, "coffee": 0.9}), ("g", "gold", True, {"bakery": 0.9})), offers)
    assert set(d.offers_for("b")["offer_id"]) == {"ANY"}
    assert set(d.offers_for("g")["offer_id"]) == {"GOLD", "ANY"}
    d_push = decide(customers(("b", "bronze", True, {"coffee": 0.9})), offers, ctx=Context(T, "push"))
    assert d_push.offers["offer_id"].tolist() == ["PUSH"]


def test_customers_without_marketing_consent_get_nothing():
    offers = offers_frame(offer("B1", "bakery"))
    d = decide(customers(("c1", "gold", False, {"bakery": 0.9})), offers)
    assert d.offers.empty
    assert d.customers.loc[0, "status"] == STATUS_NO_CONSENT


def test_exhausted_budget_removes_the_offer_but_counts_only_past_redemptions():
    offers = offers_frame(offer("B1", "bakery", budget=2), offer("C1", "coffee", budget=2))
    hist = events(("x", "B1", "2026-06-10", "2026-06-11"), ("y", "B1", "2026-06-10", "2026-06-12"),
                  ("x", "C1", "2026-06-10", "2026-06-11"), ("y", "C1", "2026-06-10", "2026-07-05"))
    d = decide(customers(("c1", "gold", True, {"bakery": 0.9, "coffee": 0.5})), offers, hist)
    assert d.offers["offer_id"].tolist() == ["C1"]  # B1 has used its 2 redemptions by T; C1 only 1


def test_recently_redeemed_offer_is_not_suitable():
    offers = offers_frame(offer("B1", "bakery"), offer("C1", "coffee"))
    hist = events(("c1", "B1", "2026-06-10", "2026-06-12"))
    d = decide(customers(("c1", "gold", True, {"bakery": 0.9, "coffee": 0.5})), offers, hist)
    assert "B1" not in d.offers["offer_id"].tolist()
    old = events(("c1", "B1", "2026-04-10", "2026-04-12"))
    assert "B1" in decide(customers(("c1", "gold", True, {"bakery": 0.9})), offers, old).offers["offer_id"].tolist()


def test_weekly_contact_cap_and_cooldown():
    offers = offers_frame(offer("B1", "bakery"), offer("C1", "coffee"))
    config = PolicyConfig(holdout_fraction=0.0, max_sends_per_week=2, cooldown_hours=12)
    capped = events(("c1", "C1", "2026-06-24", None), ("c1", "C1", "2026-06-27", None))
    d = decide(customers(("c1", "gold", True, {"bakery": 0.9})), offers, capped, config=config)
    assert d.offers.empty and d.customers.loc[0, "status"] == STATUS_CONTACT_CAP
    # control sends are not contacts
    control = events(("c1", "C1", "2026-06-24", None, True), ("c1", "C1", "2026-06-27", None, True))
    assert decide(customers(("c1", "gold", True, {"bakery": 0.9})), offers, control, config=config).customers.loc[0, "status"] == STATUS_OK
    cooling = events(("c1", "C1", "2026-06-29 01:00", None))
    d = decide(customers(("c1", "gold", True, {"bakery": 0.9})), offers, cooling, config=config)
    assert d.offers.empty and d.customers.loc[0, "status"] == STATUS_COOLDOWN
    # sends after the decision time do not count
    future = events(("c1", "C1", "2026-06-29 09:00", None), ("c1", "C1", "2026-06-29 10:00", None))
    assert not decide(customers(("c1", "gold", True, {"bakery": 0.9})), offers, future, config=config).offers.empty


def test_category_suppressed_after_k_ignored_sends():
    offers = offers_frame(offer("B1", "bakery"), offer("B2", "bakery"), offer("C1", "coffee"))
    config = PolicyConfig(holdout_fraction=0.0, max_ignored_per_category=2, max_sends_per_week=10)
    ignored = events(("c1", "B1", "2026-05-01", None), ("c1", "B2", "2026-05-20", None))
    d = decide(customers(("c1", "gold", True, {"bakery": 0.9, "coffee": 0.3})), offers, ignored, config=config)
    assert d.offers["reward_category"].tolist() == ["coffee"]
    one = events(("c1", "B1", "2026-05-01", None))
    assert "bakery" in decide(customers(("c1", "gold", True, {"bakery": 0.9})), offers, one, config=config).offers["reward_category"].tolist()
    # a send from yesterday is not ignored yet
    recent = events(("c1", "B1", "2026-05-01", None), ("c1", "B2", "2026-06-28", None))
    assert "bakery" in decide(customers(("c1", "gold", True, {"bakery": 0.9})), offers, recent, config=config).offers["reward_category"].tolist()


def test_control_group_gets_no_offer_and_is_flagged():
    ids = [f"c{i}" for i in range(400)]
    config = PolicyConfig(holdout_fraction=0.25)
    held = is_holdout(ids, 0.25, config.holdout_salt)
    assert 0.18 < held.mean() < 0.32
    assert (is_holdout(ids, 0.25, config.holdout_salt) == held).all()  # deterministic
    assert not (is_holdout(ids, 0.25, "other-salt") == held).all()  # the salt matters
    offers = offers_frame(offer("B1", "bakery"))
    custs = customers(*[(cid, "gold", True, {"bakery": 0.9}) for cid in ids[:40]])
    d = decide(custs, offers, config=config)
    flagged = d.customers.set_index("customer_id")
    for cid, h in zip(ids[:40], held[:40], strict=True):
        assert bool(flagged.loc[cid, "control_group"]) == bool(h)
        assert (flagged.loc[cid, "status"] == STATUS_CONTROL) == bool(h)
        assert (cid in set(d.offers["customer_id"])) != bool(h)


def test_churn_weight_and_levers_move_the_arbitration():
    offers = offers_frame(offer("B1", "bakery", offer_type="discount"), offer("C1", "coffee", offer_type="bonus_points"))
    c = customers(("c1", "gold", True, {"bakery": 0.5, "coffee": 0.45}))
    assert decide(c, offers).offers["offer_id"].iloc[0] == "B1"
    lever = PolicyConfig(holdout_fraction=0.0, offer_type_levers={"bonus_points": 2.0})
    assert decide(c, offers, config=lever).offers["offer_id"].iloc[0] == "C1"
    risky = c.assign(churn_risk=0.9)
    assert decide(risky, offers).offers["score"].iloc[0] > decide(c, offers).offers["score"].iloc[0]
    # cost lowers the priority; a floor removes offers that lose money
    costly = offers_frame(offer("B1", "bakery", cost=50.0), offer("C1", "coffee"))
    floor = PolicyConfig(holdout_fraction=0.0, min_priority=0.0)
    assert decide(c, costly, config=floor).offers["offer_id"].tolist() == ["C1"]


def test_reasons_use_habit_tags_and_positive_contributions():
    offers = offers_frame(offer("C1", "coffee"))
    d = decide(customers(("c1", "gold", True, {"coffee": 0.8})), offers)
    reasons = d.offers["reasons"].iloc[0]
    assert reasons[0] == "pref: 0.80"  # the contribution that pushed it up, with the customer's value
    assert "buys coffee before 11:00" in reasons  # the habit tag about the offer's category
    assert not any("offer value" in r for r in reasons)  # a zero contribution is not a reason


def test_unknown_customer_gets_cold_start_offers_from_popularity_in_context():
    offers = offers_frame(offer("B1", "bakery"), offer("L1", "lunch"))
    hist = events(*[(f"h{i}", "B1", "2026-06-01 08:00", "2026-06-02" if i % 2 else None) for i in range(20)],
                  *[(f"h{i}", "L1", "2026-06-01 08:00", None) for i in range(20)])
    known = pd.DataFrame({"customer_id": ["c1"], "tier": ["gold"], "marketing_consent": [True]})
    book = customer_book(pd.DataFrame({"customer_id": ["c1"], "prefs": [{}]}), known)
    custs = book.batch(["new-1"])
    assert not custs.known[0] and "c1" in book
    d = recommend(custs, offers, hist, Context(T, "app"), None, NO_HOLDOUT, 2)
    assert d.customers.loc[0, "cold_start"]
    assert d.offers["offer_id"].tolist() == ["B1", "L1"]
    assert d.offers["p_redeem"].iloc[0] > d.offers["p_redeem"].iloc[1]
    assert "new customer" in d.offers["reasons"].iloc[0][0]


def test_offer_ids_restrict_candidates_and_unknown_ids_raise():
    offers = offers_frame(offer("B1", "bakery"), offer("C1", "coffee"))
    c = customers(("c1", "gold", True, {"bakery": 0.9, "coffee": 0.1}))
    assert decide(c, offers, offer_ids=["C1"]).offers["offer_id"].tolist() == ["C1"]
    with pytest.raises(UnknownOfferError, match=r"offer_ids \['NOPE'\] are not in the offer catalogue"):
        decide(c, offers, offer_ids=["C1", "NOPE"])


def test_prepared_inputs_give_the_same_decisions_as_tables():
    offers = offers_frame(offer("B1", "bakery", budget=5), offer("C1", "coffee"), offer("L1", "lunch"))
    hist = events(("c1", "B1", "2026-06-20", None), ("c2", "C1", "2026-06-10", "2026-06-11"))
    c = customers(("c1", "gold", True, {"bakery": 0.9, "coffee": 0.4}), ("c2", "silver", True, {"coffee": 0.7}),
                  ("c3", "bronze", True, {"lunch": 0.7}))
    a = decide(c, offers, hist)
    b = decide(c, prepare_offers(offers), index_history(hist))
    pd.testing.assert_frame_equal(a.offers, b.offers)
    pd.testing.assert_frame_equal(a.customers, b.customers)


def test_bad_inputs_raise_clear_errors():
    offers = offers_frame(offer("B1", "bakery"))
    c = customers(("c1", "gold", True, {}))
    with pytest.raises(PolicyError, match=r"k must be a positive integer, got 0"):
        decide(c, offers, k=0)
    with pytest.raises(UnknownChannelError, match=r"context.channel must be one of the program's offer channels .*'fax'"):
        Context(T, "fax", vocabulary=SCHEMA_VOCABULARY)
    with pytest.raises(UnknownChannelError, match=r"context.channel must be one of the program's offer channels .*'fax'"):
        decide(c, offers, ctx=Context(T, "fax"))  # no vocabulary on the context: the offers' is checked
    with pytest.raises(PolicyError, match=r"customers must contain columns \['tier'\]"):
        decide(c.drop(columns=["tier"]), offers)
    with pytest.raises(PolicyError, match="holdout_fraction must be in"):
        PolicyConfig(holdout_fraction=1.5)


def test_tree_path_contributions_add_up_to_the_booster_raw_score():
    import lightgbm as lgb

    from models.reasons import TreePaths

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    X[rng.random(400) < 0.1, 1] = np.nan  # missing values take the default branch
    X[:, 3] = rng.integers(0, 5, 400)  # a categorical column
    y = ((X[:, 0] + np.nan_to_num(X[:, 1]) + (X[:, 3] == 2)) > 0.5).astype(int)
    model = lgb.LGBMClassifier(n_estimators=30, num_leaves=7, min_child_samples=5, verbose=-1)
    model.fit(X, y, categorical_feature=[3])
    booster = model.booster_
    paths = TreePaths(booster.dump_model())
    leaves = booster.predict(X, pred_leaf=True)
    contrib = paths.contributions(leaves)
    assert contrib.shape == (400, 5)
    np.testing.assert_allclose(contrib.sum(axis=1), booster.predict(X, raw_score=True), atol=1e-9)
    np.testing.assert_allclose(paths.probabilities(leaves), model.predict_proba(X)[:, 1], atol=1e-9)
    assert paths.check(booster, X) < 1e-9
    # the feature the label depends on most carries the most weight
    assert np.abs(contrib[:, 0]).mean() > np.abs(contrib[:, 2]).mean()


# --- the uplift objective ------------------------------------------------------------------------

LIFT = {"bakery": 1.5, "coffee": 0.0, "lunch": -0.5}  # incremental value of each category's offer


def stub_uplift_features(profiles: pd.DataFrame, offers: pd.DataFrame, context: dict) -> pd.DataFrame:
    """Customer-major cross product; feature 'lift' = the planted incremental value of the offer's category."""
    return pd.DataFrame([{"lift": LIFT[o["reward_category"]]} for _ in range(len(profiles)) for _, o in offers.iterrows()])


class StubUpliftModel:
    def predict(self, X):
        return X["lift"].to_numpy(dtype=float)


def test_the_uplift_objective_ranks_a_persuadable_offer_above_a_sure_thing():
    from models.policy import OBJECTIVE_UPLIFT, UpliftScorer

    # Coffee: high P(redeem) but no uplift (a sure thing); bakery: lower P(redeem), positive uplift.
    offers = offers_frame(offer("C1", "coffee"), offer("B1", "bakery"), offer("L1", "lunch"))
    c = customers(("c1", "gold", True, {"coffee": 0.8, "bakery": 0.3, "lunch": 0.2}))
    by_value = decide(c, offers)
    assert by_value.offers["offer_id"].tolist() == ["C1", "B1", "L1"]
    uplift = PolicyConfig(holdout_fraction=0.0, objective=OBJECTIVE_UPLIFT)
    by_uplift = decide(c, offers, config=uplift, uplift=UpliftScorer(StubUpliftModel(), stub_uplift_features))
    got = by_uplift.offers
    assert got["offer_id"].tolist() == ["B1", "C1", "L1"]
    assert got["score"].tolist() == pytest.approx([1.5, 0.0, -0.5])  # the priority is the incremental value
    # P(redeem), expected value and reasons are those of the expected-value answer, offer for offer.
    same = by_value.offers.set_index("offer_id").loc[got["offer_id"]]
    assert got["p_redeem"].to_numpy() == pytest.approx(same["p_redeem"].to_numpy())
    assert got["expected_value"].to_numpy() == pytest.approx(same["expected_value"].to_numpy())
    assert got["reasons"].tolist() == same["reasons"].tolist()
    top = decide(c, offers, k=1, config=uplift, uplift=UpliftScorer(StubUpliftModel(), stub_uplift_features))
    assert top.offers["offer_id"].tolist() == ["B1"]
    # A floor at zero drops the offer the uplift model says loses money.
    floor = PolicyConfig(holdout_fraction=0.0, objective=OBJECTIVE_UPLIFT, min_priority=-0.1)
    kept = decide(c, offers, config=floor, uplift=UpliftScorer(StubUpliftModel(), stub_uplift_features))
    assert kept.offers["offer_id"].tolist() == ["B1", "C1"]


def test_the_uplift_objective_needs_an_uplift_model_and_a_known_objective():
    from models.policy import OBJECTIVE_UPLIFT, decision_setup

    offers = offers_frame(offer("C1", "coffee"))
    c = customers(("c1", "gold", True, {"coffee": 0.8}))
    uplift = PolicyConfig(holdout_fraction=0.0, objective=OBJECTIVE_UPLIFT)
    with pytest.raises(PolicyError, match=r"objective 'uplift' .* no uplift scorer was given; train one with `rewards train uplift`"):
        decide(c, offers, config=uplift)
    with pytest.raises(PolicyError, match=r"objective is 'uplift' but no uplift model was given.*`rewards train uplift`"):
        decision_setup({"offers": offers, "offer_events": events()}, None, StubModel(), policy=uplift)
    with pytest.raises(PolicyError, match=r"objective must be one of \['expected_value', 'uplift'\], got 'profit'"):
        PolicyConfig(objective="profit")
