"""BG/NBD: the fit recovers known parameters from simulated data; closed-form properties hold."""

from __future__ import annotations

import time

import numpy as np
import pytest

from models.bgnbd import (
    BetaGeoModel,
    BGNBDInputError,
    conditional_expected_purchases,
    expected_purchases,
    log_likelihood,
    probability_alive,
    probability_no_purchase,
)

# Fader, Hardie & Lee (2005), CDNOW sample, time in weeks.
CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_PARAMS = tuple(CDNOW.values())


def simulate(params: dict, n: int, seed: int, T_low: float = 27.0, T_high: float = 39.0):
    """Customers drawn from the BG/NBD generative story: (frequency, recency, T)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    T = rng.uniform(T_low, T_high, n)
    x, t_x, now = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        nxt = now[idx] + rng.exponential(1.0 / lam[idx])
        bought = nxt <= T[idx]
        b_idx = idx[bought]
        x[b_idx] += 1
        t_x[b_idx] = nxt[bought]
        now[b_idx] = nxt[bought]
        active[idx[~bought]] = False
        active[b_idx[rng.random(len(b_idx)) < p[b_idx]]] = False
    return x, t_x, T


@pytest.fixture(scope="module")
def cdnow_sample():
    return simulate(CDNOW, n=20_000, seed=7)


def test_fit_recovers_the_cdnow_parameters_from_simulated_data(cdnow_sample):
    started = time.perf_counter()
    model = BetaGeoModel().fit(*cdnow_sample)
    elapsed = time.perf_counter() - started
    assert model.converged_, model.fit_message_
    for name, want in CDNOW.items():
        assert model.params_[name] == pytest.approx(want, rel=0.25), name
    assert elapsed < 10.0


def test_the_fitted_likelihood_beats_the_true_parameters_only_slightly(cdnow_sample):
    model = BetaGeoModel().fit(*cdnow_sample)
    at_truth = float(np.mean(log_likelihood(CDNOW_PARAMS, *cdnow_sample)))
    assert at_truth <= model.log_likelihood_ + 1e-9
    assert model.log_likelihood_ - at_truth < 1e-3


def test_predictions_match_lifetimes_reference_values():
    # lifetimes 0.11.3 BetaGeoFitter with params_ set to the CDNOW estimates (computed once, kept here).
    x, t_x, T = np.array([0.0, 2.0, 7.0, 26.0]), np.array([0.0, 30.43, 35.0, 30.86]), np.array([38.86, 38.86, 38.0, 31.0])
    got = conditional_expected_purchases(CDNOW_PARAMS, 39.0, x, t_x, T)
    np.testing.assert_allclose(got, LIFETIMES_EXPECTED_39, rtol=1e-7)
    np.testing.assert_allclose(probability_alive(CDNOW_PARAMS, x, t_x, T), LIFETIMES_ALIVE, rtol=1e-6)


LIFETIMES_EXPECTED_39 = [0.19509805, 1.22602817, 4.55618528, 20.74972614]  # 1.226: the paper's own example
LIFETIMES_ALIVE = [1.0, 0.72657857, 0.86199107, 0.96891565]


def test_a_customer_without_repeat_purchases_is_alive_and_a_new_one_expects_the_unconditional_count():
    assert probability_alive(CDNOW_PARAMS, [0.0], [0.0], [30.0])[0] == 1.0
    t = np.array([1.0, 10.0, 52.0])
    new = conditional_expected_purchases(CDNOW_PARAMS, t, np.zeros(3), np.zeros(3), np.full(3, 1e-12))
    np.testing.assert_allclose(new, expected_purchases(CDNOW_PARAMS, t), rtol=1e-6)


def test_expected_purchases_grow_with_the_horizon_and_fall_with_silence():
    longer = conditional_expected_purchases(CDNOW_PARAMS, np.array([10.0, 20.0, 40.0]), 3.0, 20.0, 30.0)
    assert np.all(np.diff(longer) > 0)
    quiet = conditional_expected_purchases(CDNOW_PARAMS, 10.0, np.full(3, 3.0), np.array([29.0, 20.0, 5.0]), 30.0)
    assert np.all(np.diff(quiet) < 0)


def test_heavy_buyers_stay_finite():
    got = conditional_expected_purchases(CDNOW_PARAMS, 60.0, np.array([300.0, 2000.0]), np.array([364.0, 364.0]),
                                         np.array([365.0, 365.0]))
    assert np.isfinite(got).all() and (got > 0).all()


def test_data_nobody_repeats_in_fits_without_raising():
    model = BetaGeoModel(penalizer_coef=0.01).fit(np.zeros(50), np.zeros(50), np.linspace(10, 100, 50))
    assert all(np.isfinite(v) for v in model.params_.values())
    assert np.isfinite(model.conditional_expected_purchases(30.0, np.zeros(2), np.zeros(2), [5.0, 50.0])).all()


def test_bad_inputs_are_named():
    with pytest.raises(BGNBDInputError, match=r"recency outside \[0, T\] in 1 rows"):
        BetaGeoModel().fit([1.0, 2.0], [5.0, 50.0], [10.0, 20.0])
    with pytest.raises(BGNBDInputError, match="frequency must be finite"):
        BetaGeoModel().fit([np.nan], [0.0], [1.0])
    with pytest.raises(ValueError, match="penalizer_coef must be >= 0"):
        BetaGeoModel(penalizer_coef=-1).fit([1.0], [0.5], [1.0])


def test_probability_of_no_purchase_matches_simulation_and_its_limits():
    # One history, many simulated futures: alive with P(alive), then Poisson with the posterior rate.
    params, (x, t_x, T), t = CDNOW_PARAMS, (2.0, 30.43, 38.86), 20.0
    got = float(probability_no_purchase(params, t, x, t_x, T))
    rng = np.random.default_rng(3)
    n = 400_000
    alive = rng.random(n) < probability_alive(params, [x], [t_x], [T])[0]
    lam = rng.gamma(params[0] + x, 1.0 / (params[1] + T), n)
    silent = rng.random(n) < np.exp(-lam * t)
    assert got == pytest.approx(float(np.mean(~alive | silent)), abs=0.003)
    assert probability_no_purchase(params, 1e-9, x, t_x, T) == pytest.approx(1.0)
    assert probability_no_purchase(params, 1e9, x, t_x, T) == pytest.approx(1 - probability_alive(params, x, t_x, T),
                                                                            abs=1e-3)


def test_the_analytic_gradient_matches_finite_differences(cdnow_sample):
    from models.bgnbd import log_likelihood_gradient

    x, t_x, T = (v[:500] for v in cdnow_sample)
    got = log_likelihood_gradient(CDNOW_PARAMS, x, t_x, T).sum(axis=1)
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-6 * CDNOW_PARAMS[i]
        up = log_likelihood(np.add(CDNOW_PARAMS, step), x, t_x, T).sum()
        down = log_likelihood(np.subtract(CDNOW_PARAMS, step), x, t_x, T).sum()
        assert got[i] == pytest.approx((up - down) / (2 * step[i]), rel=1e-4)
