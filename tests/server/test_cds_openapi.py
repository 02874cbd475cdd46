"""The OpenAPI document matches the CDS routes as they answer (issue 13): the bearer scheme,
and every status it lists for a hook call (400/401/404/412/413) produced for real, each with
an OperationOutcome body; a chunked body past the cap is refused (live uvicorn)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from msc_screen.server.app import create_app
from msc_screen.server.cds import routes

from .conftest import sign

pytestmark = pytest.mark.xdist_group("cds-fhir")
PV = "/cds-services/msc-screen-patient-view"


@pytest.fixture
def client(make_settings, clients_file):
    with TestClient(create_app(make_settings(cds_clients=clients_file))) as c:
        yield c


def auth(path: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + sign("http://testserver" + path)}


def test_document_declares_the_bearer_scheme_and_the_statuses(client):
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["cdsClientJwt"] == {**schemes["cdsClientJwt"], "type": "http",
                                       "scheme": "bearer", "bearerFormat": "JWT"}
    call = doc["paths"]["/cds-services/{service_id}"]["post"]
    assert call["security"] == [{"cdsClientJwt": []}]
    assert {"200", "400", "401", "404", "412", "413"} <= set(call["responses"])
    for code in ("400", "401", "404", "412", "413"):
        schema = call["responses"][code]["content"]["application/fhir+json"]["schema"]
        assert schema["properties"]["resourceType"] == {"const": "OperationOutcome"}
    assert "401" in doc["paths"]["/cds-services"]["get"]["responses"]
    assert "401" in doc["paths"]["/cds-services/{service_id}/feedback"]["post"]["responses"]


def _outcome(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"]
    return str(body["issue"][0].get("diagnostics", ""))


def test_each_documented_status_happens_with_an_operation_outcome(client):
    ok = {"hook": "patient-view", "hookInstance": "h", "context": {"patientId": "p"}}
    assert "Authorization" in _outcome(client.post(PV, json=ok), 401)
    assert "patientId" in _outcome(client.post(PV, json={**ok, "context": {}}, headers=auth(PV)),
                                   400)
    assert "fhirServer" in _outcome(client.post(PV, json={**ok, "fhirServer": "http://x/fhir"},
                                                headers=auth(PV)), 400)
    assert "no prefetch" in _outcome(client.post(PV, json=ok, headers=auth(PV)), 412)
    nope = "/cds-services/nope"
    _outcome(client.post(nope, json=ok, headers=auth(nope)), 404)
    big = b"{" + b" " * 10 + b"}"
    r = client.post(PV, content=big, headers={**auth(PV), "Content-Length": str(2**30)})
    _outcome(r, 413)


@pytest.fixture
def small_cap(monkeypatch) -> Iterator[None]:
    monkeypatch.setattr(routes, "MAX_BODY", 64 * 1024)
    yield


def test_chunked_body_over_the_cap_is_413(make_settings, clients_file, live_app, small_cap):
    app = create_app(make_settings(cds_clients=clients_file))

    def chunks() -> Iterator[bytes]:
        yield b'{"hook": "patient-view", "hookInstance": "h", "context": {}, "x": "'
        for _ in range(64):
            yield b"a" * 4096
        yield b'"}'

    with live_app(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        r = http.post(PV, content=chunks(),
                      headers={"Authorization": "Bearer " + sign(srv.url + PV),
                               "Content-Type": "application/json"})
    assert "too large" in _outcome(r, 413)
