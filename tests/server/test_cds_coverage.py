"""CDS Hooks fetch outcomes are data coverage (issue 12): an OperationOutcome, an outcome
entry, a 404, a 401, a timeout, an unfollowed or off-host ``next`` link make a key's kind
incomplete; paged prefetch is followed on fhirServer only; nothing usable → 412; another
patient's resources and malformed resources are left out and named; the rest is screened.

Every call goes through the real HTTP path (TestClient → app → service → fake FHIR server over
a socket); the assessment behind the cards is taken from the service as it returns it."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from msc_screen import screen
from msc_screen.model import Assessment
from msc_screen.server.app import create_app

from .cards_check import assert_valid_response, card_rules, expected_rules, prefetched_resources
from .conftest import NOW, LiveServer
from .fakefhir import make_app, paged_prefetch, prefetch_for, reset

pytestmark = pytest.mark.xdist_group("cds-fhir")
PV = "/cds-services/msc-screen-patient-view"
TOKEN = {"access_token": "tok-123", "token_type": "Bearer"}
OTHER = "other-patient-7"
KINDS = ("conditions", "medications", "procedures", "allergies", "laboratory",
         "pregnancy-status", "documents", "questionnaire")


@pytest.fixture
def client(make_settings):
    with TestClient(create_app(make_settings(insecure_no_auth=True))) as c:
        yield c


@pytest.fixture
def seen(client) -> list[Assessment]:
    """The assessments the service builds its cards from, in call order."""
    svc = client.app.state.cds
    out: list[Assessment] = []
    screen_ = svc._screen

    def spy(*args: Any, **kw: Any) -> Assessment:
        a = screen_(*args, **kw)
        out.append(a)
        return a

    svc._screen = spy
    return out


@pytest.fixture
def fhir(fake_fhir):
    reset(fake_fhir.app)
    yield fake_fhir
    reset(fake_fhir.app)


@pytest.fixture(scope="module")
def elsewhere():
    """Another FHIR server (another host:port): no request, and no token, may reach it."""
    app = make_app([])
    with LiveServer(app) as srv:
        srv.app = app
        srv.base = srv.url + "/fhir"
        yield srv


@pytest.fixture
def templates(client) -> dict[str, str]:
    return client.app.state.cds.services["msc-screen-patient-view"].prefetch


@pytest.fixture
def full_prefetch(synthea_patient, templates) -> dict[str, Any]:
    return prefetch_for(synthea_patient["resources"], synthea_patient["id"], templates)


def request(pid: str, **kw: Any) -> dict[str, Any]:
    body = {"hookInstance": "0b4f2b8e-7c1e-4f57-9d0a-4f4b5e1c2a11", "hook": "patient-view",
            "context": {"userId": "Practitioner/example", "patientId": pid}}
    body.update(kw)
    return body


def outcome(text: str, severity: str = "error") -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": "processing", "diagnostics": text}]}


def coverage_card(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """The "screening incomplete" card: there is one, and it comes first."""
    inc = [c for c in cards if c["summary"].startswith("Screening incomplete")]
    assert len(inc) == 1, [c["summary"] for c in cards]
    assert cards[0] is inc[0], "the incomplete-screening card must come first"
    assert inc[0]["indicator"] == "warning"
    return inc[0]


def assert_not_reassuring(a: Assessment) -> None:
    assert a.decision != "no-contraindication-found"
    dc = next(f for f in a.findings if f.rule == "data-coverage")
    assert dc.status == "present", dc


def present_rules(resources: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(rule, indicator) of the contraindication and review findings present in these
    resources, all kinds searched: the findings with a card of their own on patient-view (a
    contraindication is a warning there: the policy's patient_view_max_indicator)."""
    sev = {"contraindicated": "warning", "physician-review": "warning"}
    a = screen(resources, as_of=NOW.date(), complete="all")
    return sorted((f.rule, sev[f.severity]) for f in a.findings
                  if f.status == "present" and f.severity in sev)


# -- OperationOutcome instead of data ------------------------------------------------------

def test_operation_outcome_prefetch_is_incomplete(client, seen, full_prefetch, synthea_patient):
    pid = synthea_patient["id"]
    pre = copy.deepcopy(full_prefetch)
    pre["conditions"] = outcome("Condition search failed: backend unavailable")
    r = client.post(PV, json=request(pid, prefetch=pre))
    assert r.status_code == 200
    cards = assert_valid_response(r.json())
    a = seen[-1]
    cov = a.coverage["conditions"]
    assert cov.status == "incomplete"
    assert "OperationOutcome" in (cov.reason or "") and "backend unavailable" in (cov.reason or "")
    assert all(a.coverage[k].status == "provided" for k in KINDS if k != "conditions")
    assert_not_reassuring(a)
    card = coverage_card(cards)
    assert "- conditions: incomplete — conditions: prefetch: answered with an " \
           "OperationOutcome instead of data (error: Condition search failed" in card["detail"]
    assert card["source"]["url"].endswith("/rules/data-coverage")
    # the data-coverage finding is that card, not a second one
    assert sum(c["source"]["url"].endswith("/data-coverage") for c in cards) == 1
    # no condition was screened: the condition-only findings are "needs information", not absent
    assert not any(e.reference.startswith("Condition/") for f in a.findings for e in f.evidence)


def test_operation_outcome_prefetch_is_refetched_from_fhir_server(client, seen, fhir,
                                                                  full_prefetch, synthea_patient):
    pid = synthea_patient["id"]
    pre = copy.deepcopy(full_prefetch)
    pre["conditions"] = outcome("too costly")
    r = client.post(PV, json=request(pid, prefetch=pre, fhirServer=fhir.base,
                                     fhirAuthorization=TOKEN))
    assert r.status_code == 200
    assert {p for p, _q, _a in fhir.app.state.log} == {"/fhir/Condition"}
    a = seen[-1]
    assert a.coverage["conditions"].status == "provided"
    cards = assert_valid_response(r.json())
    assert not any(c["summary"].startswith("Screening incomplete") for c in cards)
    assert card_rules(cards) == expected_rules(prefetched_resources(full_prefetch), NOW.date())


def test_failed_refetch_keeps_the_key_incomplete(client, seen, fhir, full_prefetch,
                                                 synthea_patient):
    pid = synthea_patient["id"]
    fhir.app.state.answers = {"Condition": (401, outcome("expired"))}
    pre = copy.deepcopy(full_prefetch)
    pre["conditions"] = outcome("too costly")
    r = client.post(PV, json=request(pid, prefetch=pre, fhirServer=fhir.base,
                                     fhirAuthorization=TOKEN))
    assert r.status_code == 200
    a = seen[-1]
    reason = a.coverage["conditions"].reason or ""
    assert a.coverage["conditions"].status == "incomplete"
    assert "too costly" in reason
    assert "refetch from fhirServer failed (HTTP 401 (unauthorized))" in reason
    assert a.coverage["laboratory"].status == "provided"
    assert_not_reassuring(a)


def test_fhir_server_answering_operation_outcome_is_incomplete(client, seen, fhir, full_prefetch,
                                                               synthea_patient):
    """A 200 whose body is an OperationOutcome is no data either, fetched or prefetched."""
    pid = synthea_patient["id"]
    fhir.app.state.answers = {"Procedure": (200, outcome("Procedure search is disabled"))}
    pre = {k: full_prefetch[k] for k in full_prefetch if k != "procedures"}
    r = client.post(PV, json=request(pid, prefetch=pre, fhirServer=fhir.base))
    assert r.status_code == 200
    a = seen[-1]
    assert a.coverage["procedures"].status == "incomplete"
    assert "Procedure search is disabled" in (a.coverage["procedures"].reason or "")
    assert_not_reassuring(a)
    assert "procedures: incomplete" in coverage_card(r.json()["cards"])["detail"]


def test_search_outcome_entry_with_an_error_is_incomplete(client, seen, full_prefetch,
                                                          synthea_patient):
    """A searchset that says, in a search.mode=outcome entry, that it failed part-way: its
    matches are screened, and the kind is incomplete."""
    pid = synthea_patient["id"]
    pre = copy.deepcopy(full_prefetch)
    pre["conditions"]["entry"].append({"resource": outcome("partial results: shard 3 down"),
                                       "search": {"mode": "outcome"}})
    r = client.post(PV, json=request(pid, prefetch=pre))
    assert r.status_code == 200
    a = seen[-1]
    assert a.coverage["conditions"].status == "incomplete"
    assert "shard 3 down" in (a.coverage["conditions"].reason or "")
    assert_not_reassuring(a)
    cards = assert_valid_response(r.json())
    assert "the search reported an error" in coverage_card(cards)["detail"]
    # the matches were read: every finding present in the full record is still a card
    for rule in present_rules(prefetched_resources(full_prefetch)):
        assert rule in card_rules(cards), rule


def test_outcome_entry_with_only_a_warning_is_not_incomplete(client, seen, full_prefetch,
                                                             synthea_patient):
    pre = copy.deepcopy(full_prefetch)
    pre["conditions"]["entry"].append({"resource": outcome("unknown parameter ignored",
                                                           severity="warning"),
                                       "search": {"mode": "outcome"}})
    r = client.post(PV, json=request(synthea_patient["id"], prefetch=pre))
    assert r.status_code == 200
    assert seen[-1].coverage["conditions"].status == "provided"


# -- HTTP errors, 404, 401, timeout ----------------------------------------------------------

def test_fhir_server_answering_404_to_every_query(client, seen, fhir, full_prefetch,
                                                  synthea_patient):
    """Only the patient and conditions were prefetched; every other query answers 404: each
    of those kinds is incomplete and named, never read as "no data"."""
    pid = synthea_patient["id"]
    fhir.app.state.answers = {"*": (404, outcome("not found"))}
    pre = {k: full_prefetch[k] for k in ("patient", "conditions")}
    r = client.post(PV, json=request(pid, prefetch=pre, fhirServer=fhir.base,
                                     fhirAuthorization=TOKEN))
    assert r.status_code == 200
    a = seen[-1]
    assert a.coverage["conditions"].status == "provided"
    for kind in ("medications", "procedures", "allergies", "laboratory", "pregnancy-status",
                 "documents", "questionnaire"):
        assert a.coverage[kind].status == "incomplete", kind
        assert "HTTP 404 (not found)" in (a.coverage[kind].reason or ""), kind
    assert_not_reassuring(a)
    detail = coverage_card(assert_valid_response(r.json()))["detail"]
    assert "- laboratory: incomplete — labs: fhirServer: HTTP 404 (not found)" in detail
    assert "medicationRequests: fhirServer: HTTP 404" in detail
    assert "medicationStatements: fhirServer: HTTP 404" in detail


def test_404_everywhere_and_no_prefetch_is_412(client, fhir, synthea_patient):
    fhir.app.state.answers = {"*": (404, outcome("not found"))}
    r = client.post(PV, json=request(synthea_patient["id"], fhirServer=fhir.base))
    assert r.status_code == 412
    issues = r.json()["issue"]
    assert {i["expression"][0] for i in issues} >= {"prefetch.conditions", "prefetch.labs"}
    assert all("HTTP 404" in i["diagnostics"] for i in issues)


def test_401_everywhere_is_412_never_cards_from_an_empty_record(client, seen, fhir,
                                                                synthea_patient):
    fhir.app.state.answers = {"*": (401, outcome("invalid token"))}
    r = client.post(PV, json=request(synthea_patient["id"], fhirServer=fhir.base,
                                     fhirAuthorization=TOKEN))
    assert r.status_code == 412
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and "cards" not in body
    diags = [i["diagnostics"] for i in body["issue"]]
    assert len(diags) == 10  # every prefetch key, by name
    assert "patient: fhirServer: HTTP 401 (unauthorized)" in diags
    assert "conditions: fhirServer: HTTP 401 (unauthorized)" in diags
    assert all(i["code"] == "incomplete" for i in body["issue"])
    assert seen == []  # nothing was screened


def test_prefetch_all_failed_without_server_is_412(client, full_prefetch, synthea_patient):
    pre = {k: outcome("no") for k in full_prefetch}
    r = client.post(PV, json=request(synthea_patient["id"], prefetch=pre))
    assert r.status_code == 412
    assert "OperationOutcome" in r.json()["issue"][0]["diagnostics"]


def test_timeout_keeps_what_came_and_names_what_did_not(make_settings, fhir, full_prefetch,
                                                        synthea_patient):
    fhir.app.state.delay = 30.0
    pre = {k: full_prefetch[k] for k in ("patient", "conditions")}
    with TestClient(create_app(make_settings(insecure_no_auth=True,
                                             fhir_deadline_s=0.5))) as c:
        seen: list[Assessment] = []
        screen_ = c.app.state.cds._screen
        c.app.state.cds._screen = lambda *a, **k: seen.append(screen_(*a, **k)) or seen[-1]
        r = c.post(PV, json=request(synthea_patient["id"], prefetch=pre,
                                    fhirServer=fhir.base))
        r412 = c.post(PV, json=request(synthea_patient["id"], fhirServer=fhir.base))
    assert r.status_code == 200
    a = seen[-1]
    assert a.coverage["conditions"].status == "provided"
    assert a.coverage["laboratory"].status == "incomplete"
    assert "timeout" in (a.coverage["laboratory"].reason or "")
    assert_not_reassuring(a)
    assert "labs: fhirServer: timeout" in coverage_card(r.json()["cards"])["detail"]
    # nothing at all came back in time: 412, naming the timeouts
    assert r412.status_code == 412
    assert all("timeout" in i["diagnostics"] for i in r412.json()["issue"])


# -- paging ----------------------------------------------------------------------------------

def test_paged_prefetch_is_followed_on_fhir_server_with_the_token(client, seen, fhir,
                                                                  elsewhere, templates,
                                                                  synthea_patient):
    pid = synthea_patient["id"]
    res = synthea_patient["resources"]
    pre = paged_prefetch(res, pid, templates, fhir.base, page_size=5)
    paged = [k for k, v in pre.items() if isinstance(v, dict) and v.get("link")]
    assert len(paged) >= 2, "fixture: several keys should span pages"
    r = client.post(PV, json=request(pid, prefetch=pre, fhirServer=fhir.base,
                                     fhirAuthorization=TOKEN))
    assert r.status_code == 200
    log = fhir.app.state.log
    assert log and all(q and "_offset=" in q for _p, q, _a in log), "only next pages fetched"
    assert {a for _p, _q, a in log} == {"Bearer tok-123"}
    assert elsewhere.app.state.log == []
    a = seen[-1]
    assert all(a.coverage[k].status == "provided" for k in KINDS)
    cards = assert_valid_response(r.json())
    assert not any(c["summary"].startswith("Screening incomplete") for c in cards)
    assert card_rules(cards) == expected_rules(
        prefetched_resources(prefetch_for(res, pid, templates)), NOW.date())


def test_paged_prefetch_without_fhir_server_is_incomplete(client, seen, fhir, templates,
                                                          synthea_patient):
    pid = synthea_patient["id"]
    pre = paged_prefetch(synthea_patient["resources"], pid, templates, fhir.base, page_size=5)
    paged = [k for k, v in pre.items() if isinstance(v, dict) and v.get("link")]
    r = client.post(PV, json=request(pid, prefetch=pre))
    assert r.status_code == 200
    assert fhir.app.state.log == []
    a = seen[-1]
    kinds = {client.app.state.cds.coverage_of[k] for k in paged}
    for kind in kinds:
        assert a.coverage[kind].status == "incomplete"
        assert "next page not followed" in (a.coverage[kind].reason or "")
    assert_not_reassuring(a)
    coverage_card(assert_valid_response(r.json()))


def test_off_host_next_in_prefetch_is_not_followed(client, seen, elsewhere, full_prefetch,
                                                   synthea_patient):
    pid = synthea_patient["id"]
    pre = copy.deepcopy(full_prefetch)
    pre["conditions"]["link"] = [{"relation": "next",
                                  "url": f"{elsewhere.base}/Condition?patient={pid}&_offset=5"}]
    r = client.post(PV, json=request(pid, prefetch=pre, fhirAuthorization=TOKEN))
    assert r.status_code == 200
    assert elsewhere.app.state.log == []
    a = seen[-1]
    assert a.coverage["conditions"].status == "incomplete"
    assert_not_reassuring(a)
    assert "conditions: prefetch: next page not followed" in coverage_card(
        r.json()["cards"])["detail"]


def test_off_host_next_with_fhir_server_refetches_there(client, seen, fhir, elsewhere,
                                                        full_prefetch, synthea_patient):
    """The next page is on another server: it is not followed (the token stays home); the
    key is fetched again from fhirServer, and is provided when that works."""
    pid = synthea_patient["id"]
    pre = copy.deepcopy(full_prefetch)
    pre["conditions"]["link"] = [{"relation": "next",
                                  "url": f"{elsewhere.base}/Condition?patient={pid}&_offset=5"}]
    r = client.post(PV, json=request(pid, prefetch=pre, fhirServer=fhir.base,
                                     fhirAuthorization=TOKEN))
    assert r.status_code == 200
    assert elsewhere.app.state.log == []
    assert {(p, a) for p, _q, a in fhir.app.state.log} == {("/fhir/Condition", "Bearer tok-123")}
    assert seen[-1].coverage["conditions"].status == "provided"
    cards = assert_valid_response(r.json())
    assert card_rules(cards) == expected_rules(prefetched_resources(full_prefetch), NOW.date())


def test_off_host_next_from_fhir_server_is_not_followed(client, seen, fhir, elsewhere,
                                                        full_prefetch, synthea_patient):
    pid = synthea_patient["id"]
    fhir.app.state.next_base = elsewhere.base
    pre = {k: full_prefetch[k] for k in full_prefetch if k != "labs"}
    r = client.post(PV, json=request(pid, prefetch=pre, fhirServer=fhir.base,
                                     fhirAuthorization=TOKEN))
    assert r.status_code == 200
    assert elsewhere.app.state.log == []
    a = seen[-1]
    assert a.coverage["laboratory"].status == "incomplete"
    assert "next page on another server not followed" in (a.coverage["laboratory"].reason or "")
    assert a.coverage["laboratory"].count, "the first page was still screened"
    assert_not_reassuring(a)


# -- null and empty searches -----------------------------------------------------------------

def test_null_and_empty_searchset_are_provided(client, seen, full_prefetch, synthea_patient):
    pre = copy.deepcopy(full_prefetch)
    pre["procedures"] = None
    pre["allergies"] = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    r = client.post(PV, json=request(synthea_patient["id"], prefetch=pre))
    assert r.status_code == 200
    a = seen[-1]
    assert a.coverage["procedures"].status == "provided"
    assert a.coverage["allergies"].status == "provided"
    assert not any(c["summary"].startswith("Screening incomplete") for c in r.json()["cards"])


# -- another patient's data ------------------------------------------------------------------

LUNG_CANCER = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C34.90",
                           "display": "Malignant neoplasm of unspecified part of lung"}]}


def foreign_resources() -> list[dict[str, Any]]:
    ref = {"reference": f"Patient/{OTHER}"}
    return [
        {"resourceType": "Condition", "id": "foreign-c1", "subject": ref, "code": LUNG_CANCER,
         "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2019-06-01"},
        {"resourceType": "MedicationRequest", "id": "foreign-m1", "status": "active",
         "intent": "order", "subject": ref, "authoredOn": "2019-11-01",
         "medicationCodeableConcept": {"text": "enoxaparin 40 mg injection"}},
    ]


def test_another_patients_resources_are_left_out_and_named(client, seen, full_prefetch,
                                                           synthea_patient, caplog):
    pid = synthea_patient["id"]
    own = prefetched_resources(full_prefetch)
    assert "active-malignancy" not in [r for r, _i in expected_rules(own, NOW.date())]
    pre = copy.deepcopy(full_prefetch)
    c1, m1 = foreign_resources()
    pre["conditions"]["entry"].append({"resource": c1})
    pre["medicationRequests"]["entry"].append({"resource": m1})
    caplog.set_level(logging.DEBUG)
    r = client.post(PV, json=request(pid, prefetch=pre))
    assert r.status_code == 200
    cards = assert_valid_response(r.json())
    a = seen[-1]
    assert a.patient_id == pid
    # never screened: no finding rests on them, no card is about them
    refs = {e.reference for f in a.findings for e in f.evidence}
    assert "Condition/foreign-c1" not in refs and "MedicationRequest/foreign-m1" not in refs
    assert "active-malignancy" not in [r for r, _i in card_rules(cards)]
    # named, by type/id only, in a warning card
    warn = [c for c in cards if c["summary"].startswith("Another patient's data")]
    assert len(warn) == 1 and warn[0]["indicator"] == "warning"
    assert "prefetch.conditions: Condition/foreign-c1" in warn[0]["detail"]
    assert "prefetch.medicationRequests: MedicationRequest/foreign-m1" in warn[0]["detail"]
    assert OTHER not in warn[0]["detail"] and "lung" not in warn[0]["detail"]
    # the searches that returned them are not trusted to be whole
    assert a.coverage["conditions"].status == "incomplete"
    assert "another patient" in (a.coverage["conditions"].reason or "")
    assert_not_reassuring(a)
    coverage_card(cards)
    # every card and suggested order is for context.patientId
    for c in cards:
        for s in c.get("suggestions", ()):
            for act in s["actions"]:
                assert act["resource"]["subject"] == {"reference": f"Patient/{pid}"}
    assert OTHER not in caplog.text and "lung" not in caplog.text.lower()


def test_prefetch_of_only_another_patient(client, seen, full_prefetch, synthea_patient):
    """The patient and conditions keys hold another patient's data only: those kinds are
    incomplete, the other patient is never the one screened, and the rest is."""
    pid = synthea_patient["id"]
    pre = copy.deepcopy(full_prefetch)
    pre["patient"] = {"resourceType": "Patient", "id": OTHER, "gender": "female",
                      "birthDate": "1990-01-01"}
    pre["conditions"] = {"resourceType": "Bundle", "type": "searchset",
                         "entry": [{"resource": foreign_resources()[0]}]}
    r = client.post(PV, json=request(pid, prefetch=pre))
    assert r.status_code == 200
    a = seen[-1]
    assert a.patient_id == pid
    for kind in ("conditions", "demographics"):
        assert a.coverage[kind].status == "incomplete", kind
        assert "held only another patient's data" in (a.coverage[kind].reason or "")
    assert a.coverage["medications"].status == "provided"
    cards = assert_valid_response(r.json())
    assert "active-malignancy" not in [r for r, _i in card_rules(cards)]
    warn = next(c for c in cards if c["summary"].startswith("Another patient's data"))
    assert f"prefetch.patient: Patient/{OTHER}" in warn["detail"]
    assert "prefetch.conditions: Condition/foreign-c1" in warn["detail"]
    assert_not_reassuring(a)


def test_prefetch_entirely_of_another_patient_is_412(client):
    pre = {"patient": {"resourceType": "Patient", "id": OTHER},
           "conditions": {"resourceType": "Bundle", "type": "searchset",
                          "entry": [{"resource": foreign_resources()[0]}]}}
    r = client.post(PV, json=request("context-patient", prefetch=pre))
    assert r.status_code == 412
    assert any("another patient" in i["diagnostics"] for i in r.json()["issue"])


# -- malformed resources ---------------------------------------------------------------------

def test_malformed_resources_are_left_out_named_and_the_rest_screened(client, seen,
                                                                      full_prefetch,
                                                                      synthea_patient, caplog):
    pid = synthea_patient["id"]
    pre = copy.deepcopy(full_prefetch)
    # one the decoder rejects (a wrong type), one the record builder rejects (a bad date)
    pre["conditions"]["entry"].append({"resource": {
        "resourceType": "Condition", "id": "bad-type", "subject": 5, "code": LUNG_CANCER}})
    pre["procedures"]["entry"].append({"resource": {
        "resourceType": "Procedure", "id": "bad-date", "status": "completed",
        "subject": {"reference": f"Patient/{pid}"}, "performedDateTime": "sometime in May",
        "code": {"text": "bone marrow biopsy"}}})
    caplog.set_level(logging.DEBUG)
    r = client.post(PV, json=request(pid, prefetch=pre))
    assert r.status_code == 200, r.text
    cards = assert_valid_response(r.json())
    a = seen[-1]
    for kind in ("conditions", "procedures"):
        assert a.coverage[kind].status == "incomplete"
        assert "1 resource could not be read" in (a.coverage[kind].reason or "")
    assert_not_reassuring(a)
    detail = coverage_card(cards)["detail"]
    assert "prefetch.conditions: Condition/bad-type: wrong type" in detail
    assert "(field subject)" in detail
    assert "prefetch.procedures: Procedure/bad-date: not a FHIR date/dateTime" in detail
    # the rest of both keys was read: every finding of the full record is still a card
    for rule in present_rules(prefetched_resources(full_prefetch)):
        assert rule in card_rules(cards), rule
    assert a.coverage["conditions"].count == len(full_prefetch["conditions"]["entry"])
    assert "sometime in May" not in caplog.text and "bone marrow" not in caplog.text


def test_unreadable_value_is_named_and_the_other_keys_screened(client, seen, full_prefetch,
                                                               synthea_patient):
    pid = synthea_patient["id"]
    pre = copy.deepcopy(full_prefetch)
    pre["labs"] = {"resourceType": "NoSuchType", "id": "x"}
    r = client.post(PV, json=request(pid, prefetch=pre))
    assert r.status_code == 200
    a = seen[-1]
    assert a.coverage["laboratory"].status == "incomplete"
    assert "could not be read" in (a.coverage["laboratory"].reason or "")
    assert a.coverage["conditions"].status == "provided"
    detail = coverage_card(r.json()["cards"])["detail"]
    assert "prefetch.labs: NoSuchType/x: unknown resourceType" in detail


def test_rest_api_still_rejects_a_malformed_file_whole(client, full_prefetch):
    """The tolerant reading is the hook's: POST /screen keeps its 400 naming the resource."""
    bundle = copy.deepcopy(full_prefetch["conditions"])
    bundle["entry"].append({"resource": {"resourceType": "Condition", "id": "x", "subject": 5}})
    bundle["entry"].append({"resource": full_prefetch["patient"]})
    r = client.post("/screen?as_of=2019-12-31", json=bundle)
    assert r.status_code == 400
    assert "subject" in r.json()["issue"][0]["diagnostics"]


# -- the fast path reads what the reader reads -----------------------------------------------

def test_fast_path_gives_the_readers_resources(synthea_patient):
    import gzip

    from msc_screen.fhir.reader import read_bytes
    from msc_screen.server.cds.prefetch import read_value

    raw = gzip.decompress(synthea_patient["path"].read_bytes())
    got = read_value(raw, "x", synthea_patient["id"])
    assert not got.problems and not got.foreign and not got.unreadable
    assert got.result.resources == read_bytes(raw, "x").resources
    other = read_value(raw, "x", "someone-else")
    assert other.result.resources == [] and other.foreign
    assert other.problems == [f"held only another patient's data ({len(other.foreign)} "
                              "resource(s), left out)"]


def test_whole_chart_with_urn_uuid_references_is_the_patients(client, seen, synthea_patient):
    """A Synthea transaction Bundle as one prefetch value: its urn:uuid references name the
    Patient in the same value, so nothing is taken for another patient's."""
    import gzip

    import orjson

    chart = orjson.loads(gzip.decompress(synthea_patient["path"].read_bytes()))
    chart["entry"] = [e for e in chart["entry"]
                      if e["resource"]["resourceType"] != "DocumentReference"]
    r = client.post(PV, json=request(synthea_patient["id"],
                                     prefetch={"patient": None, "conditions": chart}))
    assert r.status_code == 200
    cards = assert_valid_response(r.json())
    assert not any(c["summary"].startswith("Another patient's data") for c in cards)
    a = seen[-1]
    assert a.coverage["conditions"].status == "provided" and a.coverage["conditions"].count
    assert a.coverage["demographics"].status == "provided"
    # the other keys were not sent and there is no fhirServer: named, not read as "none"
    assert a.coverage["laboratory"].status == "provided"  # the chart holds lab results…
    assert a.coverage["documents"].status == "not-provided"  # …and (here) no notes
    assert "documents: not provided — documents: not sent" in coverage_card(cards)["detail"]
