"""CSRF, link isolation, roles, login throttling, idle timeout, cookies and headers."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from msc_screen.store.clinic_models import AuditEntry, Review

from .conftest import new_browser
from .helpers import Browser, Clock, answer_all, baseline_answers, csrf, make_app


def _count(client: TestClient, model: type) -> int:
    with client.app.state.clinic.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_post_without_or_with_wrong_csrf_is_refused(web: tuple[TestClient, Browser]) -> None:
    c, b = web
    b.login("staff1")
    r = c.post("/clinic/patients", data={"name": "X"})
    assert r.status_code == 403 and "security token" in r.text
    r = c.post("/clinic/patients", data={"name": "X", "csrf_token": "0" * 64})
    assert r.status_code == 403
    other = new_browser(c)  # a token minted for another browser's cookie
    stolen = csrf(other.get("/login").text)
    r = c.post("/clinic/patients", data={"name": "X", "csrf_token": stolen})
    assert r.status_code == 403
    r = c.post("/login", data={"username": "staff1", "password": "staff-password-1"})
    assert r.status_code == 403


def test_a_link_sees_only_its_own_form(web: tuple[TestClient, Browser]) -> None:
    c, b = web
    b.login("staff1")
    pa, pb = b.new_patient("Alice A"), b.new_patient("Bea B")
    link_a, link_b = b.invite(pa), b.invite(pb)
    patient = new_browser(c)
    r = patient.submit(f"{link_a}/section/0", f"{link_a}/section/0",
                       {"pregnant-now": "yes", "action": "later"})
    assert r.status_code == 200
    # B's link shows no trace of A's answer
    page_b = patient.get(f"{link_b}/section/0").text
    assert 'value="yes" checked' not in page_b
    assert 'value="yes" checked' in patient.get(f"{link_a}/section/0").text
    # an unknown or altered token is refused; no page takes a patient id
    assert patient.get("/p/not-a-real-token").status_code == 404
    assert patient.get(link_a[:-2] + "xx").status_code == 404
    assert patient.get(f"/p/{pa}").status_code == 404
    # patients cannot reach clinic pages
    r = patient.get(f"/clinic/patients/{pa}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_link_is_single_use_and_expires(web: tuple[TestClient, Browser], clock: Clock) -> None:
    c, b = web
    b.login("staff1")
    pid = b.new_patient()
    link = b.invite(pid)
    patient = new_browser(c)
    review = answer_all(patient, link, baseline_answers())
    r = patient.c.post(f"{link}/submit", data={"csrf_token": csrf(review.text)})
    assert r.status_code == 200
    assert patient.get(link).status_code == 410
    r = patient.c.post(f"{link}/submit", data={"csrf_token": csrf(review.text)})
    assert r.status_code == 410
    stale = b.invite(pid)
    clock.advance(15 * 24 * 3600)
    b.login("staff1")
    assert patient.get(stale).status_code == 404


def test_staff_cannot_sign_off(web: tuple[TestClient, Browser]) -> None:
    c, b = web
    b.login("staff1")
    pid = b.new_patient()
    r = b.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/rescreen", {})
    page = b.get(f"/clinic/patients/{pid}").text
    assert "Only a physician can sign off" in page
    with c.app.state.clinic.read() as s:
        from msc_screen.store.clinic_models import StoredAssessment
        aid = s.scalar(select(StoredAssessment.id))
    r = c.post(f"/clinic/patients/{pid}/signoff",
               data={"assessment_id": str(aid), "outcome": "proceed-to-consultation",
                     "reason": "x", "csrf_token": csrf(page)})
    assert r.status_code == 403
    assert _count(c, Review) == 0
    admin = new_browser(c)
    admin.login("admin1")
    r = admin.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/signoff",
                     {"assessment_id": str(aid), "outcome": "not-a-candidate"})
    assert r.status_code == 403 and _count(c, Review) == 0
    # staff cannot open admin pages
    assert b.get("/admin").status_code == 403


def test_login_backoff_lets_the_right_password_in(web: tuple[TestClient, Browser],
                                                   clock: Clock) -> None:
    """Issue 15 item 6: failures make the next attempt wait (doubling); an attempt during the
    wait is refused without checking the password, and after it the right password works.
    Failures are audited with the user name and the client address."""
    c, b = web
    for _ in range(4):
        r = b.submit("/login", "/login", {"username": "doc1", "password": "wrong-password"})
        assert r.status_code == 401
    r = b.submit("/login", "/login", {"username": "doc1", "password": "doctor-password-1"},
                 follow_redirects=False)
    assert r.status_code == 429 and "Wait 1 second " in r.text  # 3 free, then 1 s, 2 s, ...
    clock.advance(2)
    r = b.submit("/login", "/login", {"username": "doc1", "password": "doctor-password-1"},
                 follow_redirects=False)
    assert r.status_code == 303
    with c.app.state.clinic.read() as s:  # type: ignore[attr-defined]
        failed = s.scalars(select(AuditEntry).where(AuditEntry.action == "login.failed")).all()
    assert len(failed) == 4
    assert failed[0].details["username"] == "doc1"
    assert failed[0].details["address"] == "testclient"


def test_idle_session_times_out(web: tuple[TestClient, Browser], clock: Clock) -> None:
    _c, b = web
    b.login("staff1")
    assert b.get("/clinic").status_code == 200
    clock.advance(20 * 60)
    assert b.get("/clinic").status_code == 200  # activity keeps it alive
    clock.advance(31 * 60)
    r = b.get("/clinic", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_cookies_and_security_headers(tmp_path: Path) -> None:
    app = make_app(tmp_path, host="10.1.2.3")
    with TestClient(app, base_url="https://clinic.example") as c:
        r = c.get("/login")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
        r = c.post("/login", data={"username": "staff1", "password": "staff-password-1",
                                   "csrf_token": csrf(r.text)}, follow_redirects=False)
        assert r.status_code == 303
        sess = r.headers["set-cookie"].lower()
        assert sess.startswith("msc_session=")
        assert "httponly" in sess and "secure" in sess and "samesite=strict" in sess
    # pages have no inline script or style for the CSP to allow
    for path in ("/login", "/safety"):
        with TestClient(app, base_url="https://clinic.example") as c:
            html = c.get(path).text
        assert "<script>" not in html and "style=" not in html and "<style" not in html


def test_strict_csp_is_scoped_to_the_web_pages(web: tuple[TestClient, Browser]) -> None:
    c, _ = web
    assert "content-security-policy" in c.get("/safety").headers
    api = c.get("/fhir/Questionnaire/msc-prescreen")
    assert "content-security-policy" not in api.headers and "set-cookie" not in api.headers
    assert api.headers["x-content-type-options"] == "nosniff"


def test_login_redirect_stays_on_this_site(web: tuple[TestClient, Browser]) -> None:
    _, b = web
    for target, expected in (("/clinic/patients/1", "/clinic/patients/1"),
                             ("//evil.example/x", "/clinic"), ("/\\evil.example", "/clinic"),
                             ("https://evil.example", "/clinic")):
        r = b.submit("/login", "/login", {"username": "staff1",
                                          "password": "staff-password-1", "next": target},
                     follow_redirects=False)
        assert r.headers["location"] == expected
