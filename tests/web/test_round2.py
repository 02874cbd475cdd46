"""Issue 14 over real HTTP semantics (TestClient on the app): the whole response and answer
conflicts on the patient page, per-page validation, sex/age branching, ranges on the server,
the thank-you page after post/redirect/get, standard sign-off reasons with errors on the
field, a re-screen that changes nothing keeps the sign-off, invitation links revoked, the
queue's search/sort/paging, the audit page, admin account changes and TOTP."""

from __future__ import annotations

import re

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select

from msc_screen.store.clinic_models import AuditEntry, Review, User

from .conftest import new_browser
from .helpers import Browser, Clock, answer_all, baseline_answers, csrf, text


def _submit(patient: Browser, link: str, answers: dict[str, str]) -> str:
    review = answer_all(patient, link, answers)
    r = patient.c.post(f"{link}/submit", data={"csrf_token": csrf(review.text)},
                       follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/done")
    return r.headers["location"]


def _audit(c: TestClient, action: str) -> list[AuditEntry]:
    with c.app.state.clinic.read() as s:  # type: ignore[attr-defined]
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)
                              .order_by(AuditEntry.seq)))


def test_man_is_not_asked_about_pregnancy(web: tuple[TestClient, Browser]) -> None:
    c, staff = web
    staff.login("staff1")
    pid = staff.new_patient("Tom Test", gender="male", birth="1980-02-02")
    link = staff.invite(pid)
    patient = new_browser(c)
    start = text(patient.get(link).text)
    assert "Pregnancy" not in start and "Cancer" in start
    r = patient.get(f"{link}/section/0", follow_redirects=False)  # not his section
    assert r.status_code == 303 and r.headers["location"].endswith("/section/1")
    for n in range(1, 5):
        page = patient.get(f"{link}/section/{n}").text.lower()
        assert "pregnant" not in page and "breastfeeding" not in page
    assert "Section 1 of 4" in patient.get(f"{link}/section/1").text
    answers = baseline_answers()
    for k in ("pregnant-now", "breastfeeding-now"):
        answers.pop(k, None)
    _submit(patient, link, answers)  # required pregnancy questions are not required of him
    body = text(staff.get(f"/clinic/patients/{pid}").text)
    assert "Are you pregnant" not in body.split("Questionnaire answers", 1)[1]


def test_woman_over_55_is_not_asked_for_a_pregnancy_test(
        web: tuple[TestClient, Browser]) -> None:
    c, staff = web
    staff.login("staff1")
    link = staff.invite(staff.new_patient("Old Test", birth="1950-01-01"))
    patient = new_browser(c)
    r = patient.c.post(f"{link}/section/0", data={
        "csrf_token": csrf(patient.get(f"{link}/section/0").text), "pregnant-now": "no",
        "breastfeeding-now": "no", "action": "next"}, follow_redirects=False)
    assert r.status_code == 303
    page = patient.get(f"{link}/section/0").text
    assert "Are you pregnant" in page and "negative pregnancy test" not in page


def test_required_answers_are_checked_per_page(web: tuple[TestClient, Browser]) -> None:
    c, staff = web
    staff.login("staff1")
    link = staff.invite(staff.new_patient())
    patient = new_browser(c)
    page = patient.get(f"{link}/section/0")
    r = patient.c.post(f"{link}/section/0", data={"csrf_token": csrf(page.text),
                                                  "action": "next"})
    assert r.status_code == 422
    assert "<title>Error: Pregnancy and breastfeeding · msc-screen</title>" in r.text
    assert 'aria-invalid="true"' in r.text and "data-focus" in r.text
    assert re.search(r'<fieldset aria-describedby="[^"]*pregnant-now-error', r.text)
    # "Save and finish later" keeps what was given without asking for the rest
    r = patient.c.post(f"{link}/section/0", data={"csrf_token": csrf(page.text),
                                                  "action": "later", "pregnant-now": "no"},
                       follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/saved")


def test_out_of_range_values_are_refused_by_the_server(web: tuple[TestClient, Browser],
                                                       clock: Clock) -> None:
    c, staff = web
    staff.login("staff1")
    link = staff.invite(staff.new_patient())
    patient = new_browser(c)
    tok = csrf(patient.get(f"{link}/section/0").text)
    base = {"csrf_token": tok, "pregnant-now": "yes", "breastfeeding-now": "no",
            "action": "next"}
    r = patient.c.post(f"{link}/section/0", data={**base, "pregnancy-weeks": "60"})
    assert r.status_code == 422 and "Enter a number from 1 to 44." in r.text
    r = patient.c.post(f"{link}/section/0", data={**base, "pregnancy-weeks": "9" * 30})
    assert r.status_code == 422 and "whole number" in r.text
    r = patient.c.post(f"{link}/section/0", data={**base, "pregnancy-weeks": "14"},
                       follow_redirects=False)
    assert r.status_code == 303
    heart = next(i for i in range(8) if "heart-attack" in patient.get(
        f"{link}/section/{i}").text)
    tok = csrf(patient.get(f"{link}/section/{heart}").text)
    data = {**baseline_answers(), "csrf_token": tok, "heart-attack": "yes",
            "heart-attack-date": "2030-01-01", "action": "next"}
    r = patient.c.post(f"{link}/section/{heart}", data=data)
    assert r.status_code == 422 and "not in the future" in r.text
    fhir = c.get("/fhir/Questionnaire/msc-prescreen").json()
    items = {it["linkId"]: it for g in fhir["item"] for it in g["item"]}
    assert {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 44} \
        in items["pregnancy-weeks"]["extension"]


def test_past_cancer_is_history_and_the_whole_response_is_shown(
        web: tuple[TestClient, Browser]) -> None:
    c, staff = web
    staff.login("staff1")
    pid = staff.new_patient("Beatriz Demo", birth="1970-01-01")
    link = staff.invite(pid)
    patient = new_browser(c)
    done = _submit(patient, link, baseline_answers({
        "cancer-now": "no", "cancer-past": "yes", "cancer-past-type": "Breast cancer",
        "cancer-past-year": "2023-11-15", "infection-now": "yes",
        "infection-details": "fever since Monday"}))
    result = text(patient.get(done).text)
    assert "Cancer in the past" in result and "Active malignancy" not in result
    assert "if you have cancer now" not in result.lower()
    assert "A copy of your answers" in result and "fever since Monday" in result
    assert "Thank you" in text(patient.get(done).text)  # a refresh shows it again
    page = staff.get(f"/clinic/patients/{pid}").text
    status = re.search(r'<article class="finding s-(\w+)" id="f-active-malignancy">', page)
    assert status and status.group(1) == "absent"
    answers = text(page.split('id="answers-h"', 1)[1].split('id="invite-h"', 1)[0])
    assert "fever since Monday" in answers and "Breast cancer" in answers
    assert "When did your cancer treatment end?" in answers and "2023-11-15" in answers
    assert any(e.target == f"Patient/{pid}" for e in _audit(c, "patient.view"))


def test_contradicting_submissions_are_flagged(web: tuple[TestClient, Browser]) -> None:
    c, staff = web
    staff.login("staff1")
    pid = staff.new_patient()
    one, two = staff.invite(pid), staff.invite(pid)
    _submit(new_browser(c), one, baseline_answers({"pregnant-now": "yes",
                                                    "pregnancy-weeks": "10"}))
    _submit(new_browser(c), two, baseline_answers({"pregnant-now": "no"}))
    page = text(staff.get(f"/clinic/patients/{pid}").text)
    conflicts = page.split("Answers that contradict each other", 1)[1][:400]
    assert "Are you pregnant" in conflicts and "“Yes”" in conflicts and "“No”" in conflicts


def _signoff(doc: Browser, pid: int, **data: str) -> object:
    page = doc.get(f"/clinic/patients/{pid}").text
    aid = re.search(r'name="assessment_id" value="(\d+)"', page)
    assert aid
    return doc.c.post(f"/clinic/patients/{pid}/signoff", data={
        "csrf_token": csrf(page), "assessment_id": aid.group(1), **data},
        follow_redirects=False)


def test_signoff_reasons_errors_on_the_field_and_rescreen_keeps_it(
        web: tuple[TestClient, Browser]) -> None:
    c, staff = web
    staff.login("staff1")
    pid = staff.new_patient("Maria Example")
    _submit(new_browser(c), staff.invite(pid), baseline_answers({"pregnant-now": "yes"}))
    other = staff.new_patient("Next Person")
    staff.submit(f"/clinic/patients/{other}", f"/clinic/patients/{other}/rescreen", {})
    doc = new_browser(c)
    doc.login("doc1")
    r = _signoff(doc, pid, outcome="proceed-to-consultation",
                 reason_code="record-reviewed-no-contraindication")
    assert r.status_code == 400  # type: ignore[attr-defined]
    body = r.text  # type: ignore[attr-defined]
    assert 'id="reason-error"' in body and 'aria-describedby="reason-error"' in body
    assert 'value="proceed-to-consultation" checked' in body  # the chosen outcome is kept
    assert 'value="record-reviewed-no-contraindication" selected' in body
    r = _signoff(doc, pid, outcome="not-a-candidate", reason_code="records-requested")
    assert r.status_code == 400 and "does not fit" in r.text  # type: ignore[attr-defined]
    r = _signoff(doc, pid, outcome="proceed-to-consultation",
                 reason_code="test-result-negative", reason="Negative serum hCG today")
    assert r.status_code == 303  # type: ignore[attr-defined]
    page = text(doc.get(r.headers["location"]).text)  # type: ignore[attr-defined]
    assert "Signed off." in page and "Next patient awaiting a physician: Next Person" in page
    e = _audit(c, "signoff.create")[-1]
    assert e.details["reason_code"] == "test-result-negative"
    import hashlib
    assert e.details["reason_sha256"] == hashlib.sha256(b"Negative serum hCG today").hexdigest()
    # re-screen with nothing new: the sign-off stands, on the queue too
    r2 = staff.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/rescreen", {},
                      follow_redirects=False)
    assert "rescreened-same" in r2.headers["location"]
    page = text(doc.get(f"/clinic/patients/{pid}").text)
    assert "nothing changed, so the sign-off stands" in text(
        staff.get(r2.headers["location"]).text)
    assert "Sign-off superseded" not in page and "It was made on an earlier screening" in page
    m = re.search(rf'<tr>\s*<th scope="row"><a href="/clinic/patients/{pid}">.*?</tr>',
                  doc.get("/clinic").text, re.S)
    assert m
    row = text(m.group(0))
    assert "Proceed to consultation" in row
    # a form opened before a re-screen that changed nothing still signs (the newest one)
    stale = doc.get(f"/clinic/patients/{pid}").text
    staff.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/rescreen", {})
    aid = re.search(r'name="assessment_id" value="(\d+)"', stale).group(1)  # type: ignore[union-attr]
    r = doc.c.post(f"/clinic/patients/{pid}/signoff", data={
        "csrf_token": csrf(stale), "assessment_id": aid, "outcome": "proceed-to-consultation",
        "reason": "Negative serum hCG today"}, follow_redirects=False)
    assert r.status_code == 303
    first_report = f"/clinic/patients/{pid}/report?assessment={aid}"
    # a new upload that changes the decision supersedes it, visibly
    from .records import bundle, cancer, person, upload

    upload(staff, pid, bundle(person("Maria", "Example", "1990-01-01"), cancer()), "ehr.json")
    page = text(doc.get(f"/clinic/patients/{pid}").text)
    assert "Sign-off superseded." in page
    assert "Superseded: sign off again" in text(doc.get("/clinic?q=Maria").text)
    report = text(doc.get(first_report).text)
    assert "Superseded. A newer screening of this patient exists" in report
    assert "Physician (name)" in report and "Signature" in report


def test_invitation_links_listed_and_revoked(web: tuple[TestClient, Browser],
                                             clock: Clock) -> None:
    c, staff = web
    staff.login("staff1")
    pid = staff.new_patient()
    link = staff.invite(pid)
    page = staff.get(f"/clinic/patients/{pid}").text  # a refresh: no second link, not shown
    assert "New link" not in page and page.count("Revoke<span") == 1
    assert "2026-12-08 12:00" in text(page)  # expires in 14 days
    iid = re.search(r'/invites/(\d+)/revoke', page).group(1)  # type: ignore[union-attr]
    r = staff.c.post(f"/clinic/patients/{pid}/invites/{iid}/revoke",
                     data={"csrf_token": csrf(page)})
    assert r.status_code == 200 and "was revoked" in r.text and "Revoked" in text(r.text)
    assert new_browser(c).get(link).status_code == 404
    assert _audit(c, "invitation.revoke")[0].details["invitation"] == int(iid)


def test_queue_search_sort_and_paging(web: tuple[TestClient, Browser]) -> None:
    _c, staff = web
    staff.login("staff1")
    staff.new_patient("Beatriz Demo", birth="1961-05-05")
    staff.new_patient("Beatriz Demo", birth="1984-07-07")
    for i in range(27):
        staff.new_patient(f"Person {i:02d}", birth="2000-01-01")
    page = text(staff.get("/clinic?q=1984-07").text)
    assert "1 patient " in page and "1984-07-07" in page and "1961-05-05" not in page
    both = text(staff.get("/clinic?q=beatriz&sort=birth").text)
    assert both.index("1961-05-05") < both.index("1984-07-07")
    assert "65" in both and "42" in both  # ages on 2026-11-24
    first = staff.get("/clinic?sort=name").text
    assert "page 1 of 2" in first and 'rel="next"' in first
    assert "Person 26" in text(staff.get("/clinic?sort=name&page=2").text)
    assert "No patients match" in staff.get("/clinic?q=nobody-like-this").text
    assert "29 patients" in text(staff.get("/clinic?status=not-screened").text)


def test_audit_page_filters_and_csv(web: tuple[TestClient, Browser]) -> None:
    c, staff = web
    staff.login("staff1")
    pid = staff.new_patient()
    staff.get(f"/clinic/patients/{pid}")
    admin = new_browser(c)
    assert admin.get("/admin/audit", follow_redirects=False).status_code == 303
    admin.login("admin1")
    assert new_browser(c).get("/admin/audit.csv", follow_redirects=False).status_code == 303
    page = text(admin.get(f"/admin/audit?patient={pid}&action=patient.view").text)
    rows = page.split("Audit entries", 1)[1]
    assert "patient.view" in rows and "staff1" in rows and "patient.create" not in rows
    csv_text = admin.get(f"/admin/audit.csv?patient={pid}").text
    assert csv_text.splitlines()[0].startswith("seq,ts,actor,action")
    assert "patient.create" in csv_text and "patient.view" in csv_text
    staff2 = new_browser(c)
    staff2.login("staff1")
    assert staff2.get("/admin/audit").status_code == 403


def test_admin_changes_role_resets_password_and_totp(web: tuple[TestClient, Browser]) -> None:
    c, admin = web
    admin.login("admin1")
    with c.app.state.clinic.read() as s:  # type: ignore[attr-defined]
        uid = s.scalar(select(User.id).where(User.username == "staff1"))
    staff = new_browser(c)
    staff.login("staff1")
    r = admin.submit("/admin", f"/admin/users/{uid}/role", {"role": "physician"},
                     follow_redirects=False)
    assert r.status_code == 303
    assert staff.get("/clinic", follow_redirects=False).status_code == 303  # session ended
    r = admin.submit("/admin", f"/admin/users/{uid}/password", {"password": "short"})
    assert r.status_code == 400
    admin.submit("/admin", f"/admin/users/{uid}/password", {"password": "a-new-password-9"})
    r = staff.submit("/login", "/login", {"username": "staff1",
                                          "password": "a-new-password-9"},
                     follow_redirects=False)
    assert r.status_code == 303
    # the user enrols a second factor; sign-in then needs the code
    page = staff.submit("/account", "/account/totp", {}).text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)  # type: ignore[union-attr]
    r = staff.c.post("/account/totp/confirm", data={"csrf_token": csrf(page), "code": "000000"})
    assert r.status_code == 400
    r = staff.c.post("/account/totp/confirm", data={
        "csrf_token": csrf(page), "code": pyotp.TOTP(secret).now()}, follow_redirects=False)
    assert r.status_code == 303
    fresh = new_browser(c)
    r = fresh.submit("/login", "/login", {"username": "staff1", "password": "a-new-password-9"})
    assert r.status_code == 401 and "6-digit code" in r.text
    r = fresh.submit("/login", "/login", {"username": "staff1", "password": "a-new-password-9",
                                          "code": pyotp.TOTP(secret).now()},
                     follow_redirects=False)
    assert r.status_code == 303
    actions = [e.action for e in _audit(c, "user.role") + _audit(c, "user.password-reset")
               + _audit(c, "user.totp-enrol")]
    assert actions == ["user.role", "user.password-reset", "user.totp-enrol"]
    failed = _audit(c, "login.failed")[-1]
    assert failed.details["failed"] == "code" and failed.details["username"] == "staff1"
    with c.app.state.clinic.read() as s:  # type: ignore[attr-defined]
        assert s.scalar(select(Review).limit(1)) is None


def test_clinic_name_phone_and_next_steps_come_from_configuration(
        web: tuple[TestClient, Browser], monkeypatch: object) -> None:
    import pytest as _pytest

    from msc_screen.server.config import Settings
    from msc_screen.server.web.config import WebConfig

    mp: _pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    mp.setenv("MSC_SCREEN_CLINIC_NAME", "Lakeside Clinic")
    mp.setenv("MSC_SCREEN_CLINIC_PHONE", "+1 555 0100")
    mp.setenv("MSC_SCREEN_CLINIC_NEXT_STEPS", "We call you within a week.")
    mp.setenv("MSC_SCREEN_TRUSTED_PROXIES", "10.0.0.0/8")
    cfg = WebConfig.from_settings(Settings())
    assert cfg.clinic_name == "Lakeside Clinic" and len(cfg.trusted_proxies) == 1
    c, staff = web
    live = c.app.state.clinic.config  # type: ignore[attr-defined]
    live.clinic_name, live.clinic_phone, live.next_steps = (
        cfg.clinic_name, cfg.clinic_phone, cfg.next_steps)
    staff.login("staff1")
    link = staff.invite(staff.new_patient())
    patient = new_browser(c)
    start = text(patient.get(link).text)
    assert "the doctors at Lakeside Clinic" in start and "+1 555 0100" in start
    done = text(patient.get(_submit(patient, link, baseline_answers())).text)
    assert "We call you within a week." in done and "call Lakeside Clinic on +1 555 0100" in done
    assert 'href="tel:+15550100"' in patient.get(link + "/done").text
