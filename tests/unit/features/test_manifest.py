"""Manifests describe a profile file; check_manifest names what is missing or extra."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from features import FeatureMismatchError, check_manifest, feature_names, make_manifest
from features.catalogue import feature_set_digest
from features.manifest import input_digest


def test_manifest_describes_the_profiles(tiny_profile, as_of):
    manifest = make_manifest(tiny_profile, as_of, "abc")
    assert manifest["as_of"] == "2026-03-01T00:00:00"
    assert manifest["row_count"] == 3
    assert manifest["input_digest"] == "abc"
    assert manifest["feature_set"] == feature_set_digest()
    assert [f["name"] for f in manifest["features"]] == feature_names()
    assert {f["dtype"] for f in manifest["features"]} == {"float64", "int64"}
    assert manifest["non_feature_columns"] == ["customer_id"]
    json.dumps(manifest)  # plain JSON


def test_check_manifest_accepts_the_same_features_with_id_columns(tiny_profile, as_of):
    manifest = make_manifest(tiny_profile, as_of, "abc")
    assert check_manifest(["as_of", *tiny_profile.columns, "habit_tags"], manifest) is None
    assert check_manifest(tiny_profile.columns, manifest) is None


def test_check_manifest_names_missing_and_extra_features(tiny_profile, as_of):
    manifest = make_manifest(tiny_profile, as_of, "abc")
    columns = [c for c in tiny_profile.columns if c != "visits_30d"] + ["shoe_size"]
    with pytest.raises(FeatureMismatchError, match=r"missing features \['visits_30d'\], unexpected features \['shoe_size'\]") as err:
        check_manifest(columns, manifest)
    assert err.value.missing == ["visits_30d"] and err.value.extra == ["shoe_size"]


def test_check_manifest_refuses_something_that_is_not_a_manifest():
    with pytest.raises(ValueError, match="not a feature manifest"):
        check_manifest(["a"], {"rows": 3})


def test_input_digest_ignores_rows_after_as_of_and_row_order(tiny, as_of):
    digest = input_digest(tiny, as_of)
    later_tx = tiny["transactions"].iloc[[0]].assign(transaction_id="late", ts=as_of + pd.Timedelta(days=1))
    appended = {**tiny, "transactions": pd.concat([tiny["transactions"], later_tx], ignore_index=True)}
    shuffled = {k: v.sample(frac=1.0, random_state=1) for k, v in tiny.items()}
    assert input_digest(appended, as_of) == digest
    assert input_digest(shuffled, as_of) == digest


def test_input_digest_changes_when_a_past_row_changes(tiny, as_of):
    changed = tiny["transactions"].copy()
    changed.loc[0, "amount"] = 4.5
    assert input_digest({**tiny, "transactions": changed}, as_of) != input_digest(tiny, as_of)
    offers = tiny["offers"].copy()
    offers.at[0, "eligible_tiers"] = ["gold"]  # list columns are part of the digest too
    assert input_digest({**tiny, "offers": offers}, as_of) != input_digest(tiny, as_of)


def test_feature_set_digest_is_stable_and_short():
    assert feature_set_digest() == feature_set_digest() and len(feature_set_digest()) == 16


def test_input_digest_ignores_views_and_redemptions_after_as_of(tiny, as_of):
    ev = tiny["offer_events"].copy()
    ev.loc[1, "viewed_at"] = pd.NaT  # was viewed only after as_of: unknown at as_of either way
    assert input_digest({**tiny, "offer_events": ev}, as_of) == input_digest(tiny, as_of)
    ev.loc[0, "viewed_at"] = pd.NaT  # a view before as_of is part of the input
    assert input_digest({**tiny, "offer_events": ev}, as_of) != input_digest(tiny, as_of)
