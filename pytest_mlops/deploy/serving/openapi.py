"""The OpenAPI 3.0 document of the server: its paths and the OIP request/response schemas."""

from __future__ import annotations

from typing import Any

from .responses import JSON
from .tensors import OIP_TO_NUMPY

__all__ = ["openapi_document"]

_ERROR = {
    "description": "error",
    "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_OK = {"description": "ok", "content": {JSON: {"schema": {"type": "object"}}}}
_NAME = {"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"}}


def _get(summary: str, *codes: int) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _OK}
    responses.update({str(c): _ERROR for c in codes})
    return {"get": {"summary": summary, "responses": responses}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _infer() -> dict[str, Any]:
    predictions = {
        "description": "predictions",
        "content": {JSON: {"schema": _ref("InferenceResponse")}},
    }
    return {
        "parameters": [_NAME],
        "post": {
            "summary": "inference",
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": _ref("InferenceRequest")}},
            },
            "responses": {"200": predictions, **{str(c): _ERROR for c in (400, 404, 413, 503)}},
        },
    }


def _paths() -> dict[str, Any]:
    metrics = {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "/v2/health/live": _get("liveness"),
        "/v2/health/ready": _get("readiness", 503),
        "/v2": _get("server metadata"),
        "/v2/models/{model_name}": {"parameters": [_NAME], **_get("model metadata", 404)},
        "/v2/models/{model_name}/ready": {
            "parameters": [_NAME],
            **_get("model readiness", 404, 503),
        },
        "/v2/models/{model_name}/infer": _infer(),
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": metrics}}},
    }


def _schemas() -> dict[str, Any]:
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": sorted(OIP_TO_NUMPY)},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    tensors = {"type": "array", "items": _ref("Tensor")}
    request = {
        "id": {"type": "string"},
        "inputs": tensors,
        "outputs": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
        "parameters": {"type": "object"},
    }
    response = {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "outputs": tensors,
    }
    return {
        "Tensor": tensor,
        "InferenceRequest": {"type": "object", "required": ["inputs"], "properties": request},
        "InferenceResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": response,
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
    }


def openapi_document(name: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the server (paths and the OIP request/response schemas)."""
    return {
        "openapi": "3.0.3",
        "info": {"title": f"pytest-mlops serving: {name}", "version": "2"},
        "paths": _paths(),
        "components": {"schemas": _schemas()},
    }
