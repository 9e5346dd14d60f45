"""The outcome simulation: who gets an effect, that the planted truth matches what happened, and the classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.simulate import (
    EFFECT_CLASSES,
    SimulationError,
    Program,
    class_probabilities,
    continue_program,
    exploration_assignment,
    next_receipt_number,
    read_program,
    simulate_window,
)

START = pd.Timestamp("2026-06-30 09:00")


@pytest.fixture(scope="module")
def program(sample_raw_dir) -> Program:
    return read_program(sample_raw_dir)


@pytest.fixture(scope="module")
def window(program):
    assignment = exploration_assignment(program, START, control_fraction=0.3, seed=5)
    return assignment, simulate_window(program, assignment, START, 30, "app", 11, next_receipt_number(program))


def test_class_probabilities_make_habitual_categories_sure_things():
    from data_contracts.schema import CATEGORIES
    from pipelines.synthetic import PERSONAS

    p = class_probabilities()
    assert np.allclose(p.sum(axis=-1), 1.0)
    commuter, coffee, merch = PERSONAS.index("morning_commuter"), CATEGORIES.index("coffee"), CATEGORIES.index("merchandise")
    assert p[commuter, coffee, 1] > 0.8  # a daily coffee buyer redeems a coffee offer on a coffee bought anyway
    assert p[commuter, merch, 0] > 0.6  # but a mug offer changes what they buy


def test_only_treated_customers_get_offers_redemptions_and_effects(window):
    assignment, w = window
    ev = w.offer_events
    assert len(ev) == len(assignment)
    assert ev.loc[ev["is_control"], "redeemed_at"].isna().all() and ev.loc[ev["is_control"], "viewed_at"].isna().all()
    eff = w.effects
    assert eff.loc[~eff["treated"], "realised_incremental_revenue"].isna().all()
    assert not eff.loc[~eff["treated"], "redeemed"].any()
    assert set(eff["effect_class"]) == set(EFFECT_CLASSES)
    # Lost causes and put-off customers never redeem; put-off ones spend less.
    assert not eff.loc[eff["effect_class"].isin(["lost_cause", "put_off"]), "redeemed"].any()
    put_off = eff.loc[eff["effect_class"] == "put_off", "expected_incremental_revenue"]
    assert put_off.le(0).all() and put_off.mean() < -5  # zero only for members who have stopped visiting
    assert eff.loc[eff["effect_class"] == "lost_cause", "realised_incremental_revenue"].fillna(0).eq(0).all()


def test_realised_effects_agree_with_the_expected_ones_per_class(window):
    _, w = window
    eff = w.effects[w.effects["treated"]]
    by = eff.groupby("effect_class")[["expected_incremental_revenue", "realised_incremental_revenue"]].mean()
    assert by.loc["persuadable"].min() > 2.0
    assert by.loc["sure_thing"].max() < 0.5
    assert np.allclose(by["expected_incremental_revenue"], by["realised_incremental_revenue"], atol=2.0)


def test_new_rows_continue_the_program_with_its_dtypes_and_fresh_receipt_ids(program, window):
    _, w = window
    assert w.transactions["ts"].min() >= START
    assert w.transactions["ts"].max() < START.normalize() + pd.Timedelta(days=30)
    assert not w.transactions.duplicated(["transaction_id", "product_id"]).any()
    longer = continue_program(program, w)
    tx = longer.tables["transactions"]
    assert (tx.dtypes == program.tables["transactions"].dtypes).all()
    assert len(tx) == len(program.tables["transactions"]) + len(w.transactions)
    assert set(w.transactions["transaction_id"]).isdisjoint(set(program.tables["transactions"]["transaction_id"]))


def test_a_folder_without_ground_truth_is_refused(tmp_path):
    with pytest.raises(SimulationError, match="only a program written by `rewards generate`"):
        read_program(tmp_path)


def test_simulate_command_wants_a_list_or_exploration_waves(tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["simulate", "--data", str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "give either --campaign LIST or --explore-waves N" in result.output
