"""API-key authentication as a pure ASGI middleware: X-API-Key must match one of the configured keys."""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Iterable

logger = logging.getLogger("rewards.serving")

API_KEY_HEADER = "x-api-key"
API_KEYS_ENV = "REWARDS_API_KEYS"
# Probes and docs stay open: orchestrators call them without credentials.
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/", "/schema.json"})


def api_keys_from_env(env: dict | None = None) -> tuple[str, ...]:
    """The keys in ``$REWARDS_API_KEYS`` (comma-separated; blanks ignored)."""
    raw = (env if env is not None else os.environ).get(API_KEYS_ENV, "")
    return tuple(k.strip() for k in raw.split(",") if k.strip())


class ApiKeyMiddleware:
    """Answer 401 unless the request carries a configured key; open paths pass. No keys: auth is off."""

    def __init__(self, app, keys: Iterable[str] | None = None, open_paths: Iterable[str] = OPEN_PATHS):
        self.app = app
        self.keys = tuple(k.encode() for k in (api_keys_from_env() if keys is None else keys))
        self.open_paths = frozenset(open_paths)
        if not self.keys:
            logger.warning("no API keys configured (%s is empty): the offer API accepts every request", API_KEYS_ENV)

    def _allowed(self, scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == API_KEY_HEADER.encode():
                return any(hmac.compare_digest(value, k) for k in self.keys)
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.keys or scope.get("path", "") in self.open_paths:
            await self.app(scope, receive, send)
            return
        if scope.get("path", "").startswith(("/static_content", "/assets")) or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        has_key = any(name == API_KEY_HEADER.encode() for name, _ in scope.get("headers", ()))
        body = json.dumps(
            {"error": "invalid API key in header X-API-Key" if has_key else "missing API key: send header X-API-Key"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'ApiKey header="X-API-Key"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
