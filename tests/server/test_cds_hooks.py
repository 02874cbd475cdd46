"""CDS Hooks service calls: prefetch present / partial / null, FHIR server fetch with paging,
412 without data, degraded answer on a slow server, request validation. Fetch outcomes as data
coverage, foreign and malformed resources: test_cds_coverage.py."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from msc_screen.server.app import create_app
from msc_screen.server.cds.service import CdsService

from .cards_check import assert_valid_response, card_rules, expected_rules, prefetched_resources
from .conftest import NOW
from .fakefhir import prefetch_for

pytestmark = pytest.mark.xdist_group("cds-fhir")
PV = "/cds-services/msc-screen-patient-view"


@pytest.fixture
def client(make_settings):
    with TestClient(create_app(make_settings(insecure_no_auth=True))) as c:
        yield c


@pytest.fixture
def templates(client) -> dict[str, str]:
    svc: CdsService = client.app.state.cds
    return svc.services["msc-screen-patient-view"].prefetch


@pytest.fixture
def full_prefetch(synthea_patient, templates) -> dict[str, Any]:
    return prefetch_for(synthea_patient["resources"], synthea_patient["id"], templates)


def request(pid: str, **kw: Any) -> dict[str, Any]:
    body = {"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "hook": "patient-view",
            "context": {"userId": "Practitioner/example", "patientId": pid}}
    body.update(kw)
    return body


def test_discovery_matches_spec_shape(client):
    body = client.get("/cds-services").json()
    assert [s["hook"] for s in body["services"]] == ["patient-view", "order-select",
                                                     "order-sign"]
    for s in body["services"]:
        assert s["id"] and s["description"] and s["title"]
        assert s["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert all("{{context.patientId}}" in q for q in s["prefetch"].values())


def test_spec_example_request_is_accepted(client, fake_fhir, synthea_patient):
    """The spec's example call, aimed at the fake FHIR server: its prefetch key is not one of
    ours, so the service fetches what it needs with the given token."""
    pid = synthea_patient["id"]
    body = {
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": fake_fhir.base,
        "hook": "patient-view",
        "fhirAuthorization": {"access_token": "some-opaque-fhir-access-token",
                              "token_type": "Bearer", "expires_in": 300,
                              "scope": "patient/Patient.read patient/Observation.read",
                              "subject": "cds-service4"},
        "context": {"userId": "Practitioner/example", "patientId": pid, "encounterId": "89284"},
        "prefetch": {"patientToGreet": {"resourceType": "Patient", "gender": "male",
                                        "birthDate": "1925-12-23", "id": pid, "active": True}},
        "extension": {"com.example.timestamp": "2017-11-27T22:13:25Z"},
    }
    fake_fhir.app.state.log.clear()
    r = client.post(PV, json=body)
    assert r.status_code == 200
    assert_valid_response(r.json())
    auths = {a for _p, _q, a in fake_fhir.app.state.log}
    assert auths == {"Bearer some-opaque-fhir-access-token"}


def test_full_prefetch_cards_follow_the_engine(client, full_prefetch, synthea_patient):
    r = client.post(PV, json=request(synthea_patient["id"], prefetch=full_prefetch))
    assert r.status_code == 200
    cards = assert_valid_response(r.json())
    want = expected_rules(prefetched_resources(full_prefetch), NOW.date())
    assert want, "fixture patient should have findings"
    assert card_rules(cards) == want
    assert len(cards) == len(want)  # no "incomplete" notice when everything was sent
    worst = cards[0]["indicator"]
    assert worst == max((c["indicator"] for c in cards),
                        key=["info", "warning", "critical"].index)
    assert all(c["source"]["url"].startswith("http://testserver/rules/") for c in cards)


def test_card_source_links_open_the_rule_page(client, full_prefetch, synthea_patient):
    cards = client.post(PV, json=request(synthea_patient["id"],
                                         prefetch=full_prefetch)).json()["cards"]
    url = cards[0]["source"]["url"].replace("http://testserver", "")
    page = client.get(url, headers={"Accept": "text/html"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert client.get(url).json()["id"] == url.rsplit("/", 1)[1]


def test_partial_prefetch_fetches_only_the_rest(client, fake_fhir, full_prefetch,
                                                synthea_patient):
    partial = {k: full_prefetch[k] for k in ("patient", "conditions")}
    fake_fhir.app.state.log.clear()
    r = client.post(PV, json=request(synthea_patient["id"], prefetch=partial,
                                     fhirServer=fake_fhir.base,
                                     fhirAuthorization={"access_token": "tok",
                                                        "token_type": "Bearer"}))
    assert r.status_code == 200
    cards = assert_valid_response(r.json())
    paths = {p for p, _q, _a in fake_fhir.app.state.log}
    assert "/fhir/Condition" not in paths and not any(p.startswith("/fhir/Patient")
                                                       for p in paths)
    assert "/fhir/Observation" in paths and "/fhir/Procedure" in paths
    assert card_rules(cards) == expected_rules(prefetched_resources(full_prefetch), NOW.date())


def test_no_prefetch_fetches_everything_with_paging(client, fake_fhir, full_prefetch,
                                                    synthea_patient):
    fake_fhir.app.state.log.clear()
    r = client.post(PV, json=request(synthea_patient["id"], fhirServer=fake_fhir.base,
                                     fhirAuthorization={"access_token": "tok"}))
    assert r.status_code == 200
    cards = assert_valid_response(r.json())
    assert any("_offset=" in q for _p, q, _a in fake_fhir.app.state.log), "no paging used"
    assert card_rules(cards) == expected_rules(prefetched_resources(full_prefetch), NOW.date())
    assert not any("incomplete" in c["summary"] for c in cards)


def test_null_prefetch_means_no_data_and_no_fetch(client, fake_fhir, full_prefetch,
                                                  synthea_patient):
    nulls = {k: None for k in full_prefetch}
    nulls["patient"] = full_prefetch["patient"]
    fake_fhir.app.state.log.clear()
    r = client.post(PV, json=request(synthea_patient["id"], prefetch=nulls,
                                     fhirServer=fake_fhir.base))
    assert r.status_code == 200
    assert fake_fhir.app.state.log == []
    cards = assert_valid_response(r.json())
    assert card_rules(cards) == expected_rules([full_prefetch["patient"]], NOW.date())


def test_nothing_found_gives_no_cards(client):
    patient = {"resourceType": "Patient", "id": "young", "gender": "male",
               "birthDate": "2012-01-01"}
    assert expected_rules([patient], NOW.date()) == [], "precondition: engine finds nothing"
    svc = client.app.state.cds
    prefetch = {k: None for k in svc.services["msc-screen-patient-view"].prefetch}
    prefetch["patient"] = patient
    r = client.post(PV, json=request("young", prefetch=prefetch))
    assert r.status_code == 200
    assert r.json() == {"cards": []}


def test_record_warnings_reach_the_clinician_when_an_order_is_in_play(client):
    """A note linked by URL that cannot be fetched is not analysed: the screening says so on
    the order hooks (in the one info card) instead of letting 'no contraindication card' read
    as the whole picture; chart open stays quiet (issue 13: alert design)."""
    patient = {"resourceType": "Patient", "id": "young", "gender": "male",
               "birthDate": "2012-01-01"}
    note = {"resourceType": "DocumentReference", "id": "n1", "status": "current",
            "subject": {"reference": "Patient/young"},
            "content": [{"attachment": {"contentType": "text/plain",
                                        "url": "https://ehr.example/notes/n1"}}]}
    svc = client.app.state.cds
    prefetch = {k: None for k in svc.services["msc-screen-patient-view"].prefetch}
    prefetch["patient"] = {"resourceType": "Bundle", "type": "collection",
                           "entry": [{"resource": patient}, {"resource": note}]}
    r = client.post(PV, json=request("young", prefetch=prefetch))
    assert r.status_code == 200 and r.json() == {"cards": []}
    order = {"resourceType": "MedicationRequest", "id": "d1", "status": "draft",
             "intent": "order", "medicationCodeableConcept": {"text": "MSC infusion"}}
    body = request("young", prefetch=prefetch, hook="order-sign")
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                      "entry": [{"resource": order}]}
    r = client.post("/cds-services/msc-screen-order-sign", json=body)
    cards = assert_valid_response(r.json())
    info = [c for c in cards if c["indicator"] == "info"]
    assert len(info) == 1, [c["summary"] for c in cards]
    assert "DocumentReference/n1 attachment 0 is not inline" in info[0]["detail"]
    assert "**MSC infusion**" in info[0]["detail"]


def test_no_prefetch_and_no_server_is_412(client):
    r = client.post(PV, json=request("123"))
    assert r.status_code == 412
    assert r.json()["resourceType"] == "OperationOutcome"
    assert "fhirServer" in r.json()["issue"][0]["diagnostics"]


def test_partial_prefetch_without_server_warns(client, full_prefetch, synthea_patient):
    partial = {"patient": full_prefetch["patient"]}
    r = client.post(PV, json=request(synthea_patient["id"], prefetch=partial))
    assert r.status_code == 200
    cards = assert_valid_response(r.json())
    notice = [c for c in cards if c["summary"].startswith("Screening incomplete")]
    assert len(notice) == 1 and notice[0]["indicator"] == "warning"
    assert "conditions: not provided" in notice[0]["detail"]


def test_slow_fhir_server_gives_degraded_answer(make_settings, fake_fhir, full_prefetch,
                                               synthea_patient):
    """What came in time is screened, what did not is named; when nothing came in time the
    answer is 412, not cards built from an empty record."""
    settings = make_settings(insecure_no_auth=True, fhir_deadline_s=0.5)
    fake_fhir.app.state.delay = 30.0
    partial = {k: full_prefetch[k] for k in ("patient", "conditions")}
    try:
        with TestClient(create_app(settings)) as c:
            r = c.post(PV, json=request(synthea_patient["id"], prefetch=partial,
                                        fhirServer=fake_fhir.base))
            none = c.post(PV, json=request(synthea_patient["id"], fhirServer=fake_fhir.base))
            metrics = c.get("/metrics").text
    finally:
        fake_fhir.app.state.delay = 0.0
    assert r.status_code == 200
    cards = assert_valid_response(r.json())
    assert cards[0]["summary"].startswith("Screening incomplete")
    assert "labs: fhirServer: timeout" in cards[0]["detail"]
    assert none.status_code == 412
    assert all("timeout" in i["diagnostics"] for i in none.json()["issue"])
    assert 'msc_screen_fhir_fetch_total{outcome="timeout"}' in metrics


def test_unreachable_fhir_server_gives_degraded_answer(client, full_prefetch, synthea_patient):
    partial = {k: full_prefetch[k] for k in ("patient", "conditions")}
    r = client.post(PV, json=request(synthea_patient["id"], prefetch=partial,
                                     fhirServer="http://127.0.0.1:9/fhir"))
    assert r.status_code == 200
    cards = assert_valid_response(r.json())
    assert cards[0]["summary"].startswith("Screening incomplete")
    assert "labs: fhirServer: could not connect" in cards[0]["detail"]
    r = client.post(PV, json=request(synthea_patient["id"], fhirServer="http://127.0.0.1:9/fhir"))
    assert r.status_code == 412


def test_page_limit_is_reported(make_settings, fake_fhir, synthea_patient):
    with TestClient(create_app(make_settings(insecure_no_auth=True, fhir_page_limit=1))) as c:
        r = c.post(PV, json=request(synthea_patient["id"], fhirServer=fake_fhir.base))
    assert r.status_code == 200
    notice = [c for c in r.json()["cards"] if c["summary"].startswith("Screening incomplete")]
    assert notice and "page limit" in notice[0]["detail"]


def test_next_links_to_other_hosts_are_not_followed():
    from msc_screen.server.cds.fhir_fetch import same_server
    assert same_server("https://ehr.example/fhir/Observation?_offset=5", "https://ehr.example/fhir")
    assert not same_server("https://evil.example/fhir/Observation", "https://ehr.example/fhir")
    assert not same_server("http://ehr.example/fhir/x", "https://ehr.example/fhir")


def test_bad_prefetch_resource_is_named_not_400(client, full_prefetch, synthea_patient):
    """One malformed resource no longer costs the EHR every card (test_cds_coverage.py has the
    details): it is left out and named, the rest screened."""
    bad = copy.deepcopy(full_prefetch)
    bad["conditions"]["entry"].append({"resource": {"resourceType": "Condition", "id": "x",
                                                    "subject": 5}})
    r = client.post(PV, json=request(synthea_patient["id"], prefetch=bad))
    assert r.status_code == 200
    cards = assert_valid_response(r.json())
    assert cards[0]["summary"].startswith("Screening incomplete")
    assert "prefetch.conditions: Condition/x: wrong type" in cards[0]["detail"]


@pytest.mark.parametrize("body, status, needle", [
    ({"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "1"}}, 400, "hook"),
    ({"hook": "patient-view", "hookInstance": "x", "context": {}}, 400, "patientId"),
    ({"hook": "patient-view", "context": {"patientId": "1"}}, 400, "hookInstance"),
    ({"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "1"},
      "fhirServer": "ftp://x"}, 400, "fhirServer"),
])
def test_bad_requests_are_400(client, body, status, needle):
    r = client.post(PV, json=body)
    assert r.status_code == status
    assert needle in r.json()["issue"][0]["diagnostics"]


def test_malformed_json_and_unknown_service(client):
    r = client.post(PV, content=b"{not json")
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = client.post("/cds-services/nope", json=request("1"))
    assert r.status_code == 404


def test_live_server_with_jwt(make_settings, clients_file, live_app, full_prefetch,
                              synthea_patient):
    """End to end over real HTTP: signed discovery and hook call, then feedback."""
    from .conftest import sign

    app = create_app(make_settings(cds_clients=clients_file))
    with live_app(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        disc = http.get("/cds-services",
                        headers={"Authorization": "Bearer " + sign(srv.url + "/cds-services")})
        assert disc.status_code == 200
        url = srv.url + PV
        r = http.post(PV, json=request(synthea_patient["id"], prefetch=full_prefetch),
                      headers={"Authorization": "Bearer " + sign(url)})
        assert r.status_code == 200
        cards = assert_valid_response(r.json())
        assert cards and cards[0]["source"]["url"].startswith(srv.url + "/rules/")
        fb = {"feedback": [{"card": cards[0]["uuid"], "outcome": "overridden",
                            "overrideReason": {"reason": cards[0].get("overrideReasons",
                                               [{"code": "x", "system": "y"}])[0],
                                               "userComment": "discussed"},
                            "outcomeTimestamp": "2019-12-31T12:00:00Z"}]}
        r = http.post(PV + "/feedback", json=fb,
                      headers={"Authorization": "Bearer " + sign(url + "/feedback")})
        assert r.status_code == 200 and r.json() == {"stored": 1}
    assert app.state.cds.feedback_count("msc-screen-patient-view") == 1


def test_cors_for_a_configured_browser_origin(make_settings):
    origin = "https://sandbox.cds-hooks.org"
    with TestClient(create_app(make_settings(insecure_no_auth=True,
                                             cors_origins=[origin]))) as c:
        pre = c.options(PV, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                     "Access-Control-Request-Headers": "authorization"})
        assert pre.headers["access-control-allow-origin"] == origin
        other = c.get("/cds-services", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_context_values_cannot_inject_query_parameters():
    from msc_screen.server.cds.fhir_fetch import render_template
    q = render_template("Condition?patient={{context.patientId}}",
                        {"patientId": "1&_include=*&x=../../admin"})
    assert q == "Condition?patient=1%26_include%3D%2A%26x%3D..%2F..%2Fadmin"
    assert render_template("Patient/{{context.patientId}}", {}) is None
