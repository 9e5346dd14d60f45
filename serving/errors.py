"""The offer API's one error shape, ``{"error": {"code", "message", "field"}}``, for every 4xx and 503."""

from __future__ import annotations

import json
import logging

logger = logging.getLogger("rewards.serving")


class ApiError(Exception):
    """A request the API refuses: an HTTP status, a machine-readable code, a message and the field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}

    def encoded(self) -> bytes:
        return json.dumps(self.body()).encode()

    def response(self):
        """The error as a starlette response (what an API method returns instead of raising)."""
        from starlette.responses import Response

        return Response(self.encoded(), status_code=self.status, media_type="application/json")

    async def send(self, send, extra_headers: list[tuple[bytes, bytes]] = ()) -> None:
        """Answer with this error on a raw ASGI ``send``."""
        body = self.encoded()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   *extra_headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def field_path(loc: tuple) -> str | None:
    """A pydantic error location as a dotted path: ('context', 'timestamp') -> context.timestamp, ids[3]."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def from_validation_error(err) -> ApiError:
    """A pydantic ValidationError as one 400 naming every field at fault (never the values sent)."""
    problems = err.errors(include_input=False, include_context=False, include_url=False)
    parts = []
    for p in problems[:5]:
        msg = str(p["msg"]).removeprefix("Value error, ")
        where = field_path(tuple(p["loc"]))
        parts.append(f"{where}: {msg}" if where else msg)
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    first = problems[0] if problems else {"type": "invalid", "loc": ()}
    return ApiError(400, str(first["type"]), "; ".join(parts) + more, field_path(tuple(first["loc"])))


def log_client_error(path: str, err: ApiError) -> None:
    """One line per refused request: status, path, code and field, never the request's values."""
    logger.info("%d %s refused: %s (field %s)", err.status, path, err.code, err.field or "-")
