"""The checked-in description is the served one, and the description keeps its promises:
no FastAPI 422, an error body with its codes for every error status, 503 with
`Retry-After` where a transaction is opened, `Location` and links on creates, and a 405
that names every method of the path."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coursegate.app import create_app
from coursegate.config import Settings
from coursegate.kit import contract

CHECKED_IN = Path(__file__).parent.parent.parent / "docs" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(_env_file=None, var_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.database.dispose()


@pytest.fixture
async def served(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_a_405_names_every_method_of_its_path(
    http: httpx.AsyncClient, served: dict[str, Any]
) -> None:
    for path, operations in served["paths"].items():
        concrete = path.replace("{", "").replace("}", "")
        declared = {m.upper() for m in operations}
        for method in METHODS:
            if method.upper() in declared:
                continue
            refused = await http.request(method.upper(), concrete)
            assert refused.status_code == 405, (method, path, refused.text)
            assert refused.json() == {"error": "METHOD_NOT_ALLOWED"}
            allowed = {m.strip() for m in refused.headers["allow"].split(",")}
            assert allowed - {"HEAD"} == declared, (method, path, allowed)


def test_the_checked_in_description_is_the_served_one(served: dict[str, Any]) -> None:
    assert CHECKED_IN.read_text() == contract.render(served), (
        "docs/openapi.json differs from what the server serves: run `make openapi` "
        "(coursegate openapi --output docs/openapi.json) and commit the file"
    )


def test_every_error_status_names_its_codes(served: dict[str, Any]) -> None:
    schemas = served["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for path, operations in served["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses or path.startswith("/v1/inbound/{"), (method, path)
            for status, response in responses.items():
                if int(status) < 400 or path == "/readyz":
                    continue
                ref = response["content"]["application/json"]["schema"]["$ref"]
                codes = schemas[ref.rsplit("/", 1)[-1]]["properties"]["error"]["enum"]
                assert codes, (method, path, status)
            if operation.get("security"):
                assert "401" in responses, (method, path)
                assert "503" in responses, (method, path)
                assert "Retry-After" in responses["503"]["headers"]


def test_creates_answer_location_and_link_to_what_they_made(served: dict[str, Any]) -> None:
    linked = 0
    for path, operations in served["paths"].items():
        create = operations.get("post", {}).get("responses", {}).get("201")
        if create is None or not any(p.startswith(path + "/{") for p in served["paths"]):
            continue
        assert "Location" in create["headers"], path
        assert create["links"], path
        linked += 1
    assert linked >= 8


def test_the_metrics_content_type_is_described(served: dict[str, Any]) -> None:
    content = served["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain; version=1.0.0; charset=utf-8"]
    assert json.dumps(served).count('"application/json"') > 100
