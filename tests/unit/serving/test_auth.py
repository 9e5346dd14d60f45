"""The API-key middleware on its own: a tiny ASGI app behind it, driven with raw ASGI messages."""

from __future__ import annotations

import asyncio
import json

import pytest

from serving.auth import ApiKeyMiddleware, api_keys_from_env, auth_disabled_from_env


async def _inner(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _call(middleware, path="/recommend", key: str | None = None) -> tuple[int, dict | str]:
    headers = [(b"content-type", b"application/json")]
    if key is not None:
        headers.append((b"x-api-key", key.encode()))
    scope = {"type": "http", "path": path, "headers": headers}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    status = sent[0]["status"]
    body = sent[1]["body"]
    return status, (json.loads(body) if status != 200 else body.decode())


def test_a_configured_key_passes_and_a_wrong_or_missing_one_gets_401():
    mw = ApiKeyMiddleware(_inner, keys=["k1", "k2"], disabled=False)
    assert _call(mw, key="k2") == (200, "ok")
    assert _call(mw, key="nope") == (401, {"error": {"code": "unauthorized", "message": "invalid API key in header X-API-Key", "field": None}})
    assert _call(mw) == (401, {"error": {"code": "unauthorized", "message": "missing API key: send header X-API-Key", "field": None}})


def test_health_probes_stay_open_without_a_key():
    mw = ApiKeyMiddleware(_inner, keys=["k1"], disabled=False)
    assert _call(mw, path="/healthz") == (200, "ok")
    assert _call(mw, path="/readyz") == (200, "ok")


def test_no_configured_keys_fails_closed_and_says_how_to_fix_it():
    mw = ApiKeyMiddleware(_inner, keys=[], disabled=False)
    status, body = _call(mw, key="anything")
    assert status == 401
    assert "no API keys configured: set REWARDS_API_KEYS" in body["error"]["message"]
    assert _call(mw, path="/healthz") == (200, "ok")


def test_auth_is_off_only_when_switched_off_explicitly():
    assert _call(ApiKeyMiddleware(_inner, keys=[], disabled=True)) == (200, "ok")
    assert auth_disabled_from_env({"REWARDS_AUTH_DISABLED": "1"}) is True
    assert auth_disabled_from_env({"REWARDS_AUTH_DISABLED": "0"}) is False
    assert auth_disabled_from_env({}) is False


@pytest.mark.parametrize("raw, keys", [("a,b", ("a", "b")), (" a , ,b ", ("a", "b")), ("", ())])
def test_keys_come_from_a_comma_separated_env_var(raw, keys):
    assert api_keys_from_env({"REWARDS_API_KEYS": raw}) == keys
