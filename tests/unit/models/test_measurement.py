"""Campaign measurement: the estimator on hand-built data, the too-small-to-tell verdict, ROI, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.measurement import (
    Economics,
    Estimate,
    MeasurementError,
    cuped,
    effect_per_treated,
    measure_campaign,
    operating_cost_share,
    roi,
)


def _population(n: int, holdout: int, effect: float, treated_share: float = 0.8, seed: int = 0) -> pd.DataFrame:
    """Customers with a persistent spend level (pre and window), a share treated outside the holdout."""
    rng = np.random.default_rng(seed)
    level = rng.gamma(3.0, 15.0, n)
    held = np.zeros(n, dtype=bool)
    held[rng.choice(n, holdout, replace=False)] = True
    treated = ~held & (rng.random(n) < treated_share)
    pre = rng.poisson(level).astype(float)
    revenue = rng.poisson(level).astype(float) + effect * treated
    return pd.DataFrame({"held_out": held, "treated": treated, "revenue": revenue, "pre_revenue": pre,
                         "margin": 0.6 * revenue, "pre_margin": 0.6 * pre, "visits": revenue / 6, "pre_visits": pre / 6,
                         "redemptions": (treated & (rng.random(n) < 0.3)).astype(int),
                         "reward_cost": np.where(treated, 0.5, 0.0), "tier": rng.choice(["gold", "silver"], n),
                         "churn_band": "low", "offer_id": np.where(treated, "O001", None)})


def test_effect_per_treated_recovers_a_planted_effect_diluted_by_untreated_customers():
    frame = _population(6000, 600, effect=5.0, treated_share=0.5)
    est = effect_per_treated(frame["revenue"], frame["held_out"], frame["treated"], frame["pre_revenue"], n_boot=1000)
    # Outside the holdout only half are treated: the raw difference is ~2.5, per treated customer ~5.
    assert est.low < 5.0 < est.high
    assert est.low > 0 and est.p_value < 0.01
    assert abs(est.value - 5.0) < 1.5


def test_cuped_keeps_the_mean_and_shrinks_the_variance_of_a_persistent_outcome():
    frame = _population(4000, 400, effect=0.0)
    adjusted = cuped(frame["revenue"].to_numpy(), frame["pre_revenue"].to_numpy())
    assert adjusted.mean() == pytest.approx(frame["revenue"].mean())
    assert adjusted.var() < 0.5 * frame["revenue"].var()


def test_a_holdout_of_20_is_too_small_to_tell_and_says_so_in_words():
    frame = _population(3000, 20, effect=3.0, seed=3)
    result = measure_campaign(frame, Economics(), window_days=30, members=5000, n_boot=1000)
    rev = result["incremental_per_treated"]["revenue"]
    assert rev["low"] <= 0 <= rev["high"]
    assert result["too_small_to_tell"] is True
    assert result["verdict"].startswith("Too small to tell: with 20 customers held out")
    assert "includes zero" in result["verdict"]


def test_a_large_holdout_tells_and_the_counts_add_up():
    frame = _population(6000, 1500, effect=8.0, seed=1)
    result = measure_campaign(frame, Economics(currency="GBP"), window_days=30, members=6000, n_boot=1000)
    assert result["too_small_to_tell"] is False
    assert result["verdict"].startswith("The campaign raised revenue by")
    assert "GBP" in result["verdict"]
    assert (result["customers_treated"] + result["customers_held_out"] + result["customers_not_treated_not_held_out"]
            == result["customers_considered"] == 6000)
    assert {r["segment"] for r in result["segments"]["tier"]} == {"gold", "silver"}
    assert result["offers"][0]["offer_id"] == "O001"


def test_roi_is_incremental_margin_less_costs_over_costs():
    margin = Estimate(value=300.0, low=100.0, high=500.0, p_value=0.01)
    r = roi(margin, reward_cost=50.0, operating_cost=50.0)
    assert r.value == pytest.approx((300 - 50 - 50) / 100)
    assert (r.low, r.high) == (pytest.approx(0.0), pytest.approx(4.0))


def test_operating_cost_share_prorates_by_window_and_treated_share_of_members():
    econ = Economics(operating_cost_per_month=3000.0)
    assert operating_cost_share(econ, window_days=15, treated=250, members=1000) == pytest.approx(3000 * 0.5 * 0.25)


def test_no_holdout_and_no_treated_are_errors_naming_the_reason():
    frame = _population(500, 0, effect=1.0)
    with pytest.raises(MeasurementError, match="no customer is held out"):
        effect_per_treated(frame["revenue"], frame["held_out"], frame["treated"])
    frame = _population(500, 50, effect=1.0, treated_share=0.0)
    with pytest.raises(MeasurementError, match="no customer was treated"):
        effect_per_treated(frame["revenue"], frame["held_out"], frame["treated"])


def test_economics_out_of_range_is_an_error_naming_the_key():
    with pytest.raises(MeasurementError, match=r"economics.gross_margin_rate must be in \[0, 1\], got 1.5"):
        Economics(gross_margin_rate=1.5)
    with pytest.raises(MeasurementError, match="economics.operating_cost_per_month must be >= 0"):
        Economics(operating_cost_per_month=-1)


def test_habit_tags_give_one_segment_per_tag_with_customers_in_several():
    frame = _population(3000, 600, effect=4.0, seed=2)
    frame["habit_tags"] = [["morning regular", "app user"] if i % 2 else ["app user"] for i in range(len(frame))]
    result = measure_campaign(frame, Economics(), window_days=30, members=3000, n_boot=400)
    rows = {r["segment"]: r for r in result["segments"]["habit_tag"]}
    assert set(rows) == {"app user", "morning regular"}
    assert rows["app user"]["customers_treated"] == result["customers_treated"]
    assert rows["morning regular"]["customers_held_out"] == int(frame.loc[1::2, "held_out"].sum())
