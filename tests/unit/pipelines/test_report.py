"""The report page: every chart is an inline SVG plot, the counts add up, nothing is loaded from outside."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from models.measurement import Economics, gain_curve, measure_campaign
from models.uplift import qini_curve, uplift_metrics
from pipelines.report import render


def _population(n: int, holdout: int, effect: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    level = rng.gamma(3.0, 15.0, n)
    held = np.zeros(n, dtype=bool)
    held[rng.choice(n, holdout, replace=False)] = True
    treated = ~held & (rng.random(n) < 0.8)
    pre, revenue = rng.poisson(level).astype(float), rng.poisson(level) + effect * treated
    return pd.DataFrame({"held_out": held, "treated": treated, "revenue": revenue, "pre_revenue": pre,
                         "margin": 0.6 * revenue, "pre_margin": 0.6 * pre, "visits": revenue / 6, "pre_visits": pre / 6,
                         "redemptions": (treated & (rng.random(n) < 0.3)).astype(int),
                         "reward_cost": np.where(treated, 0.5, 0.0), "tier": rng.choice(["gold", "silver"], n),
                         "offer_id": np.where(treated, rng.choice(["O001", "O002"], n), None)})


def _measurement() -> dict:
    frame = _population(3000, 300, effect=6.0, seed=4)
    m = measure_campaign(frame, Economics(currency="EUR"), window_days=30, members=3000, n_boot=300)
    treated = frame[frame["treated"]]
    m.update({"campaign": "spring", "as_of": "2026-06-30", "send_at": "2026-06-30 09:00:00", "window_days": 30,
              "window": ["2026-06-30 09:00:00", "2026-07-30 09:00:00"],
              "economics": {"gross_margin_rate": 0.65, "currency": "EUR", "operating_cost_per_month": 1500.0},
              "model_versions": {"offer": "3", "churn": "2"}, "method": "bootstrap",
              "gain_curve": gain_curve(treated["revenue"].to_numpy(), treated["redemptions"].to_numpy()),
              "list_summary": {"customers_considered": 3000, "customers_with_offers": len(treated),
                               "excluded_by_reason": {"control_group": 300, "no_offer": 3000 - 300 - len(treated)}}})
    return m


def _evaluation() -> dict:
    rng = np.random.default_rng(0)
    effect = rng.normal(1, 2, 2000)
    t = rng.random(2000) < 0.5
    y = rng.normal(0, 3, 2000) + effect * t
    scores = {"uplift": effect, "response": rng.random(2000)}
    return {"metrics": {k: uplift_metrics(y, t, s) for k, s in scores.items()},
            "curves": {k: qini_curve(y, t, s).to_dict(orient="list") for k, s in scores.items()}}


def test_the_page_has_four_svg_charts_the_headline_and_counts_that_add_up():
    page = render(_measurement(), _evaluation())
    for chart in ("chart-incremental", "chart-groups", "chart-gain", "chart-roi-offers"):
        section = page[page.index(f"id='{chart}'"):]
        assert "<svg" in section[: section.index("</section>")], chart
    assert "Qini curves, out-of-time validation" in page and "uplift model (Qini" in page
    assert "3,000 (adds up)" in page
    assert re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) is None and "<script" not in page


def test_without_an_uplift_evaluation_the_page_shows_the_list_gain_curve_only():
    page = render(_measurement())
    assert "Cumulative gain of the list" in page and "Qini curves" not in page.replace("Cumulative gain and Qini curves", "")
