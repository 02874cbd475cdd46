"""The REST API over real HTTP (uvicorn on a free port): screening, rules, health, metrics."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import orjson
import pytest

from msc_screen import screen
from msc_screen.server.app import create_app

from .conftest import NOW

pytestmark = pytest.mark.xdist_group("api-live")


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Any:
    from .conftest import LiveServer, settings_for

    app = create_app(settings_for(tmp_path_factory.mktemp("api")))
    with LiveServer(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def bundle(synthea_patient) -> bytes:
    return gzip.decompress(synthea_patient["path"].read_bytes())


def test_openapi_is_published(api):
    doc = api.get("/openapi.json").json()
    for path in ("/screen", "/rules", "/rules/{rule_id}", "/healthz", "/metrics",
                 "/cds-services", "/cds-services/{service_id}",
                 "/cds-services/{service_id}/feedback"):
        assert path in doc["paths"], path


def test_healthz(api):
    body = api.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["ruleset"]["version"] and body["policy"]["name"]


def test_screen_bundle_matches_engine(api, bundle, synthea_patient):
    r = api.post("/screen", params={"as_of": NOW.date().isoformat()}, content=bundle,
                 headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200
    want = screen(synthea_patient["path"], as_of=NOW.date())
    assert r.content == want.to_json()


def test_screen_parameters_with_as_of(api, synthea_patient):
    resources = synthea_patient["resources"]
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "as-of", "valueDate": "2019-12-31"},
        *({"name": "resource", "resource": r} for r in resources)]}
    r = api.post("/screen", json=params)
    assert r.status_code == 200
    assert r.json()["as_of"] == "2019-12-31"
    assert r.json() == orjson.loads(screen(resources, as_of="2019-12-31").to_json())


def test_screen_several_patients_gives_a_list(api):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "a", "gender": "female",
                      "birthDate": "1980-01-01"}},
        {"resource": {"resourceType": "Patient", "id": "b", "gender": "male",
                      "birthDate": "1950-01-01"}}]}
    r = api.post("/screen", json=bundle, params={"as_of": "2019-12-31"})
    assert r.status_code == 200
    assert [a["patient"]["id"] for a in r.json()] == ["a", "b"]


def test_screen_format_fhir(api, bundle, synthea_patient):
    r = api.post("/screen", params={"as_of": "2019-12-31", "format": "fhir"}, content=bundle)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "Bundle"
    want = screen(synthea_patient["path"], as_of=NOW.date())
    shown = [f for f in want.findings if f.status in ("present", "unknown")]
    issues = [e for e in body["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
    assert len(issues) == len(shown)
    # and one OperationOutcome for the kinds of data the record did not hold (allergies ...)
    rest = [e["resource"]["resourceType"] for e in body["entry"] if e not in issues]
    assert rest == ["OperationOutcome"]


def test_screen_with_named_policy(api, bundle):
    doc = api.get("/rules").json()
    r = api.post("/screen", params={"as_of": "2019-12-31", "policy": doc["policy"]["name"]},
                 content=bundle)
    assert r.status_code == 200


@pytest.mark.parametrize("body, params, status, needle", [
    (b"", {}, 400, "empty"),
    (b"{not json", {}, 400, "JSON"),
    (b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Condition",'
     b'"id":"c1","subject":7}}]}', {}, 400, "subject"),
    (b'{"resourceType":"Bundle","type":"collection","entry":[]}', {}, 422, "no patient"),
    (b'{"resourceType":"Patient","id":"p"}', {"as_of": "31/12/2019"}, 400, "as_of"),
    (b'{"resourceType":"Patient","id":"p"}', {"policy": "../../etc/passwd"}, 400, "policy"),
    (b'{"resourceType":"Parameters","parameter":[{"name":"as-of","valueDate":"2019-01-01"}]}',
     {}, 400, "no resource"),
    (b'{"resourceType":"Parameters","parameter":[{"name":"as-of","valueInteger":3},'
     b'{"name":"r","resource":{"resourceType":"Patient","id":"p"}}]}', {}, 400, "as-of"),
])
def test_bad_input_is_an_operation_outcome(api, body, params, status, needle):
    r = api.post("/screen", content=body, params=params)
    assert r.status_code == status
    oo = r.json()
    assert oo["resourceType"] == "OperationOutcome"
    assert needle in " ".join(i["diagnostics"] for i in oo["issue"])


def test_bad_resource_is_named_in_expression(api):
    body = (b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Condition",'
            b'"id":"c1","subject":7}}]}')
    issue = api.post("/screen", content=body).json()["issue"][0]
    assert "Condition/c1" in issue["diagnostics"]
    assert "subject" in issue["expression"][0]


def test_rules_json_and_html(api):
    doc = api.get("/rules").json()
    ids = [r["id"] for r in doc["rules"]]
    assert "pregnancy" in ids
    one = api.get("/rules/pregnancy").json()
    assert one["severity"] and one["citations"] and one["criteria"]["present_if"]
    assert one["source_attributes"]["developer"]
    page = api.get("/rules/pregnancy", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"].startswith("text/html")
    assert one["title"] in page.text and "eligible" not in page.text.lower()
    index = api.get("/rules", headers={"Accept": "text/html"})
    assert 'href="' in index.text and "/rules/pregnancy" in index.text
    assert api.get("/rules/not-a-rule").status_code == 404


def test_metrics_use_route_templates_not_ids(api):
    api.get("/rules/pregnancy")
    api.get("/rules/not-a-rule")
    text = api.get("/metrics").text
    assert 'route="/rules/{rule_id}"' in text
    assert "not-a-rule" not in text
    assert "msc_screen_http_request_duration_seconds_bucket" in text


def test_oversized_body_is_refused_before_reading(api):
    import socket

    url = api.base_url
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(b"POST /screen HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1099511627776\r\n\r\n{}")
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head[:80]


# ---------------------------------------------------------------- data coverage (issue 12)

ALONE = {"resourceType": "Patient", "id": "alone", "gender": "male", "birthDate": "1970-01-01"}


def _post(api, resources, **params):
    body = {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in resources]}
    return api.post("/screen", params={"as_of": "2026-01-01", **params},
                    content=orjson.dumps(body), headers={"Content-Type": "application/fhir+json"})


def test_patient_only_record_is_needs_information(api):
    r = _post(api, [ALONE])
    assert r.status_code == 200
    a = r.json()
    assert a["decision"] == "needs-information"
    assert a["coverage"]["conditions"] == {"status": "not-provided", "count": 0}
    data = next(f for f in a["findings"] if f["rule"] == "data-coverage")
    assert data["status"] == "present"


def test_complete_declares_kinds_and_unknown_kind_is_400(api):
    a = _post(api, [ALONE], complete="all").json()
    assert a["decision"] == "no-contraindication-found"
    assert a["coverage"]["conditions"]["status"] == "provided"
    r = _post(api, [ALONE], complete="conditions,labs")
    assert r.status_code == 400
    issue = r.json()["issue"][0]
    assert "unknown kind of data 'labs'" in issue["diagnostics"]
    assert issue["expression"] == ["complete"]


def test_named_patient_leaves_other_patients_out(api):
    other = {"resourceType": "Patient", "id": "other", "gender": "female",
             "birthDate": "1990-01-01"}
    preg = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/other"},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "72892002"}]},
            "onsetDateTime": "2025-12-01"}
    r = _post(api, [ALONE, other, preg], patient="alone", complete="all")
    assert r.status_code == 200
    a = r.json()  # one object: only the named patient is screened
    assert a["patient"]["id"] == "alone"
    assert a["decision"] == "no-contraindication-found"
    assert any("Patient/other (2 resources)" in w for w in a["warnings"]), a["warnings"]
    assert not any(e["reference"] == "Condition/c1" for f in a["findings"]
                   for e in f["evidence"])
    missing = _post(api, [other], patient="alone")
    assert missing.status_code == 422
    assert "no record for patient 'alone'" in missing.json()["issue"][0]["diagnostics"]


def test_fhir_format_carries_coverage_as_an_operation_outcome(api):
    from fhir.resources.R4B.bundle import Bundle

    r = _post(api, [ALONE], format="fhir")
    bundle = r.json()
    Bundle.model_validate(bundle)
    outcomes = [e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "OperationOutcome"]
    assert len(outcomes) == 1
    texts = [i["details"]["text"] for i in outcomes[0]["issue"]]
    assert "conditions: not provided" in texts
    assert all(i["code"] == "incomplete" for i in outcomes[0]["issue"])
