"""Issue 14's journeys in Chromium (Playwright driving Debian's /usr/bin/chromium against a
real uvicorn server), patients on a phone (390×844) and clinicians on a desktop: the page
validates per section and refuses out-of-range values, a woman's past cancer is history, a
man is not asked about pregnancy, staff read the whole response, the physician signs off with
a standard reason from the findings-first screen and a re-screen keeps it, a link is revoked,
the audit page shows the views and the sign-off reason, and the printed PDF carries the
patient's identifier on every page. axe-core on every page, page titles and the focus ring's
contrast checked; screenshots under test-output/web-round2-phone/ and -desktop/."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from .helpers import PASSWORDS, live_server, make_app
from .test_browser import Pages, _login, axe_source, browser  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


def _luminance(rgb: tuple[float, ...]) -> float:
    def ch(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (ch(x) for x in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    la, lb = (_luminance(tuple(float(x) for x in re.findall(r"[\d.]+", c)[:3])) for c in (a, b))
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


class Checked(Pages):
    """Pages plus the page title (no markup in it) and no sideways scrolling on a phone."""

    def check(self, page: Any, name: str) -> None:
        title = page.title()
        if "<" in title or not title.endswith(" · msc-screen"):
            self.problems.append(f"{name}: page title {title!r}")
        width = page.viewport_size["width"] if page.viewport_size else 0
        scroll = page.evaluate("() => document.documentElement.scrollWidth")
        if width and width < 500 and scroll > width + 1:
            self.problems.append(f"{name}: scrolls sideways on a phone ({scroll}px)")
        super().check(page, name)


def _focus_ring(page: Any, selector: str) -> float:
    """Contrast between the focused element's outline and the page background behind it."""
    page.focus(selector)
    got = page.evaluate("""(sel) => {
        const el = document.querySelector(sel);
        const cs = getComputedStyle(el);
        let bg = 'rgb(255, 255, 255)', n = el.parentElement;
        while (n) { const c = getComputedStyle(n).backgroundColor;
          if (c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') { bg = c; break; }
          n = n.parentElement; }
        return {ring: cs.outlineColor, width: cs.outlineWidth, style: cs.outlineStyle, bg};
    }""", selector)
    assert got["style"] != "none" and float(got["width"][:-2]) >= 2, got
    return _contrast(got["ring"], got["bg"])


def _add_patient(staff: Any, name: str, birth: str, sex: str) -> None:
    staff.goto(staff.url.split("/clinic")[0] + "/clinic")
    staff.get_by_label("Name").fill(name)
    staff.get_by_label("Birth date").fill(birth)
    staff.get_by_label("Sex", exact=True).select_option(sex)
    staff.get_by_role("button", name="Add patient").click()


def _new_link(staff: Any) -> str:
    staff.get_by_role("button", name="Create a questionnaire link").click()
    link: str = staff.locator("code.link-out").inner_text().strip()
    return link


def _no_to_rest(page: Any) -> None:
    for group in page.locator("fieldset").all():
        radios = group.locator("input[type=radio]")
        if not radios.count() or not group.is_visible():
            continue
        if group.locator("input:checked").count():
            continue
        pick = group.locator("input[value=no], input[value=false], input[value=none]")
        (pick.first if pick.count() else radios.first).check()


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_round2_journeys(tmp_path: Path, browser: Any, axe_source: str,  # noqa: F811
                         test_output: Path, device: str) -> None:
    """Patients on ``device``; clinicians on a desktop, and on the phone run the queue and
    the physician's screen on a phone too."""
    from playwright.sync_api import expect
    from pypdf import PdfReader

    out = test_output / f"web-round2-{device}"
    patient_ctx = PHONE if device == "phone" else DESKTOP
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        old.unlink()
    pages = Checked(out, axe_source)
    app = make_app(tmp_path)
    with live_server(app) as base:
        staff = pages.watch(browser.new_context().new_page())
        _login(staff, base, "staff1")
        ring = _focus_ring(staff, "#name")
        assert ring >= 3, f"focus ring contrast {ring:.2f}:1"
        _add_patient(staff, "Beatriz Demo", "1970-03-04", "female")
        link = _new_link(staff)
        pages.check(staff, "staff-new-link")
        staff.reload()  # post/redirect/get: a refresh makes no second link and hides it
        assert staff.locator("code.link-out").count() == 0
        assert staff.locator("table.invites tbody tr").count() == 1

        # --- the patient, on a phone: per-page validation, ranges, follow-ups, not sure
        phone = pages.watch(browser.new_context(**patient_ctx).new_page())
        phone.goto(link)
        pages.check(phone, "patient-start")
        phone.get_by_role("link", name="Start").click()
        phone.locator("button[value=next]").click()
        assert phone.title().startswith("Error: ")
        assert phone.evaluate("() => document.activeElement.classList.contains('error-summary')")
        assert phone.locator("input[aria-invalid=true]").count() >= 2
        pages.check(phone, "patient-section-errors")
        phone.locator("input[name=pregnant-now][value=yes]").check()
        expect(phone.locator("#announce")).to_contain_text("How many weeks pregnant")
        weeks = phone.locator("input[name=pregnancy-weeks]")
        # the follow-up sits directly under its trigger
        order = phone.evaluate("""() => [...document.querySelectorAll('.question')]
            .map(q => q.id)""")
        assert order.index("q-pregnancy-weeks") == order.index("q-pregnant-now") + 1
        weeks.fill("60")
        phone.locator("input[name=breastfeeding-now][value=no]").check()
        url = phone.url
        phone.locator("button[value=next]").click()
        assert phone.url == url and "from 1 to 44" in phone.locator("form").inner_text()
        pages.check(phone, "patient-range-refused")
        phone.locator("input[name=pregnant-now][value=unsure]").check()  # "not sure"
        expect(weeks).to_be_hidden()
        phone.locator("button[value=next]").click()
        while "/section/" in phone.url:
            if phone.locator("input[name=cancer-past]").count():
                phone.locator("input[name=cancer-now][value=no]").check()
                phone.locator("input[name=cancer-past][value=yes]").check()
                phone.locator("input[name=cancer-past-type]").fill("Breast cancer")
                phone.locator("input[name=cancer-past-year]").fill("2030-01-01")
                _no_to_rest(phone)
                phone.locator("button[value=next]").click()
                assert "not in the future" in phone.locator("form").inner_text()
                phone.locator("input[name=cancer-past-year]").fill("2023-11-15")
                pages.check(phone, "patient-cancer-section")
            if phone.locator("input[name=infection-now]").count():
                phone.locator("input[name=infection-now][value=yes]").check()
                phone.locator("input[name=infection-details]").fill("fever since Monday")
            _no_to_rest(phone)
            phone.locator("button[value=next]").click()
            phone.wait_for_load_state()
        assert phone.url.endswith("/review")
        pages.check(phone, "patient-review")
        phone.get_by_role("link", name=re.compile("Change.*What type of cancer was it")).click()
        assert "/section/" in phone.url
        phone.get_by_role("button", name="Save and return to your answers").click()
        assert phone.url.endswith("/review")
        phone.get_by_role("button", name="Send my answers").click()
        body = phone.locator("main").inner_text()
        assert "Cancer in the past" in body and "Active malignancy" not in body
        assert "if you have cancer now" not in body.lower()
        assert "A copy of your answers" in body and "fever since Monday" in body
        assert "eligible" not in body.lower() and "cleared" not in body.lower()
        pages.check(phone, "patient-thank-you")
        phone.reload()
        assert "Thank you" in phone.locator("h1").inner_text()
        phone.goto(link)
        assert "already been sent" in phone.locator("main").inner_text()
        pages.check(phone, "patient-link-used")

        # --- a healthy man: no pregnancy questions
        _add_patient(staff, "Tom Demo", "1980-01-01", "male")
        man_link = _new_link(staff)
        man = pages.watch(browser.new_context(**patient_ctx).new_page())
        man.goto(man_link)
        assert "Pregnancy" not in man.locator("main").inner_text()
        man.get_by_role("link", name="Start").click()
        _no_to_rest(man)
        man.get_by_role("button", name="Save and finish later").click()
        assert "saved" in man.locator("h1").inner_text()
        pages.check(man, "patient-saved")
        man.goto(man_link)
        man.get_by_role("link", name="Continue").click()  # the first unfinished section
        assert man.locator("input[name=cancer-now]").count() == 3  # not section 1 again
        while "/section/" in man.url:
            assert man.locator("input[name=pregnant-now]").count() == 0
            _no_to_rest(man)
            man.locator("button[value=next]").click()
            man.wait_for_load_state()
        man.get_by_role("button", name="Send my answers").click()
        assert "Thank you" in man.locator("h1").inner_text()

        # --- staff read the whole response; a second link is revoked
        staff.goto(f"{base}/clinic")
        staff.get_by_label("Search").fill("1970-03")
        staff.get_by_role("button", name="Show").click()
        assert staff.locator("table.queue tbody tr").count() == 1
        pages.check(staff, "queue-search")
        staff.get_by_role("link", name="Beatriz Demo").click()
        answers = staff.locator("section[aria-labelledby=answers-h]").inner_text()
        assert "fever since Monday" in answers and "Breast cancer" in answers
        revoked = _new_link(staff)
        staff.get_by_role("button", name=re.compile("Revoke")).click()
        assert "was revoked" in staff.locator("main").inner_text()
        pages.check(staff, "staff-patient-revoked")
        phone.goto(revoked)
        assert phone.locator("h1").inner_text() == "This link is not valid"
        pages.check(phone, "patient-revoked-link")

        # --- the physician: findings first, absent collapsed, standard reason, confirmation
        doc = pages.watch(browser.new_context(**patient_ctx).new_page())
        _login(doc, base, "doc1")
        doc.get_by_role("link", name="Beatriz Demo").click()
        cards = doc.locator("section[aria-labelledby=findings-h] > article.finding")
        assert cards.count() >= 1
        assert all(c.get_attribute("class") != "finding s-absent" for c in cards.all())
        assert doc.locator("details.absent").get_attribute("open") is None
        first = doc.locator("section[aria-labelledby=findings-h] article.finding").first
        assert first.is_visible() and "History of malignancy" in doc.locator(
            "section[aria-labelledby=findings-h]").inner_text()
        active = doc.locator("#f-active-malignancy")
        assert not active.is_visible()  # absent: inside the collapsed list
        pages.check(doc, "physician-findings-first")
        # the typed reason survives the session ending (signed in again in the same tab)
        doc.get_by_label("Reason in your own words").fill("Ask about the 2023 treatment")
        patient_url = doc.url
        doc.context.clear_cookies()
        doc.reload()
        assert "/login" in doc.url
        doc.get_by_label("User name").fill("doc1")
        doc.get_by_label("Password").fill(PASSWORDS["doc1"])
        doc.get_by_role("button", name="Sign in").click()
        doc.wait_for_url(patient_url)
        expect(doc.get_by_label("Reason in your own words")).to_have_value(
            "Ask about the 2023 treatment")
        doc.get_by_label("More information needed").check()
        doc.get_by_label("Standard reason").select_option("patient-to-clarify")
        doc.get_by_role("button", name="Sign off").click()
        notice = doc.locator("#signed-notice").inner_text()
        assert "Signed off." in notice and "Next patient" in notice
        pages.check(doc, "physician-signed")
        staff.reload()
        staff.get_by_role("button", name="Re-screen now").click()
        assert "the sign-off stands" in staff.locator("main").inner_text()
        doc.reload()
        assert "It was made on an earlier screening" in doc.locator(
            "section[aria-labelledby=signoff-h]").inner_text()

        # --- the printed report: identifier and page number on every page
        doc.get_by_role("link", name="Printable report").click()
        pages.check(doc, "report")
        doc.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
        pdf = doc.pdf(format="A4", print_background=True)
        (out / "report.pdf").write_bytes(pdf)
        reader = PdfReader(io.BytesIO(pdf))
        texts = [p.extract_text() for p in reader.pages]
        assert len(texts) >= 2, "the report should span pages for this check"
        for i, t in enumerate(texts, 1):
            flat = " ".join(t.split())
            assert "Beatriz Demo" in flat and "#1" in flat and "1970-03-04" in flat, (i, flat[:200])
            assert f"Page {i} of {len(texts)}" in flat, (i, flat[-200:])
        assert "Signature" in " ".join(texts)

        # --- the audit page: views, the print and the sign-off reason
        admin = pages.watch(browser.new_context().new_page())
        _login(admin, base, "admin1")
        admin.goto(f"{base}/admin/audit?patient=1")
        log = admin.locator("table.audit").inner_text()
        for action in ("patient.view", "report.view", "report.print", "signoff.create"):
            assert action in log, action
        assert "patient to clarify" in log.lower() or "clarify" in log
        assert "matches the chain" in log
        pages.check(admin, "audit-log")
        admin.goto(f"{base}/admin")
        pages.check(admin, "admin")
        admin.goto(f"{base}/account")
        pages.check(admin, "account")
        queue_phone = pages.watch(browser.new_context(**patient_ctx).new_page())
        _login(queue_phone, base, "staff1")
        pages.check(queue_phone, "queue-phone")

    assert not pages.problems, "\n".join(pages.problems)
