"""The OpenAPI description made exact: every status a route can answer, with its error codes.

A route declares only the domain errors its own logic raises (`responses=raises(...)`);
what every route of a kind can answer is added here once, from what the route is: a
route with input can be refused with 400, one behind an API key with 401, one with a
path id with 404, one with a body with 413, one that opens a transaction with 503.
Declaring by hand what the framework already knows is how a description drifts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from coursegate.kit.errors import (
    DatabaseUnavailable,
    DomainError,
    InvalidJson,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    ValidationFailed,
)

CODES_KEY = "x-error-codes"
"""Where `raises` leaves a route's codes for `describe` to turn into a body schema."""

DESCRIPTIONS = {
    400: "The request is malformed (SPEC §0).",
    401: "No API key, a bad one or a revoked one; for partners, any signature failure.",
    404: "No such object for this tenant (another tenant's object is not found either).",
    409: "A conflict with the current state.",
    413: "The body is larger than the route's limit.",
    422: "A well-formed request the domain refuses.",
    429: "Too many attempts.",
    502: "A partner system failed; nothing was kept.",
    503: "The database cannot be reached; retry after `Retry-After` seconds.",
}


def raises(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: the domain errors its logic raises, grouped by status."""
    by_status: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        entry = by_status.setdefault(error.status, {CODES_KEY: []})
        if error.code not in entry[CODES_KEY]:
            entry[CODES_KEY].append(error.code)
    return by_status


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for dependency in dependant.dependencies:
        yield from _dependants(dependency)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


@dataclass(frozen=True)
class Dependencies:
    """The request dependencies that say what a route is: behind an API key, in a transaction."""

    authenticated: frozenset[Callable[..., Any]]
    transactional: frozenset[Callable[..., Any]]


def calls_any(route: Any, dependencies: frozenset[Callable[..., Any]]) -> bool:
    return not dependencies.isdisjoint(_calls(route.dependant))


def common_errors(route: Any, known: Dependencies) -> list[type[DomainError]]:
    """What a route can answer because of what it is, whatever its logic."""
    query = any(d.query_params for d in _dependants(route.dependant))
    path = any(d.path_params for d in _dependants(route.dependant))
    has_body = route.body_field is not None
    authenticated = calls_any(route, known.authenticated)
    found: list[type[DomainError]] = []
    if has_body:
        found.append(InvalidJson)
    if has_body or query:
        found.append(ValidationFailed)
    if authenticated:
        found.append(Unauthorized)
    if authenticated and path:
        # A path id names an object of the caller's tenant; a malformed one names none.
        found.append(NotFound)
    if has_body:
        found.append(PayloadTooLarge)
    if calls_any(route, known.transactional):
        found.append(DatabaseUnavailable)
    return found


def error_schema(codes: list[str]) -> dict[str, Any]:
    """SPEC §0's error body, its `error` narrowed to the codes this status carries here."""
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "enum": sorted(codes)},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object"}},
        },
        "additionalProperties": False,
    }


def _error_response(status: int, codes: list[str], components: dict[str, Any]) -> dict[str, Any]:
    """The response, its body a shared schema named after the codes it allows."""
    name = "Error_" + "_".join(codes)
    components.setdefault(name, error_schema(codes))
    response: dict[str, Any] = {
        "description": DESCRIPTIONS.get(status, "An error."),
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
    }
    if status == DatabaseUnavailable.status:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return response


SECURITY_SCHEME = "apiKey"


def _complete_operation(
    route: Any, operation: dict[str, Any], known: Dependencies, components: dict[str, Any]
) -> None:
    responses: dict[str, Any] = operation["responses"]
    codes: dict[int, list[str]] = {}
    for error in common_errors(route, known):
        codes.setdefault(error.status, []).append(error.code)
    if calls_any(route, known.authenticated):
        operation["security"] = [{SECURITY_SCHEME: []}]
    for status, response in list(responses.items()):
        declared = response.pop(CODES_KEY, None)
        if declared is not None:
            codes.setdefault(int(status), []).extend(declared)
            del responses[status]
    if "422" in responses and 422 not in codes:
        del responses["422"]  # FastAPI's default; validation is 400 here (SPEC §0)
    for code_status, status_codes in sorted(codes.items()):
        responses[str(code_status)] = _error_response(
            code_status, sorted(set(status_codes)), components
        )
    operation["responses"] = dict(sorted(responses.items()))


def _read_path(target: str, source: str) -> str | None:
    """The parameter a read of `target` names beyond `source`: `/x/{id}` under `/x`."""
    if not target.startswith(source + "/{") or target.count("/") != source.count("/") + 1:
        return None
    return target[len(source) + 2 : -1]


def _add_links(paths: dict[str, Any], components: dict[str, Any]) -> None:
    """Link each create to the operations on what it created, for tools that chain calls."""
    for source, operations in paths.items():
        create = operations.get("post")
        if create is None or "201" not in create["responses"]:
            continue
        content = create["responses"]["201"].get("content", {}).get("application/json")
        if content is None:
            continue
        schema = content["schema"]
        for target, target_operations in paths.items():
            name = _read_path(target, source)
            if name is None:
                continue
            body_key = "id" if _has_property(components, schema, "id") else name
            parameters = {
                p: f"$request.path.{p}" for p in _path_params(source) if f"{{{p}}}" in target
            }
            parameters[name] = f"$response.body#/{body_key}"
            links = create["responses"]["201"].setdefault("links", {})
            for method, operation in sorted(target_operations.items()):
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                    "description": f"{method.upper()} the object this call created",
                }
            create["responses"]["201"].setdefault("headers", {})["Location"] = {
                "description": "The URL of the object this call created.",
                "required": True,
                "schema": {"type": "string"},
            }


def _has_property(components: dict[str, Any], schema: dict[str, Any], name: str) -> bool:
    ref = schema.get("$ref", "")
    component = components.get(ref.rsplit("/", 1)[-1], schema)
    return name in component.get("properties", {})


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def describe(app: FastAPI, known: Dependencies) -> dict[str, Any]:
    """The application's exact description (what `/openapi.json` serves)."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    routes = {
        (route.path_format, method.lower()): route
        for route in routing.iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    }
    schema.setdefault("components", {})["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <api key>`; a key belongs to one tenant.",
        }
    }
    components: dict[str, Any] = schema["components"].setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            _complete_operation(routes[(path, method)], operation, known, components)
    _add_links(schema.get("paths", {}), components)
    return schema


def install(app: FastAPI, known: Dependencies) -> None:
    """Serve `describe(app)` as the application's OpenAPI, built once on first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(app, known)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def render(schema: dict[str, Any]) -> str:
    """The checked-in form: sorted keys, two-space indent, one final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
