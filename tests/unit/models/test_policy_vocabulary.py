"""The policy's vocabulary and the words of reasons come from the program file, not from code."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_contracts.program import Program, coffee_program
from models.phrasing import category_words, daypart_words, phrase
from models.policy import Context, PolicyConfig, PolicyError, Vocabulary, prepare_offers
from models.policy.scoring import VERIFY_CONTEXTS, verify_contexts
from models.policy.vocabulary import SCHEMA_VOCABULARY

sys.path.insert(0, str(Path(__file__).parent))
from test_policy import NO_HOLDOUT, T, customers, decide, events, offer, offers_frame  # noqa: E402


def _program(**changes) -> Program:
    data = coffee_program().model_dump(mode="json")
    data.update(changes)
    return Program.model_validate(data)


SHOP = dict(
    hierarchy={"levels": ["department", "aisle"], "nodes": {
        "department": {"kind": "listed", "values": ["baby_care", "pantry"]},
        "aisle": {"kind": "listed", "values": ["nappies", "pasta"]}}},
    tiers={"kind": "none"},
    offer_channels={"kind": "listed", "values": ["mail", "email"]},
    dayparts=[{"name": "morning", "start_hour": 0.0, "end_hour": 12.0},
              {"name": "afternoon", "start_hour": 12.0, "end_hour": 18.0},
              {"name": "evening", "start_hour": 18.0, "end_hour": 24.0}],
    economics={"currency": "EUR", "operating_cost_per_month": 1.0, "gross_margin_rate": 0.3},
)


def test_the_built_in_program_gives_the_vocabulary_of_before():
    assert Vocabulary.from_program(coffee_program()) == SCHEMA_VOCABULARY
    assert SCHEMA_VOCABULARY.lowest_tier == SCHEMA_VOCABULARY.tiers[0]
    # the sample contexts: the same four moments, on the first four offer channels as before
    assert [c.channel for c in VERIFY_CONTEXTS] == list(SCHEMA_VOCABULARY.offer_channels[:4])


def test_a_program_without_tiers_has_no_tier_rule_and_its_own_channels():
    vocab = Vocabulary.from_program(_program(**SHOP))
    assert vocab.tiers == () and vocab.lowest_tier is None
    assert vocab.categories == ("baby_care", "pantry", "nappies", "pasta")  # every level, coarsest first
    assert vocab.offer_channels == ("mail", "email")
    assert [c.channel for c in verify_contexts(vocab)] == ["mail", "email", "mail", "email"]
    offers = offers_frame(offer("N1", "nappies", tiers=(), channels=("mail",)),
                          offer("P1", "pasta", tiers=(), channels=("email",)))
    catalog = prepare_offers(offers, vocab)
    ctx = Context(T, "mail", vocabulary=vocab)
    d = decide(customers(("c1", "none", True, {"nappies": 0.8})), catalog, ctx=ctx)
    assert d.offers["offer_id"].tolist() == ["N1"]  # every tier-less customer may have it; 'email' offers not here


def test_open_vocabularies_take_the_values_the_offers_hold():
    program = _program(hierarchy={"levels": ["category"]}, offer_channels={"kind": "open"})
    offers = offers_frame(offer("A", "tea"), offer("B", "cake", channels=("kiosk",)))
    vocab = Vocabulary.from_program(program, offers)
    assert vocab.categories == ("cake", "tea") and vocab.offer_channels == ("app", "kiosk", "push")


def test_the_cold_start_tier_is_the_lowest_unless_set_and_a_wrong_one_is_named():
    offers = offers_frame(offer("S", "tea", tiers=("silver", "gold", "platinum")), offer("E", "cake"))
    unknown_tier = customers(("c1", "diamond", True, {"tea": 0.9, "cake": 0.5}))
    assert decide(unknown_tier, offers).offers["offer_id"].tolist() == ["E"]  # the lowest tier: not silver+
    as_silver = PolicyConfig(holdout_fraction=0.0, cold_start_tier="silver")
    assert set(decide(unknown_tier, offers, config=as_silver).offers["offer_id"]) == {"S", "E"}
    with pytest.raises(PolicyError, match=r"cold_start_tier must be one of \[.*\], got 'gem'"):
        decide(unknown_tier, offers, config=PolicyConfig(holdout_fraction=0.0, cold_start_tier="gem"))


def test_a_context_channel_outside_the_offers_vocabulary_is_named():
    vocab = Vocabulary.from_program(_program(**SHOP))
    with pytest.raises(PolicyError, match=r"context.channel must be one of the program's offer channels \['mail', 'email'\], got 'app'"):
        decide(customers(("c1", "none", True, {})), prepare_offers(offers_frame(offer("N1", "nappies")), vocab))
    with pytest.raises(PolicyError, match=r"context.channel must be one of the program's offer channels \['mail', 'email'\], got 'app'"):
        Context(T, "app", vocabulary=vocab)


def test_reasons_take_words_from_the_data_and_the_program():
    assert category_words("baby_care") == ("baby care",)
    assert phrase("cust_visit_share_reward_category", 0.5, "baby_care", None, {}) == "buys baby care on 50% of visits"
    assert daypart_words("after_17") == "after 17:00" and daypart_words("9_to_11") == "between 9:00 and 11:00"
    shop = _program(**SHOP)
    assert daypart_words("afternoon", shop) == "between 12:00 and 18:00"
    assert daypart_words("morning", shop) == "before 12:00" and daypart_words("late_night", shop) == "late night"
    assert daypart_words(None) == "now"
    for name, _, _ in coffee_program().daypart_edges:  # the built-in program's dayparts, phrased from their hours
        assert phrase(f"visit_share_{name}", 0.25, None, None, {}) == f"25% of visits {daypart_words(name)}"


class _Churn:
    feature_names_in_: list = []

    def predict_proba(self, X):
        return np.column_stack([np.full(len(X), 0.9), np.full(len(X), 0.1)])


def test_a_programs_dayparts_name_the_context_and_the_offer_rows():
    from models.offer_response import offer_features

    vocab = Vocabulary.from_program(_program(**SHOP))
    at_ten = pd.Timestamp("2026-06-29 10:00")
    ctx = Context(at_ten, "mail", vocabulary=vocab)
    assert ctx.daypart == "morning" and ctx.as_dict()["daypart"] == "morning"
    assert Context(at_ten, "app").daypart == "9_to_11"  # without a vocabulary: the built-in program's
    profiles = pd.DataFrame({"customer_id": ["c1"], "avg_basket_365d": [5.0], "offers_redeem_rate": [0.2]})
    offers = offers_frame(offer("N1", "nappies", tiers=(), channels=("mail",)))
    assert offer_features(profiles, offers, ctx.as_dict())["send_daypart"].tolist() == ["morning"]


def test_a_bare_context_is_named_by_the_offers_program_when_deciding():
    vocab = Vocabulary.from_program(_program(**SHOP))
    catalog = prepare_offers(offers_frame(offer("N1", "nappies", tiers=(), channels=("mail",))), vocab)
    hist = events(*[(f"h{i}", "N1", "2026-06-01 19:00", "2026-06-02" if i % 2 else None) for i in range(10)])
    from models.policy import customer_book, index_history, recommend

    book = customer_book(pd.DataFrame({"customer_id": ["c1"], "prefs": [{}]}),
                         pd.DataFrame({"customer_id": ["c1"], "tier": [None], "marketing_consent": [True]}))
    d = recommend(book.batch(["new-1"]), catalog, index_history(hist, vocab.dayparts),
                  Context(pd.Timestamp("2026-06-29 19:30"), "mail"), None, NO_HOLDOUT, 1)
    reason = d.offers["reasons"].iloc[0][0]
    assert reason == "new customer: a popular nappies offer after 18:00 on mail", reason  # the program's hours
    assert index_history(hist, vocab.dayparts).popularity["daypart"].tolist() == ["evening"]


def test_the_book_is_tagged_with_the_programs_habit_tags():
    from models.policy.setup import book_for

    vocab = Vocabulary.from_program(_program(**SHOP))
    profiles = pd.DataFrame({"customer_id": ["c1"], "visits_90d": [10], "visit_share_morning": [0.9]})
    known = pd.DataFrame({"customer_id": ["c1"], "tier": [None], "marketing_consent": [True]})
    book = book_for(profiles, known, _Churn(), vocabulary=vocab)
    assert "morning regular" in book.batch(["c1"]).habit_tags[0]
    assert "morning regular" not in book_for(profiles, known, _Churn()).batch(["c1"]).habit_tags[0]  # built-in tags


def test_training_rows_name_the_send_daypart_as_the_program_does(sample):
    from models.training_sets import offer_response_training_set

    ids = sorted(sample.tables["customers"]["customer_id"])[:150]
    tables = {k: (v[v["customer_id"].isin(ids)] if "customer_id" in v.columns else v) for k, v in sample.tables.items()}
    X, _, _ = offer_response_training_set(tables, program=_program(dayparts=SHOP["dayparts"]))
    assert len(X) > 100 and set(X["send_daypart"]) <= {"morning", "afternoon", "evening"}
    assert {"visit_share_morning", "visit_share_evening"} <= set(X.columns)
