"""Issue 13 item 2 (and issue 15 item 1, CDS part): data as EHRs send it. MSC orders by
``medicationReference`` (contained, in the draftOrders Bundle, fetched from fhirServer) and by
brand name; order-select reads ``selections``; bounded prefetch templates and
``usageRequirements`` in discovery; DocumentReference attachments by ``url`` read from
fhirServer (and only there); fetched pages with Content-Encoding gzip, bounded in bytes.

Real HTTP throughout: TestClient → app → a fake FHIR server on a loopback socket."""

from __future__ import annotations

import base64
import gzip
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from msc_screen.server.app import create_app
from msc_screen.server.cds import fhir_fetch

from .cards_check import assert_valid_response, card_rules
from .conftest import LiveServer
from .fakefhir import make_app

pytestmark = pytest.mark.xdist_group("cds-fhir")
OS = "/cds-services/msc-screen-order-sign"
OSEL = "/cds-services/msc-screen-order-select"
PV = "/cds-services/msc-screen-patient-view"
PATIENT = {"resourceType": "Patient", "id": "p9", "gender": "female", "birthDate": "1970-01-01"}
NOTE_TEXT = b"Assessment: active metastatic breast carcinoma, on chemotherapy."
CANCER = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p9"},
          "clinicalStatus": {"coding": [{"code": "active"}]},
          "code": {"coding": [{"system": "http://snomed.info/sct", "code": "254837009",
                               "display": "Malignant neoplasm of breast"}]},
          "onsetDateTime": "2019-06-01"}
MED = {"resourceType": "Medication", "id": "med-1",
       "code": {"coding": [{"system": "http://example.org/epic-erx", "code": "98765",
                            "display": "REMESTEMCEL-L-RKND 2 X 10^6 CELLS/KG IV SUSP"}]}}
BINARY = {"resourceType": "Binary", "id": "b1", "contentType": "text/plain",
          "data": base64.b64encode(NOTE_TEXT).decode()}


def note(url: str) -> dict[str, Any]:
    return {"resourceType": "DocumentReference", "id": "n1", "status": "current",
            "subject": {"reference": "Patient/p9"}, "date": "2019-12-01",
            "content": [{"attachment": {"contentType": "text/plain", "url": url}}]}


@pytest.fixture(scope="module")
def ehr():
    app = make_app([PATIENT, CANCER, MED, BINARY, note("Binary/b1")], page_size=50)
    with LiveServer(app) as srv:
        srv.app = app
        srv.base = srv.url + "/fhir"
        yield srv


@pytest.fixture
def client(make_settings, ehr):
    ehr.app.state.log.clear()
    ehr.app.state.gzip = None
    with TestClient(create_app(make_settings(insecure_no_auth=True))) as c:
        yield c


def order_body(hook: str, orders: list[dict[str, Any]], *, server: str | None = None,
               selections: list[str] | None = None, prefetch: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    ctx: dict[str, Any] = {"patientId": "p9", "userId": "Practitioner/1",
                           "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                           "entry": [{"resource": r} for r in orders]}}
    if selections is not None:
        ctx["selections"] = selections
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": ctx}
    if server:
        body["fhirServer"] = server
        body["fhirAuthorization"] = {"access_token": "tok-ehr", "token_type": "Bearer"}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def by_ref(ref: str, **kw: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "mr-1", "status": "draft",
            "intent": "order", "medicationReference": {"reference": ref, **kw}}


def findings(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finding cards (not the "screening incomplete" notice a small prefetch brings)."""
    return [c for c in cards if c["indicator"] != "info"
            and not c["summary"].startswith("Screening incomplete")]


def minimal_prefetch() -> dict[str, Any]:
    return {"patient": PATIENT, "conditions": {"resourceType": "Bundle", "type": "searchset",
                                               "entry": [{"resource": CANCER}]}}


@pytest.mark.parametrize("orders", [
    [{**by_ref("#m"), "contained": [{**MED, "id": "m"}]}],
    [by_ref("Medication/med-1"), MED],
    [by_ref("Medication/unknown", display="Ryoncil (remestemcel-L) infusion")],
    [{"resourceType": "MedicationRequest", "id": "mr-2", "status": "draft", "intent": "order",
      "medicationCodeableConcept": {"text": "RYONCIL 2 million cells/kg IV"}}],
])
def test_msc_orders_epic_style_are_recognised(client, orders):
    r = client.post(OS, json=order_body("order-sign", orders, prefetch=minimal_prefetch()))
    cards = findings(assert_valid_response(r.json()))
    assert cards, "the MSC order should get cards"
    cancel = cards[0]["suggestions"][0]
    assert cancel["actions"][0]["type"] == "delete"
    assert cancel["actions"][0]["resourceId"] == [f"MedicationRequest/{orders[0]['id']}"]


def test_medication_reference_is_fetched_from_fhir_server(client, ehr):
    orders = [by_ref("Medication/med-1")]
    assert client.post(OS, json=order_body("order-sign", orders, prefetch=minimal_prefetch())
                       ).json() == {"cards": []}  # nothing to resolve it with
    r = client.post(OS, json=order_body("order-sign", orders, server=ehr.base))
    assert r.status_code == 200 and assert_valid_response(r.json())
    reads = [(p, a) for p, _q, a in ehr.app.state.log if p == "/fhir/Medication/med-1"]
    assert reads == [("/fhir/Medication/med-1", "Bearer tok-ehr")]


def test_order_select_reads_only_the_selections(client):
    msc = {**by_ref("#m"), "contained": [{**MED, "id": "m"}]}
    other = {"resourceType": "MedicationRequest", "id": "asp", "status": "draft",
             "intent": "order", "medicationCodeableConcept": {"text": "aspirin 81 mg"}}
    none = client.post(OSEL, json=order_body("order-select", [msc, other],
                                             selections=["MedicationRequest/asp"],
                                             prefetch=minimal_prefetch()))
    assert none.json() == {"cards": []}
    some = client.post(OSEL, json=order_body("order-select", [msc, other],
                                             selections=["MedicationRequest/mr-1"],
                                             prefetch=minimal_prefetch()))
    cards = findings(assert_valid_response(some.json()))
    assert cards and "The IV MSC order selected" in cards[0]["detail"]


def test_discovery_templates_are_bounded_and_say_what_they_need(client):
    for s in client.get("/cds-services").json()["services"]:
        pre = s["prefetch"]
        assert "clinical-status=active,recurrence,relapse,inactive,remission,resolved" in \
            pre["conditions"]
        assert "category=laboratory" in pre["labs"]
        assert all("_count=" in q for k, q in pre.items() if "?" in q)
        assert "patient/Condition.read" in s["usageRequirements"]


def test_note_attachment_by_url_is_read_from_fhir_server(client, ehr):
    r = client.post(PV, json={"hook": "patient-view", "hookInstance": "h-note",
                              "context": {"patientId": "p9"}, "fhirServer": ehr.base,
                              "fhirAuthorization": {"access_token": "tok-ehr"},
                              "prefetch": {"patient": PATIENT, "conditions": None,
                                           "documents": {"resourceType": "Bundle",
                                                         "type": "searchset",
                                                         "entry": [{"resource":
                                                                    note("Binary/b1")}]}}})
    cards = assert_valid_response(r.json())
    assert ("active-malignancy", "warning") in card_rules(cards)
    evidence = next(c for c in cards if "active-malignancy" in c["source"]["url"])["detail"]
    assert "DocumentReference/n1" in evidence
    assert ("/fhir/Binary/b1", "Bearer tok-ehr") in [(p, a) for p, _q, a in ehr.app.state.log]


def test_note_attachment_on_another_server_is_not_read(client, ehr):
    body = order_body("order-sign", [{**by_ref("#m"), "contained": [{**MED, "id": "m"}]}],
                      server=ehr.base,
                      prefetch={"patient": PATIENT, "documents": {
                          "resourceType": "Bundle", "type": "searchset",
                          "entry": [{"resource": note("https://evil.example/Binary/b1")}]}})
    cards = assert_valid_response(client.post(OS, json=body).json())
    info = [c for c in cards if c["indicator"] == "info"]
    assert info and "attachment 0 is not inline (by URL)" in info[0]["detail"]
    assert not any("evil" in p for p, _q, _a in ehr.app.state.log)


def test_gzip_pages_are_read_and_a_bomb_stops_at_the_limit(client, ehr, monkeypatch):
    body = {"hook": "patient-view", "hookInstance": "h-gz", "context": {"patientId": "p9"},
            "fhirServer": ehr.base, "fhirAuthorization": {"access_token": "tok-ehr"}}
    ehr.app.state.gzip = True
    ok = assert_valid_response(client.post(PV, json=body).json())
    assert ("active-malignancy", "warning") in card_rules(ok)  # critical only with an order
    assert not any(c["summary"].startswith("Screening incomplete") for c in ok)
    # every answer now is a gzip bomb: 64 MiB of spaces (~65 KB sent); the cap is 1 MiB
    bomb = gzip.compress(b" " * (64 * 2**20), compresslevel=9)
    ehr.app.state.gzip = lambda _body: bomb
    monkeypatch.setattr(fhir_fetch, "page_limits", lambda: (2**20, 2**20))
    r = client.post(PV, json={**body, "prefetch": {"patient": PATIENT}})
    assert r.status_code == 200
    cov = assert_valid_response(r.json())[0]
    assert cov["summary"].startswith("Screening incomplete")
    assert "once decompressed" in cov["detail"]


def test_contraindication_is_critical_only_when_an_msc_order_is_in_play(client):
    pv = client.post(PV, json={"hook": "patient-view", "hookInstance": "h-ind",
                               "context": {"patientId": "p9"}, "prefetch": minimal_prefetch()})
    assert ("active-malignancy", "warning") in card_rules(assert_valid_response(pv.json()))
    order = {**by_ref("#m"), "contained": [{**MED, "id": "m"}]}
    os_ = client.post(OS, json=order_body("order-sign", [order], prefetch=minimal_prefetch()))
    assert ("active-malignancy", "critical") in card_rules(assert_valid_response(os_.json()))
