"""The offer API's front door, as a pure ASGI middleware (behind the API-key check).

For the POST operations of serving.openapi it answers, before BentoML sees the request:
415 unless the body is application/json, 413 past the body size cap, 400 (one documented error
shape, naming the field) unless the body validates against the operation's request model. It also
serves the published OpenAPI document at /docs.json. Refusals are logged in one INFO line without
the request's values; only server errors get a traceback (BentoML's own handler).
"""

from __future__ import annotations

import asyncio
import json
import os

from pydantic import ValidationError

from serving.errors import ApiError, from_validation_error, log_client_error
from serving.openapi import OPERATIONS, openapi_document


def served_channels() -> tuple[str, ...] | None:
    """The offer channels of the program in the served validated folder (listed), else None (any name)."""
    from pipelines.io import read_validated_program
    from serving.loading import Settings

    try:
        program, _ = read_validated_program(Settings.from_env().validated_dir)
    except Exception:  # noqa: BLE001 - the spec is served even when the data folder cannot be read yet
        return None
    return program.allowed("offer_channels")

MAX_BODY_ENV = "REWARDS_MAX_BODY_BYTES"
BUDGET_ENV = "REWARDS_REQUEST_TIMEOUT_S"
DEFAULT_BUDGET_S = 10.0  # a batch of 1,000 distinct ids takes ~0.2 s: this only ever stops a runaway
UNBUDGETED = frozenset({"/admin/reload"})  # a reload waits for every worker (its own timeout)
DEFAULT_MAX_BODY = 256 * 1024  # 1,000 ids of 64 characters plus 200 offer ids is ~85 KB
SPEC_PATHS = frozenset({"/docs.json", "/schema.json"})


def max_body_from_env(env: dict | None = None) -> int:
    raw = (env if env is not None else os.environ).get(MAX_BODY_ENV, "").strip()
    try:
        value = int(raw) if raw else DEFAULT_MAX_BODY
    except ValueError:
        value = DEFAULT_MAX_BODY
    return value if value > 0 else DEFAULT_MAX_BODY


def budget_from_env(env: dict | None = None) -> float:
    raw = (env if env is not None else os.environ).get(BUDGET_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_BUDGET_S
    except ValueError:
        value = DEFAULT_BUDGET_S
    return value if value > 0 else DEFAULT_BUDGET_S


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class RequestGuard:
    """415 / 413 / 400 for the API's POST operations; the published spec at /docs.json."""

    def __init__(self, app, max_body: int | None = None, budget_s: float | None = None):
        self.app = app
        self.max_body = max_body_from_env() if max_body is None else max_body
        self.budget_s = budget_from_env() if budget_s is None else budget_s
        self._spec: bytes | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if path in SPEC_PATHS and method in ("GET", "HEAD"):
            await self._send_spec(send)
            return
        operation = OPERATIONS.get(path)
        if operation is None or method != "POST":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._checked_body(scope, receive, operation[0])
        except ApiError as err:
            log_client_error(path, err)
            await err.send(send)
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if path in UNBUDGETED:
            await self.app(scope, replay, send)
            return
        started = False

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(self.budget_s):  # no extra task per request, unlike wait_for
                await self.app(scope, replay, tracked_send)
        except TimeoutError:
            if started:
                raise
            err = ApiError(503, "time_budget_exceeded",
                           f"the request took longer than the server's time budget of {self.budget_s:g} s ({BUDGET_ENV}); "
                           "try again, or send fewer ids")
            log_client_error(path, err)
            await err.send(send)

    async def _checked_body(self, scope, receive, model) -> bytes:
        media = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if media != "application/json":
            raise ApiError(415, "unsupported_media_type",
                           f"the body must be JSON sent with Content-Type: application/json, got {media or 'no Content-Type'!r}",
                           None)
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise ApiError(413, "body_too_large", f"the body is {int(length):,} bytes; at most {self.max_body:,} are accepted")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ApiError(400, "disconnected", "the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise ApiError(413, "body_too_large", f"the body is over {self.max_body:,} bytes, the most accepted")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if not body.strip():
            raise ApiError(400, "body_required", "a JSON object body is required (send {} when there is nothing to say)")
        try:
            model.model_validate_json(body)
        except ValidationError as err:
            raise from_validation_error(err) from None
        return body

    async def _send_spec(self, send) -> None:
        if self._spec is None:
            self._spec = json.dumps(openapi_document(served_channels())).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(self._spec)).encode())]})
        await send({"type": "http.response.body", "body": self._spec})
