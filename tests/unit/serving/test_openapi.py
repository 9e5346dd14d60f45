"""The published spec and the service agree: same routes, same request models, every error documented."""

from __future__ import annotations

from serving.openapi import OPERATIONS, openapi_document


def test_the_spec_has_exactly_the_services_routes_with_their_models():
    from serving.service import OfferService

    apis = {api.route: api for api in OfferService.apis.values()}
    assert set(OPERATIONS) == set(apis)
    for route, (request, response, _, _) in OPERATIONS.items():
        assert apis[route].input_spec.model_json_schema()["properties"].keys() == request.model_json_schema().get("properties", {}).keys(), route


def test_every_operation_documents_its_errors_and_security():
    spec = openapi_document()
    for route in OPERATIONS:
        op = spec["paths"][route]["post"]
        assert op["security"] == [{"ApiKey": []}] and op["requestBody"]["required"] is True
        assert {"200", "400", "401", "413", "415"} <= set(op["responses"])
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    error = spec["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"code", "message", "field"}
