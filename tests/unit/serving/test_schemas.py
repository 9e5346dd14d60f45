"""Request validation at the API boundary: strict types, id lengths, timestamps in range and in store-local time."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from serving.errors import from_validation_error
from serving.schemas import RecommendBatchRequest, RecommendRequest, ReloadRequest

CTX = {"timestamp": "2026-06-30T08:15:00", "channel": "app"}


def _error(model, body: str):
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(body)
    return from_validation_error(info.value)


@pytest.mark.parametrize("k", ['"3"', "true", "3.5", "null"])
def test_k_must_be_a_json_integer(k):
    err = _error(RecommendRequest, f'{{"customer_id": "C1", "k": {k}, "context": {{"timestamp": "2026-06-30T08:15:00", "channel": "app"}}}}')
    assert err.status == 400 and err.field == "k" and "whole number" in err.message


def test_an_integral_float_is_an_integer_as_in_json_schema():
    req = RecommendRequest.model_validate_json('{"customer_id": "C1", "k": 2.0, "context": {"timestamp": "2026-06-30T08:15:00", "channel": "app"}}')
    assert req.k == 2 and isinstance(req.k, int)


@pytest.mark.parametrize("when", ["3000-01-01T00:00:00", "1500-01-01T00:00:00", "2262-04-12T00:00:00", "0001-01-01T00:00:00"])
def test_timestamps_outside_the_sane_range_name_the_field(when):
    err = _error(RecommendRequest, f'{{"customer_id": "C1", "context": {{"timestamp": "{when}", "channel": "app"}}}}')
    assert err.field == "context.timestamp"
    assert "between 1970-01-01 and 2199-12-31" in err.message


def test_a_numeric_timestamp_is_refused():
    err = _error(RecommendRequest, '{"customer_id": "C1", "context": {"timestamp": 1782800000, "channel": "app"}}')
    assert err.field == "context.timestamp" and "ISO 8601" in err.message


def test_without_a_store_timezone_an_offset_is_converted_to_utc(monkeypatch):
    monkeypatch.delenv("REWARDS_STORE_TIMEZONE", raising=False)
    req = RecommendRequest.model_validate_json(
        '{"customer_id": "C1", "context": {"timestamp": "2026-06-30T08:15:00+09:00", "channel": "app"}}')
    assert req.context.timestamp == datetime(2026, 6, 29, 23, 15)  # never 08:15 with the offset dropped


def test_a_bad_store_timezone_is_named(monkeypatch):
    from serving.schemas import StoreTimezoneError, store_timezone

    monkeypatch.setenv("REWARDS_STORE_TIMEZONE", "Mars/Olympus")
    with pytest.raises(StoreTimezoneError, match="REWARDS_STORE_TIMEZONE must be an IANA time zone"):
        store_timezone()


def test_an_offset_is_converted_to_store_local_time(monkeypatch):
    monkeypatch.setenv("REWARDS_STORE_TIMEZONE", "Europe/Berlin")
    for given in ("2026-06-30T15:15:00+09:00", "2026-06-30T06:15:00Z", "2026-06-30T08:15:00"):
        req = RecommendRequest.model_validate_json(
            f'{{"customer_id": "C1", "context": {{"timestamp": "{given}", "channel": "app"}}}}')
        assert req.context.timestamp == datetime(2026, 6, 30, 8, 15)  # CEST is UTC+2
        assert req.context.timestamp.tzinfo is None


@pytest.mark.parametrize(("ids", "field"), [(["C1", ""], "customer_ids[1]"), (["x" * 65], "customer_ids[0]"), ([7], "customer_ids[0]")])
def test_batch_ids_have_the_same_limits_as_recommend(ids, field):
    import json

    err = _error(RecommendBatchRequest, json.dumps({"customer_ids": ids, "context": CTX}))
    assert err.field == field


def test_force_must_be_a_boolean():
    assert ReloadRequest.model_validate_json('{"force": true}').force is True
    assert _error(ReloadRequest, '{"force": 1}').field == "force"


def test_the_error_message_never_repeats_the_values_sent():
    err = _error(RecommendRequest, '{"customer_id": "C1", "secret-field": "SECRET-VALUE", "context": {"timestamp": "yesterday", "channel": "app"}}')
    assert "SECRET-VALUE" not in err.message and "yesterday" not in err.message
    assert "secret-field" in err.message and "context.timestamp" in err.message
