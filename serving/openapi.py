"""The published OpenAPI document of the offer API, built from serving.schemas (the one source of truth).

BentoML's generated spec documents endpoints this server does not serve (/metrics), error bodies it
does not send and no security scheme; this one is what the server really does, and the fuzz test
(tests/integration/test_service_fuzz.py) holds it to that.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel

from serving import schemas

REF = "#/components/schemas/{model}"

# route -> (request model, response model, summary, error statuses besides 400/401/413/415)
OPERATIONS: dict[str, tuple[type[BaseModel], type[BaseModel], str, tuple[int, ...]]] = {
    "/recommend": (schemas.RecommendRequest, schemas.RecommendResponse,
                   "The top-k offers for one customer in a context, with reasons; logged in the decision log.", (404, 503)),
    "/recommend_batch": (schemas.RecommendBatchRequest, schemas.BatchResponse,
                         "The top-k offers for up to 1,000 customers in the same context (a repeated id is decided once).",
                         (404, 503)),
    "/churn_risk": (schemas.ChurnRequest, schemas.ChurnResponse,
                    "Predicted churn risk of up to 1,000 customers (null for customers without a profile).", (503,)),
    "/status": (schemas.EmptyRequest, schemas.StatusResponse,
                "What is serving, in every worker: generation, model versions, profile snapshot, sizes, last reload error.", (503,)),
    "/admin/reload": (schemas.ReloadRequest, schemas.ReloadResponse,
                      "Load models and profiles anew in every worker, check them against the serving state, then switch "
                      "all workers to the new generation, or none (409, the previous state keeps serving).", (409,)),
}
PROBES = {
    "/healthz": "Liveness: 200 while the process serves HTTP.",
    "/livez": "Liveness: 200 while the process serves HTTP.",
    "/readyz": "Readiness: 200 once models and profiles are loaded, 503 before.",
}
STATUS_TEXT = {
    400: "The body is not valid JSON or a field is invalid; error.field names it.",
    401: "Missing or invalid API key in header X-API-Key.",
    404: "Unknown offer ids were asked for; the message names them.",
    409: "The reload was refused (sanity checks, load failure in a worker, or a reload already running); "
         "the previous generation keeps serving in every worker.",
    413: "The request body is larger than the server's cap ($REWARDS_MAX_BODY_BYTES).",
    415: "Only application/json bodies are accepted.",
    503: "Models and profiles are not loaded yet (see /status), or the request ran past the server's time budget "
         "($REWARDS_REQUEST_TIMEOUT_S, code time_budget_exceeded).",
}


def _schemas() -> dict:
    models = {schemas.ErrorResponse, *(m for op in OPERATIONS.values() for m in op[:2])}
    out: dict = {}
    for model in models:
        mode = "validation" if model.__name__.endswith("Request") else "serialization"
        schema = model.model_json_schema(ref_template=REF, mode=mode)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _error(status: int) -> dict:
    return {"description": STATUS_TEXT[status],
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}}}


@lru_cache(maxsize=4)
def openapi_document(channels: tuple[str, ...] | None = None) -> dict:
    """The OpenAPI 3.1 document served at /docs.json; ``channels``: the served program's offer channels
    (``context.channel`` then lists them; another channel is answered 400)."""
    paths: dict = {}
    for route, (request, response, summary, extra) in OPERATIONS.items():
        statuses = sorted({400, 401, 413, 415, *extra})
        paths[route] = {"post": {
            "operationId": route.strip("/").replace("/", "_"),
            "summary": summary,
            "security": [{"ApiKey": []}],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": {"$ref": REF.format(model=request.__name__)}}}},
            "responses": {
                "200": {"description": "OK",
                        "content": {"application/json": {"schema": {"$ref": REF.format(model=response.__name__)}}}},
                **{str(s): _error(s) for s in statuses},
            },
        }}
    for route, summary in PROBES.items():
        responses = {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}
        if route == "/readyz":
            responses["503"] = {"description": STATUS_TEXT[503], "content": {"text/plain": {"schema": {"type": "string"}}}}
        paths[route] = {"get": {"operationId": route.strip("/"), "summary": summary, "security": [],
                                "responses": responses}}
    components = _schemas()
    if channels:
        components["RequestContext"]["properties"]["channel"]["enum"] = list(channels)
    return {
        "openapi": "3.1.0",
        "info": {"title": "offer-api", "version": "1",
                 "description": "Next-best offers, churn risk, status and hot reload of the reward recommender. "
                                "Every error answer is {\"error\": {\"code\", \"message\", \"field\"}}."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "security": [{"ApiKey": []}],
    }
