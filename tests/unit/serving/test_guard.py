"""The request guard on its own: a tiny ASGI app behind it, driven with raw ASGI messages."""

from __future__ import annotations

import asyncio
import json

from serving.guard import RequestGuard

BODY = json.dumps({"customer_id": "C1", "context": {"timestamp": "2026-06-30T08:15:00", "channel": "app"}}).encode()


def _app(delay: float = 0.0):
    async def app(scope, receive, send):
        message = await receive()
        await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["body"]})
    return app


def _call(guard, body: bytes = BODY, content_type: str = "application/json", path: str = "/recommend", method: str = "POST"):
    scope = {"type": "http", "path": path, "method": method, "headers": [(b"content-type", content_type.encode())]}
    chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)] or [b""]
    sent = []

    async def receive():
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


def test_a_valid_body_reaches_the_app_whole():
    assert _call(RequestGuard(_app())) == (200, BODY)


def test_not_json_is_415_and_too_big_is_413():
    status, body = _call(RequestGuard(_app()), content_type="multipart/form-data")
    assert status == 415 and json.loads(body)["error"]["code"] == "unsupported_media_type"
    status, body = _call(RequestGuard(_app(), max_body=2000), body=b'{"customer_id": "' + b"x" * 5000 + b'"}')
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"


def test_an_invalid_body_is_400_naming_the_field_and_an_empty_one_too():
    status, body = _call(RequestGuard(_app()), body=BODY.replace(b'"C1"', b"42"))
    assert status == 400 and json.loads(body)["error"]["field"] == "customer_id"
    status, body = _call(RequestGuard(_app()), body=b"")
    assert status == 400 and json.loads(body)["error"]["code"] == "body_required"


def test_a_request_past_the_time_budget_gets_503_but_a_reload_has_none():
    status, body = _call(RequestGuard(_app(delay=0.5), budget_s=0.05))
    assert status == 503 and json.loads(body)["error"]["code"] == "time_budget_exceeded"
    assert _call(RequestGuard(_app(delay=0.2), budget_s=0.05), body=b"{}", path="/admin/reload")[0] == 200


def test_other_paths_and_methods_pass_untouched():
    assert _call(RequestGuard(_app()), body=b"anything", content_type="text/plain", path="/healthz", method="GET")[0] == 200
    assert _call(RequestGuard(_app()), body=b"x", content_type="text/plain", method="GET") == (200, b"x")
