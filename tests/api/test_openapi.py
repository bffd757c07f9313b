"""OpenAPI is complete: every route lists every status it can answer, each error status with
the one error body, and the schema lists exactly the routes the app serves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from becomingone.api import ApiSettings, ServedCluster, create_app

#: What each route can answer (checked against the code paths in the route tests).
EXPECTED = {
    ("get", "/api/v1/node"): {200, 403, 503},
    ("get", "/api/v1/node/config"): {200, 403, 503},
    ("get", "/api/v1/node/state"): {200, 403, 503},
    ("get", "/api/v1/coherence/now"): {200, 403, 404, 503},
    ("get", "/api/v1/coherence/history"): {200, 403, 422, 503},
    ("post", "/api/v1/signals"): {202, 400, 401, 403, 405, 413, 422, 429, 503},
    ("get", "/api/v1/witness/verify"): {200, 403, 503},
    ("get", "/api/v1/witness/records"): {200, 403, 422, 503},
    ("get", "/api/v1/witness/records/{seq}"): {200, 403, 404, 422, 503},
    ("get", "/api/v1/resonance"): {200, 403, 422, 503},
}

#: What each route of a cluster app can answer.
CLUSTER_EXPECTED = {
    ("get", "/api/v1/cluster"): {200, 403, 503},
    ("get", "/api/v1/cluster/members/{name}"): {200, 403, 404, 422, 503},
    ("get", "/api/v1/cluster/history"): {200, 403, 422, 503},
}

#: The glyph routes of a cluster of full cells.
GLYPH_EXPECTED = {
    ("get", "/api/v1/cluster/glyphs"): {200, 403, 503},
    ("post", "/api/v1/cluster/glyphs"): {
        201,
        202,
        401,
        403,
        404,
        405,
        409,
        413,
        422,
        429,
        503,
    },
    ("delete", "/api/v1/cluster/glyphs/{glyph_id}"): {
        200,
        202,
        401,
        403,
        404,
        405,
        409,
        413,
        422,
        429,
        503,
    },
}

#: The roles and proposal routes of a `cluster --roles`.
PARTIFACT_EXPECTED = {
    ("get", "/api/v1/cluster/roles"): {200, 403, 503},
    ("get", "/api/v1/cluster/proposals"): {200, 403, 422, 503},
    ("get", "/api/v1/cluster/proposals/{proposal_id}"): {200, 403, 404, 422, 503},
    ("post", "/api/v1/cluster/proposals"): {
        201,
        400,
        401,
        403,
        404,
        405,
        409,
        413,
        422,
        429,
        503,
    },
    ("post", "/api/v1/cluster/proposals/{proposal_id}/votes"): {
        200,
        400,
        401,
        403,
        404,
        405,
        409,
        413,
        422,
        429,
        503,
    },
}


class Stub:
    """Enough of a served cell to build the document (only the channel count is read)."""

    def __init__(self, channels: int) -> None:
        self.channels = channels


def schema(channels: int = 1) -> dict[str, Any]:
    """The app's OpenAPI document for a cell with ``channels`` channels."""
    return create_app(Stub(channels), ApiSettings()).openapi()  # type: ignore[arg-type]


def test_every_route_documents_its_statuses() -> None:
    """The document has exactly the expected operations, each with exactly its statuses."""
    found = {
        (method, path): {int(s) for s in op["responses"]}
        for path, ops in schema()["paths"].items()
        for method, op in ops.items()
    }
    assert found == EXPECTED


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], set[int]]:
    """(method, path) → documented statuses of an OpenAPI document."""
    return {
        (method, path): {int(s) for s in op["responses"]}
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }


def cluster_schema() -> dict[str, Any]:
    """The OpenAPI document of an app serving a cluster only."""
    served = ServedCluster("local", "mesh", threshold=0.95)
    return create_app(None, ApiSettings(), cluster=served).openapi()


def test_a_cluster_app_documents_its_routes_only() -> None:
    """A cluster app has exactly the cluster operations with their statuses, and a cell and
    cluster app has both sets."""
    assert operations(cluster_schema()) == CLUSTER_EXPECTED
    both = create_app(
        Stub(1),  # type: ignore[arg-type]
        ApiSettings(),
        cluster=ServedCluster("local", "mesh", threshold=0.95),
    )
    assert operations(both.openapi()) == EXPECTED | CLUSTER_EXPECTED
    stub = Stub(1)
    stub.kinds = ["probe"]  # type: ignore[attr-defined]
    desk = ServedCluster("local", "mesh", threshold=0.95, desk=stub)  # type: ignore[arg-type]
    glyphs = create_app(None, ApiSettings(), cluster=desk).openapi()
    assert operations(glyphs) == CLUSTER_EXPECTED | GLYPH_EXPECTED
    test_every_error_status_uses_the_error_body(lambda: glyphs)
    roles = ServedCluster(
        "local",
        "mesh",
        threshold=0.95,
        desk=stub,  # type: ignore[arg-type]
        partifacts=Stub(1),  # type: ignore[arg-type]
    )
    both_desks = create_app(None, ApiSettings(), cluster=roles).openapi()
    assert operations(both_desks) == CLUSTER_EXPECTED | GLYPH_EXPECTED | PARTIFACT_EXPECTED
    test_every_error_status_uses_the_error_body(lambda: both_desks)
    accepted = both_desks["paths"]["/api/v1/cluster/glyphs"]["post"]["responses"]["202"]
    assert accepted["content"]["application/json"]["schema"]["$ref"].endswith("/ProposalPublic")


@pytest.mark.parametrize("make", [schema, cluster_schema], ids=["cell", "cluster"])
def test_every_error_status_uses_the_error_body(make: Callable[[], dict[str, Any]]) -> None:
    """Every documented status >= 400 has the ErrorBody schema {"error": {code, message,
    field}} (FastAPI's own validation body is not used anywhere)."""
    doc = make()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ErrorBody", (method, path, status)
    detail = doc["components"]["schemas"]["ErrorDetail"]
    assert set(detail["properties"]) == {"code", "message", "field"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_signals_documents_json_and_csv_bodies() -> None:
    """POST /signals documents both request content types; the JSON schema says exactly what
    the cell takes: 1 to 100 000 samples, each a number or a row of `channels` numbers."""
    body = schema()["paths"]["/api/v1/signals"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/json", "text/csv"}
    samples = body["content"]["application/json"]["schema"]["properties"]["samples"]
    assert (samples["minItems"], samples["maxItems"]) == (1, 100_000)
    assert samples["items"] == {"type": "number"}
    two = schema(2)["paths"]["/api/v1/signals"]["post"]["requestBody"]["content"]
    row = two["application/json"]["schema"]["properties"]["samples"]["items"]
    assert (row["type"], row["minItems"], row["maxItems"]) == ("array", 2, 2)
