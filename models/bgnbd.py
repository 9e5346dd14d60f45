"""BG/NBD (Fader, Hardie & Lee 2005): a maximum-likelihood fit with scipy, scikit-learn style.

Each customer buys at Poisson rate lambda ~ Gamma(r, alpha) while alive and drops out after any
purchase with probability p ~ Beta(a, b). Inputs per customer, in one time unit (days here):
``frequency`` x (repeat purchases), ``recency`` t_x (first to last purchase) and ``T`` (first purchase
to the end of observation). The fit maximises the paper's log-likelihood (its equation 6) over
log-parameters inside bounds with the analytic gradient, trying further starting points when one does
not converge, and never raises for data that merely fits badly: it keeps the best finite result and
says so in ``converged_``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

PARAM_NAMES: tuple[str, ...] = ("r", "alpha", "a", "b")
# Bounds on log-parameters: wide enough for any sane shop, narrow enough to keep the special functions finite.
LOG_BOUNDS: tuple[tuple[float, float], ...] = ((-9.0, 6.0), (-9.0, 12.0), (-9.0, 6.0), (-9.0, 8.0))


class BGNBDInputError(ValueError):
    """frequency / recency / T are not usable BG/NBD inputs."""


@dataclass(frozen=True)
class RFM:
    """Validated BG/NBD inputs as float arrays of one length."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray


def check_rfm(frequency, recency, T, who: str = "BetaGeoModel") -> RFM:
    """frequency >= 0, 0 <= recency <= T, T > 0, all finite, equal lengths; a clear error otherwise."""
    x, t_x, t = (np.asarray(v, dtype=float).ravel() for v in (frequency, recency, T))
    if not (len(x) == len(t_x) == len(t)):
        raise BGNBDInputError(f"{who}: frequency, recency and T must have one value per customer; "
                              f"got lengths {len(x)}, {len(t_x)}, {len(t)}")
    if len(x) == 0:
        raise BGNBDInputError(f"{who}: no customers given")
    for name, v in (("frequency", x), ("recency", t_x), ("T", t)):
        if not np.isfinite(v).all():
            raise BGNBDInputError(f"{who}: {name} must be finite; found {int((~np.isfinite(v)).sum())} NaN/inf values")
    problems = []
    if (x < 0).any():
        problems.append(f"frequency < 0 in {int((x < 0).sum())} rows")
    if (t <= 0).any():
        problems.append(f"T <= 0 in {int((t <= 0).sum())} rows")
    if ((t_x < 0) | (t_x > t + 1e-9)).any():
        problems.append(f"recency outside [0, T] in {int(((t_x < 0) | (t_x > t + 1e-9)).sum())} rows")
    if problems:
        raise BGNBDInputError(f"{who}: expected frequency >= 0 and 0 <= recency <= T with T > 0; found "
                              + ", ".join(problems) + "; compute them on purchase days before the cutoff")
    return RFM(x, np.minimum(t_x, t), t)


def log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (FHL 2005, eq. 6) at ``params`` = (r, alpha, a, b)."""
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    repeat = x > 0
    a3 = np.full_like(x, -np.inf)
    xr = x[repeat]
    a3[repeat] = betaln(a + 1, b + xr - 1) - betaln(a, b) - (r + xr) * np.log(alpha + t_x[repeat])
    return a1 + np.logaddexp(a2, a3)


def log_likelihood_gradient(params, x, t_x, T) -> np.ndarray:
    """d log-likelihood / d (r, alpha, a, b), per customer: shape (4, n)."""
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    repeat = x > 0
    a2 = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    a3 = np.full_like(x, -np.inf)
    a3[repeat] = betaln(a + 1, b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    top = np.maximum(a2, a3)
    w2, w3 = np.exp(a2 - top), np.exp(a3 - top)
    total = w2 + w3
    w2, w3 = w2 / total, w3 / total  # the weights of the two terms of the likelihood
    t_x_safe = np.where(repeat, t_x, T)
    d_abx, d_ab = digamma(a + b + x), digamma(a + b)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w2 * np.log(alpha + T) - w3 * np.log(alpha + t_x_safe)
    d_alpha = r / alpha - (r + x) * (w2 / (alpha + T) + w3 / (alpha + t_x_safe))
    d_a = w2 * (d_ab - d_abx) + w3 * (digamma(a + 1) - digamma(a) + d_ab - d_abx)
    base_b = digamma(a + b) - digamma(b) - d_abx
    d_b = w2 * (digamma(b + x) + base_b) + w3 * (digamma(np.where(repeat, b + x - 1, b)) + base_b)
    return np.vstack([d_r, d_alpha, d_a, d_b])


def _death_odds(params, x, t_x, T) -> np.ndarray:
    """a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x) for repeat buyers, 0 otherwise."""
    r, alpha, a, b = params
    x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
    out = np.zeros(x.shape, dtype=float)
    rep = x > 0
    with np.errstate(over="ignore"):
        out[rep] = np.exp(np.log(a) - np.log(b + x[rep] - 1)
                          + (r + x[rep]) * (np.log(alpha + T[rep]) - np.log(alpha + t_x[rep])))
    return out


def probability_alive(params, x, t_x, T) -> np.ndarray:
    """P(still alive at T | x, t_x, T)."""
    return 1.0 / (1.0 + _death_odds(params, x, t_x, T))


def conditional_expected_purchases(params, t: float, x, t_x, T) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10).

    Written with Euler's transformation, ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)
    = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose first two arguments do not grow with x:
    finite for heavy buyers where the textbook form overflows.
    """
    r, alpha, a, b = params
    a = _off_one(a)
    t, x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, x, t_x, T)))
    z = t / (alpha + T + t)
    c = a + b + x - 1
    tail = (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, c, z)
    numer = c / (a - 1) * (1 - tail)
    return numer / (1.0 + _death_odds(params, x, t_x, T))


def probability_no_purchase(params, t: float, x, t_x, T) -> np.ndarray:
    """P(no purchase in (T, T + t] | x, t_x, T): gone already, or alive and silent for t.

    Alive, the rate's posterior is Gamma(r + x, alpha + T), so silence for t has probability
    ((alpha + T) / (alpha + T + t))^(r + x).
    """
    r, alpha, a, b = params
    t, x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, x, t_x, T)))
    alive = probability_alive(params, x, t_x, T)
    silent = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
    return 1.0 - alive * (1.0 - silent)


def expected_purchases(params, t) -> np.ndarray:
    """E[X(t)]: purchases in (0, t] of a customer just acquired (FHL 2005, eq. 9)."""
    r, alpha, a, b = params
    a = _off_one(a)
    t = np.asarray(t, dtype=float)
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def _off_one(a: float) -> float:
    """a moved off 1 by a hair: the expectations divide by a - 1 (their limit at 1 is finite)."""
    return a if abs(a - 1.0) > 1e-7 else 1.0 + 1e-7


def _starts(rfm: RFM) -> list[np.ndarray]:
    """Log-parameter starting points: a moment-based guess for the purchase rate, several dropout shapes."""
    rate = max(float(np.mean(rfm.x)) / max(float(np.mean(rfm.T)), 1e-9), 1e-6)
    out = []
    for r, a, b in ((1.0, 1.0, 1.0), (0.3, 0.8, 2.5), (2.0, 0.5, 5.0)):
        out.append(np.log([r, r / rate, a, b]))
    return out


class BetaGeoModel(BaseEstimator):
    """BG/NBD by maximum likelihood. ``penalizer_coef`` adds an L2 penalty on the parameters (as lifetimes
    did), which keeps a and b finite when few customers ever repeat.

    Learned: ``params_`` (dict r, alpha, a, b), ``log_likelihood_`` (mean per customer), ``converged_``,
    ``fit_message_``.
    """

    def __init__(self, penalizer_coef: float = 0.0, max_iter: int = 300):
        self.penalizer_coef = penalizer_coef
        self.max_iter = max_iter

    def fit(self, frequency, recency, T, sample_weight=None) -> "BetaGeoModel":
        name = type(self).__name__
        if self.penalizer_coef < 0:
            raise ValueError(f"{name}: penalizer_coef must be >= 0, got {self.penalizer_coef}")
        rfm = check_rfm(frequency, recency, T, name)
        # Time is rescaled so the longest T is 10 units (as lifetimes did): the penalty then means the
        # same for days or weeks, and the optimiser sees well-conditioned numbers. Only alpha has a unit.
        scale = 10.0 / float(rfm.T.max())
        keys = np.column_stack([rfm.x, rfm.t_x * scale, rfm.T * scale])
        weight = np.ones(len(keys)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        # Identical (x, t_x, T) rows share one likelihood term: fewer special-function calls.
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        w = np.bincount(inverse.ravel(), weights=weight, minlength=len(uniq))
        x, t_x, t = uniq[:, 0], uniq[:, 1], uniq[:, 2]
        total = w.sum()

        def objective(theta):
            params = np.exp(theta)
            value = -(w @ log_likelihood(params, x, t_x, t)) / total + self.penalizer_coef * float(params @ params)
            grad = -(log_likelihood_gradient(params, x, t_x, t) @ w) / total + 2 * self.penalizer_coef * params
            if not (np.isfinite(value) and np.isfinite(grad).all()):
                return 1e12, np.zeros(4)
            return value, grad * params  # chain rule: d/d log(p) = p d/dp

        scaled = RFM(rfm.x, rfm.t_x * scale, rfm.T * scale)
        best = None
        for start in _starts(scaled):
            res = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=LOG_BOUNDS,
                           options={"maxiter": self.max_iter})
            if np.isfinite(res.fun) and res.fun < 1e12 and (best is None or res.fun < best.fun):
                best = res
            if best is not None and best.success:  # later starts are fallbacks for a start that fails
                break
        if best is None:  # no start gave a finite likelihood: keep the moment guess, and say so
            theta, converged, message = _starts(scaled)[0], False, "no start reached a finite likelihood"
        else:
            theta, converged, message = best.x, bool(best.success), str(best.message)
        r, alpha, a, b = np.exp(theta)
        self.params_ = {"r": float(r), "alpha": float(alpha / scale), "a": float(a), "b": float(b)}
        ll = log_likelihood(self._params, rfm.x, rfm.t_x, rfm.T)
        self.log_likelihood_ = float(weight @ ll / weight.sum())
        self.converged_ = converged
        self.fit_message_ = message
        return self

    @property
    def _params(self) -> tuple[float, float, float, float]:
        check_is_fitted(self, "params_")
        return tuple(self.params_[k] for k in PARAM_NAMES)

    def conditional_expected_purchases(self, t: float, frequency, recency, T) -> np.ndarray:
        """Expected purchases in the next ``t`` time units for each customer's history."""
        rfm = check_rfm(frequency, recency, T, type(self).__name__)
        return conditional_expected_purchases(self._params, t, rfm.x, rfm.t_x, rfm.T)

    def probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(alive now) for each customer's history."""
        rfm = check_rfm(frequency, recency, T, type(self).__name__)
        return probability_alive(self._params, rfm.x, rfm.t_x, rfm.T)

    def probability_no_purchase(self, t: float, frequency, recency, T) -> np.ndarray:
        """P(no purchase in the next ``t`` time units) for each customer's history."""
        rfm = check_rfm(frequency, recency, T, type(self).__name__)
        return probability_no_purchase(self._params, t, rfm.x, rfm.t_x, rfm.T)

    def expected_purchases(self, t) -> np.ndarray:
        """E[X(t)] for a newly acquired customer."""
        return expected_purchases(self._params, t)
