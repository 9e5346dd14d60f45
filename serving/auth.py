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
# Auth is never off by accident: with no keys every request is refused unless this is set to 1.
AUTH_DISABLED_ENV = "REWARDS_AUTH_DISABLED"
# Probes and docs stay open: orchestrators call them without credentials.
# /metrics (only with REWARDS_ACCESS_LOG=1) needs a key like the API.
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/docs.json", "/", "/schema.json"})


def api_keys_from_env(env: dict | None = None) -> tuple[str, ...]:
    """The keys in ``$REWARDS_API_KEYS`` (comma-separated; blanks ignored)."""
    raw = (env if env is not None else os.environ).get(API_KEYS_ENV, "")
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def auth_disabled_from_env(env: dict | None = None) -> bool:
    """True only when ``$REWARDS_AUTH_DISABLED`` is explicitly 1/true/yes."""
    raw = (env if env is not None else os.environ).get(AUTH_DISABLED_ENV, "")
    return raw.strip().lower() in {"1", "true", "yes"}


class ApiKeyMiddleware:
    """Answer 401 unless the request carries a configured key; open paths pass.

    Fails closed: with no keys configured every protected request is refused, unless auth was
    switched off explicitly (``disabled=True`` or ``$REWARDS_AUTH_DISABLED=1``).
    """

    def __init__(
        self,
        app,
        keys: Iterable[str] | None = None,
        open_paths: Iterable[str] = OPEN_PATHS,
        disabled: bool | None = None,
    ):
        self.app = app
        self.keys = tuple(k.encode() for k in (api_keys_from_env() if keys is None else keys))
        self.open_paths = frozenset(open_paths)
        self.disabled = auth_disabled_from_env() if disabled is None else disabled
        if self.disabled:
            logger.warning("API-key auth is switched off (%s=1): the offer API accepts every request", AUTH_DISABLED_ENV)
        elif not self.keys:
            logger.error(
                "no API keys configured (%s is empty): every request but the health probes is refused with 401",
                API_KEYS_ENV,
            )

    def _allowed(self, scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == API_KEY_HEADER.encode():
                return any(hmac.compare_digest(value, k) for k in self.keys)
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.disabled or scope.get("path", "") in self.open_paths:
            await self.app(scope, receive, send)
            return
        if scope.get("path", "").startswith(("/static_content", "/assets")) or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        has_key = any(name == API_KEY_HEADER.encode() for name, _ in scope.get("headers", ()))
        if not self.keys:
            error = (
                f"the server has no API keys configured: set {API_KEYS_ENV} (or `rewards serve --api-keys`) "
                "and send one in header X-API-Key"
            )
        elif has_key:
            error = "invalid API key in header X-API-Key"
        else:
            error = "missing API key: send header X-API-Key"
        body = json.dumps({"error": {"code": "unauthorized", "message": error, "field": None}}).encode()
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
