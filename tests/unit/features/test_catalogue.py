"""The catalogue is the contract: unique names, valid declarations, families that return exactly them, generated docs."""

from __future__ import annotations

from collections import Counter

import pytest

from features.catalogue import FAMILIES, FEATURES, family_features, feature_names
from features.profiles import FAMILY_FUNCTIONS, FamilyOutputError, compute_family
from features.history import prepare_history


def test_names_are_unique_and_valid_identifiers():
    counts = Counter(feature_names())
    assert [n for n, c in counts.items() if c > 1] == []
    assert all(n.isidentifier() and n == n.lower() for n in counts)


def test_every_declaration_is_complete():
    for f in FEATURES:
        assert f.dtype in ("float64", "int64"), f.name
        assert f.family in FAMILIES, f.name
        assert f.description and f.window, f.name


def test_each_family_function_is_named_after_its_family():
    assert set(FAMILY_FUNCTIONS) == set(FAMILIES)
    for family, func in FAMILY_FUNCTIONS.items():
        assert func.__name__ == f"{family}_features"


@pytest.mark.parametrize("family", FAMILIES)
def test_family_returns_exactly_its_declared_features(family, tiny, as_of):
    frame = FAMILY_FUNCTIONS[family](prepare_history(tiny, as_of))
    assert list(frame.columns) == [f.name for f in family_features(family)]


def test_family_output_that_drifts_from_the_declarations_is_refused(tiny, as_of, monkeypatch):
    history = prepare_history(tiny, as_of)
    real = FAMILY_FUNCTIONS["rhythm"]
    monkeypatch.setitem(FAMILY_FUNCTIONS, "rhythm", lambda h: real(h).rename(columns={"gap_days_mean": "gap_mean"}))
    with pytest.raises(FamilyOutputError, match=r"'rhythm'.*missing \['gap_days_mean'\].*extra \['gap_mean'\]"):
        compute_family("rhythm", history)


def test_unknown_family_is_named():
    with pytest.raises(KeyError, match="unknown feature family 'weather'"):
        family_features("weather")


def test_committed_docs_equal_the_generated_catalogue():
    from pipelines.build_features import FEATURES_DOC, render_catalogue_markdown

    assert FEATURES_DOC.read_text() == render_catalogue_markdown(), (
        "docs/features.md is stale: run `python -m pipelines.build_features`"
    )


def test_docs_list_every_feature():
    from pipelines.build_features import render_catalogue_markdown

    text = render_catalogue_markdown()
    assert all(f"`{name}`" in text for name in feature_names())


def test_current_snapshot_features_are_flagged_and_can_be_left_out():
    leaky = sorted(set(feature_names()) - set(feature_names(point_in_time_only=True)))
    assert leaky == ["points_balance", "points_to_next_tier", "tier_ordinal"]
