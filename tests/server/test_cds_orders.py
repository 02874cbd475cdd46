"""order-select / order-sign fire only for IV MSC therapy orders (codes/texts from data)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from msc_screen.server.app import create_app

from .cards_check import assert_valid_response, card_rules, expected_rules, prefetched_resources
from .conftest import NOW
from .fakefhir import prefetch_for

pytestmark = pytest.mark.xdist_group("cds-fhir")

MSC_ORDER = {"resourceType": "MedicationRequest", "id": "draft-1", "status": "draft",
             "intent": "order",
             "medicationCodeableConcept": {"text": "Allogeneic umbilical cord mesenchymal "
                                                   "stromal cells 1e8 cells IV infusion"}}
CODED_ORDER = {"resourceType": "ServiceRequest", "id": "draft-2", "status": "draft",
               "intent": "order", "code": {"coding": [{
                   "system": "https://msc-screen.org/CodeSystem/orders",
                   "code": "iv-msc-infusion"}]}}
ASPIRIN = {"resourceType": "MedicationRequest", "id": "draft-3", "status": "draft",
           "intent": "order", "medicationCodeableConcept": {"coding": [{
               "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "243670",
               "display": "aspirin 81 MG Oral Tablet"}]}}


def draft(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in resources]}


@pytest.fixture
def client(make_settings):
    with TestClient(create_app(make_settings(insecure_no_auth=True))) as c:
        yield c


def call(client, service: str, hook: str, pid: str, orders: dict[str, Any],
         prefetch: dict[str, Any] | None = None, **extra: Any):
    context = {"userId": "Practitioner/1", "patientId": pid, "draftOrders": orders}
    if hook == "order-select":
        context["selections"] = [f"{r['resource']['resourceType']}/{r['resource']['id']}"
                                 for r in orders["entry"]]
    body = {"hook": hook, "hookInstance": "5c6a1d0e-1a3b-4f4e-9f0a-9a2b2c3d4e5f",
            "context": context, **extra}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return client.post(f"/cds-services/{service}", json=body)


@pytest.fixture
def prefetch(client, synthea_patient) -> dict[str, Any]:
    tmpl = client.app.state.cds.services["msc-screen-order-sign"].prefetch
    return prefetch_for(synthea_patient["resources"], synthea_patient["id"], tmpl)


@pytest.mark.parametrize("service, hook", [("msc-screen-order-select", "order-select"),
                                           ("msc-screen-order-sign", "order-sign")])
def test_msc_order_gets_cards(client, prefetch, synthea_patient, service, hook):
    r = call(client, service, hook, synthea_patient["id"], draft(ASPIRIN, MSC_ORDER), prefetch)
    assert r.status_code == 200
    cards = assert_valid_response(r.json())
    want = expected_rules(prefetched_resources(prefetch), NOW.date(), hook=hook)
    assert want and card_rules(cards) == want


def test_coded_msc_order_matches(client, prefetch, synthea_patient):
    r = call(client, "msc-screen-order-sign", "order-sign", synthea_patient["id"],
             draft(CODED_ORDER), prefetch)
    assert r.status_code == 200 and r.json()["cards"]


@pytest.mark.parametrize("service, hook", [("msc-screen-order-select", "order-select"),
                                           ("msc-screen-order-sign", "order-sign")])
def test_other_orders_get_no_cards_and_no_fetch(client, fake_fhir, synthea_patient,
                                                service, hook):
    fake_fhir.app.state.log.clear()
    r = call(client, service, hook, synthea_patient["id"], draft(ASPIRIN),
             fhirServer=fake_fhir.base)
    assert r.status_code == 200
    assert r.json() == {"cards": []}
    assert fake_fhir.app.state.log == []


def test_missing_draft_orders_is_400(client):
    body = {"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "1"}}
    r = client.post("/cds-services/msc-screen-order-sign", json=body)
    assert r.status_code == 400
    assert "draftOrders" in r.json()["issue"][0]["diagnostics"]


def test_site_order_codes_from_a_file(make_settings, tmp_path, prefetch, synthea_patient):
    codes = tmp_path / "orders.json"
    codes.write_text(json.dumps({
        "resourceTypes": ["MedicationRequest"],
        "codes": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "243670"}],
        "texts": []}))
    with TestClient(create_app(make_settings(insecure_no_auth=True,
                                             msc_orders_file=str(codes)))) as c:
        hit = call(c, "msc-screen-order-sign", "order-sign", synthea_patient["id"],
                   draft(ASPIRIN), prefetch)
        miss = call(c, "msc-screen-order-sign", "order-sign", synthea_patient["id"],
                    draft(MSC_ORDER), prefetch)
    assert hit.json()["cards"] and miss.json() == {"cards": []}


def test_bad_order_codes_file_is_named(make_settings, tmp_path):
    bad = tmp_path / "orders.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match=r"orders\.json"):
        create_app(make_settings(insecure_no_auth=True, msc_orders_file=str(bad)))
