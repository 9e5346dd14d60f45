"""REWARDS_CAMPAIGN_JSON: the offer API set up for a campaign, with clear errors for a bad setting."""

from __future__ import annotations

import pandas as pd
import pytest

from serving.loading import ServingLoadError, campaign_from_env


def test_a_campaign_setting_gives_the_campaign_of_the_list():
    campaign = campaign_from_env('{"name": "spring", "send_at": "2026-06-30T09:00", "channel": "app", "k": 3, '
                                 '"holdout": 0.1, "offers": ["O1", "O2"]}')
    assert campaign.name == "spring" and campaign.send_at == pd.Timestamp("2026-06-30 09:00")
    assert (campaign.channel, campaign.k, campaign.holdout_fraction, campaign.offer_ids) == ("app", 3, 0.1, ("O1", "O2"))
    assert campaign.policy().holdout_salt == "campaign:spring"
    assert campaign_from_env("  ") is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"send_at": "2026-06-30"}', "KeyError: 'name'|'name'"),
        ('{"name": "x", "send_at": "2026-06-30", "colour": 1}', r"unknown keys \['colour'\]"),
        ("[1, 2]", "expected a JSON object, got list"),
        ("{not json", "REWARDS_CAMPAIGN_JSON must be a JSON object with name and send_at"),
    ],
)
def test_a_bad_campaign_setting_names_the_variable_and_the_problem(raw, message):
    with pytest.raises(ServingLoadError, match=message):
        campaign_from_env(raw)


def test_the_policy_setting_chooses_the_objective_or_leaves_it_to_the_default(monkeypatch):
    from serving.loading import POLICY_ENV, Settings

    monkeypatch.setenv(POLICY_ENV, '{"objective": "uplift", "holdout_fraction": 0.1}')
    settings = Settings.from_env()
    assert settings.objective == "uplift" and settings.policy.objective == "uplift"
    monkeypatch.setenv(POLICY_ENV, '{"holdout_fraction": 0.1}')
    assert Settings.from_env().objective is None  # resolved at load: pipelines.train_uplift.default_objective
    monkeypatch.setenv(POLICY_ENV, '{"objective": "profit"}')
    with pytest.raises(ServingLoadError, match=r"REWARDS_POLICY_JSON must be a JSON object of PolicyConfig fields.*"
                                               r"objective must be one of \['expected_value', 'uplift'\]"):
        Settings.from_env()
