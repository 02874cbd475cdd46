"""End to end in Chromium (Playwright driving Debian's /usr/bin/chromium against a real
uvicorn server): a pregnant patient completes the questionnaire, staff see her in the queue,
a physician signs off with a reason, the audit chain verifies. Every page is checked with
axe-core (no serious or critical violations) and screenshotted under test-output/web/."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from msc_screen.cli import app as cli_app

from .helpers import PASSWORDS, live_server, make_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
AXE_CACHE = Path.home() / ".cache" / "msc-screen" / "axe"


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe.min.js from the npm registry (``npm pack axe-core``), cached per machine."""
    target = AXE_CACHE / "axe.min.js"
    if not target.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm not found: cannot fetch axe-core for the accessibility checks")
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        tgz = next(AXE_CACHE.glob("axe-core-*.tgz"), None)
        if tgz is None:
            subprocess.run([npm, "pack", "axe-core@4", "--silent", "--pack-destination",
                            str(AXE_CACHE)], check=True, capture_output=True, timeout=180)
            tgz = next(AXE_CACHE.glob("axe-core-*.tgz"))
        with tarfile.open(tgz) as tf:
            member = tf.extractfile("package/axe.min.js")
            assert member is not None
            target.write_bytes(member.read())
    return target.read_text()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium missing (run scripts/ensure-chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Pages:
    """Screenshot and accessibility check of every page visited."""

    def __init__(self, out: Path, axe: str) -> None:
        self.out = out
        self.axe = axe
        self.n = 0
        self.problems: list[str] = []

    def watch(self, page: Any) -> Any:
        """Record Content-Security-Policy violations the page reports."""
        page.on("console", lambda m: self.problems.append(f"console: {m.text}")
                if "Content Security Policy" in m.text else None)
        return page

    def check(self, page: Any, name: str) -> None:
        self.n += 1
        page.screenshot(path=str(self.out / f"{self.n:02d}-{name}.png"), full_page=True)
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.evaluate(self.axe + "\n;0")
        found = page.evaluate("""async () => {
            const r = await axe.run(document);
            return {passes: r.passes.length, violations: r.violations.map(v => ({
              id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))};
        }""")
        assert found["passes"] > 5, f"axe did not run on {name}"
        for v in found["violations"]:
            if v["impact"] in ("serious", "critical"):
                self.problems.append(f"{name}: {v['id']} ({v['impact']}) {v['help']} "
                                     f"at {v['nodes']}")


def _login(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/clinic")


def _answer_section(page: Any) -> None:
    """Pregnant: yes (14 weeks); 'No' (or the first option) everywhere else."""
    for group in page.locator("fieldset").all():
        radios = group.locator("input[type=radio]")
        if not radios.count() or not group.is_visible():
            continue
        name = radios.first.get_attribute("name")
        if name == "pregnant-now":
            group.locator("input[value=yes]").check()
            continue
        pick = group.locator("input[value=no], input[value=false]")
        (pick.first if pick.count() else radios.first).check()
    weeks = page.locator("input[name=pregnancy-weeks]")
    if weeks.count():
        weeks.fill("14")


def test_patient_staff_physician_end_to_end(tmp_path: Path, browser: Any, axe_source: str,
                                            test_output: Path) -> None:
    from playwright.sync_api import expect

    out = test_output / "web"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    pages = Pages(out, axe_source)
    app = make_app(tmp_path)
    db_url = app.state.settings.db_url
    with live_server(app) as base:
        staff = pages.watch(browser.new_context().new_page())
        staff.goto(f"{base}/login")
        pages.check(staff, "login")
        _login(staff, base, "staff1")
        staff.get_by_label("Name").fill("Maria Example")
        staff.get_by_label("Birth date").fill("1992-03-04")
        staff.get_by_label("Sex").select_option("female")
        staff.get_by_role("button", name="Add patient").click()
        staff.get_by_role("button", name="Create a questionnaire link").click()
        link = staff.locator("code.link-out").inner_text().strip()
        assert link.startswith(base + "/p/")
        pages.check(staff, "patient-new-link")

        phone = browser.new_context(viewport={"width": 390, "height": 844},
                                    is_mobile=True, has_touch=True).new_page()
        pages.watch(phone)
        phone.goto(link)
        pages.check(phone, "questionnaire-start")
        phone.get_by_role("link", name="Start").click()
        weeks = phone.locator("input[name=pregnancy-weeks]")
        expect(weeks).to_be_hidden()  # the page script hides a follow-up until it applies
        phone.locator("input[name=pregnant-now][value=yes]").check()
        expect(weeks).to_be_visible()
        n = 0
        while "/section/" in phone.url:
            n += 1
            _answer_section(phone)
            pages.check(phone, f"questionnaire-section-{n}")
            phone.locator("button[value=next]").click()
            phone.wait_for_load_state()
        assert phone.url.endswith("/review")
        pages.check(phone, "questionnaire-review")
        phone.get_by_role("button", name="Send my answers").click()
        body = phone.locator("main").inner_text()
        assert "A physician will discuss this with you" in body
        assert "eligible" not in body.lower() and "cleared" not in body.lower()
        pages.check(phone, "questionnaire-result")
        phone.goto(link)
        assert "already been sent" in phone.locator("main").inner_text()
        phone.goto(f"{base}/p/not-a-token")
        pages.check(phone, "link-not-valid")
        phone.goto(f"{base}/safety")
        pages.check(phone, "safety-information")

        staff.goto(f"{base}/clinic")
        row = staff.locator("tr", has_text="Maria Example")
        assert "Contraindication reported" in row.inner_text()
        pages.check(staff, "queue")

        doc = pages.watch(browser.new_context().new_page())
        _login(doc, base, "doc1")
        doc.get_by_role("link", name="Maria Example").click()
        assert "pregnant-now" in doc.locator("main").inner_text()
        pages.check(doc, "patient-findings")
        doc.get_by_label("Proceed to consultation").check()
        doc.get_by_role("button", name="Sign off").click()
        assert "reason is required" in doc.locator("main").inner_text()
        doc.get_by_label("Proceed to consultation").check()
        doc.get_by_label("Reason in your own words", exact=False).fill("Negative serum hCG today; "
                                                     "patient was unsure")
        doc.get_by_role("button", name="Sign off").click()
        history = doc.locator("main").inner_text()
        assert "Negative serum hCG today" in history and "doc1" in history
        pages.check(doc, "patient-signed-off")
        doc.get_by_role("link", name="Printable report").click()
        assert "Pre-screening report" in doc.locator("h1").inner_text()
        pages.check(doc, "report")
        doc.emulate_media(media="print")
        doc.screenshot(path=str(out / "report-print.png"), full_page=True)

        admin = pages.watch(browser.new_context().new_page())
        _login(admin, base, "admin1")
        admin.goto(f"{base}/admin")
        pages.check(admin, "admin")
        staff.goto(f"{base}/clinic/patients/1")
        assert "Only a physician can sign off" in staff.locator("main").inner_text()

    assert not pages.problems, "\n".join(pages.problems)
    assert pages.n >= 12
    result = CliRunner().invoke(cli_app, ["audit", "verify", "--db", db_url])
    assert result.exit_code == 0, result.output


def _answer_required_only(page: Any) -> None:
    """'No' (or the first option) to the required questions; the optional ones left blank."""
    for group in page.locator("fieldset").all():
        radios = group.locator("input[type=radio]")
        if not radios.count() or not group.is_visible():
            continue
        if "(required)" not in group.locator("legend").inner_text():
            continue
        pick = group.locator("input[value=no], input[value=false]")
        (pick.first if pick.count() else radios.first).check()


def test_records_coverage_and_uploads_in_the_browser(tmp_path: Path, browser: Any,
                                                     axe_source: str,
                                                     test_output: Path) -> None:
    """A patient with no data is 'more information needed' (not green) with the coverage
    panel; another person's Bundle waits on the confirmation page, is confirmed with a reason,
    then withdrawn; the same file again is one upload; blank answers are 'not answered' on
    the patient's result page. Every page passes axe-core."""
    from .records import bundle, cancer, person

    out = test_output / "web-records"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    pages = Pages(out, axe_source)
    other = tmp_path / "bob.json"
    other.write_bytes(bundle(person("Bob", "Other", "1950-05-05", "male"), cancer()))
    app = make_app(tmp_path)
    db_url = app.state.settings.db_url
    with live_server(app) as base:
        staff = pages.watch(browser.new_context().new_page())
        _login(staff, base, "staff1")
        staff.get_by_label("Name").fill("Ann Test")
        staff.get_by_label("Birth date").fill("1990-01-01")
        staff.get_by_label("Sex").select_option("female")
        staff.get_by_label("Identifier (optional)").fill("urn:mrn|123")
        staff.get_by_role("button", name="Add patient").click()
        staff.get_by_role("button", name="Re-screen now").click()
        main = staff.locator("main").inner_text()
        assert "More information needed" in main and "No clinical data." in main
        assert staff.locator(".d-no-contraindication-found").count() == 0
        assert staff.locator("article.finding h3").first.inner_text().startswith(
            "Data available for screening")
        pages.check(staff, "patient-no-data")

        staff.get_by_label("FHIR Bundle (JSON) or NDJSON file").set_input_files(str(other))
        staff.get_by_role("button", name="Upload and re-screen").click()
        assert "Check whose records this file holds" in staff.locator("h1").inner_text()
        assert "Bob Other" in staff.locator("main").inner_text()
        pages.check(staff, "upload-confirm")
        staff.get_by_role("button", name="Confirm and read this file").click()
        # the browser refuses an empty reason (required); the server checks it too
        assert "/uploads/" in staff.url
        staff.get_by_label("Why these are this patient's records").fill(
            "Referral letter names the same patient; checked with her by phone")
        staff.get_by_role("button", name="Confirm and read this file").click()
        main = staff.locator("main").inner_text()
        assert "confirmed as this patient's records" in main
        assert "Contraindication reported" in main
        pages.check(staff, "patient-upload-confirmed")

        staff.get_by_label("FHIR Bundle (JSON) or NDJSON file").set_input_files(str(other))
        staff.get_by_role("button", name="Upload and re-screen").click()
        assert "is already uploaded for this patient" in staff.locator("main").inner_text()
        assert staff.locator("table.uploads tbody tr").count() == 1

        staff.get_by_role("link", name="bob.json").click()
        pages.check(staff, "upload-detail")
        staff.get_by_label("Reason for withdrawing").fill("Not her records after all")
        staff.get_by_role("button", name="Withdraw the file").click()
        main = staff.locator("main").inner_text()
        assert "was withdrawn" in main and "Withdrawn: no longer read" in main
        assert "Contraindication reported" not in main.split("Physician sign-off")[0]
        staff.get_by_role("link", name="Printable report").click()
        assert "Data this screening had" in staff.locator("main").inner_text()
        pages.check(staff, "report-coverage")

        staff.goto(f"{base}/clinic/patients/1")
        staff.get_by_role("button", name="Create a questionnaire link").click()
        link = staff.locator("code.link-out").inner_text().strip()
        phone = pages.watch(browser.new_context(viewport={"width": 390, "height": 844},
                                                is_mobile=True, has_touch=True).new_page())
        phone.goto(link)
        phone.get_by_role("link", name="Start").click()
        while "/section/" in phone.url:
            _answer_required_only(phone)
            phone.locator("button[value=next]").click()
            phone.wait_for_load_state()
        phone.get_by_role("button", name="Send my answers").click()
        body = phone.locator("main").inner_text()
        assert "Questions you left blank" in body and "not answered" in body
        assert "eligible" not in body.lower() and "cleared" not in body.lower()
        pages.check(phone, "result-not-answered")

        staff.goto(f"{base}/clinic/patients/1")
        coverage = staff.locator("section.coverage").inner_text()
        assert "Not answered" in coverage
        pages.check(staff, "patient-not-answered")

    assert not pages.problems, "\n".join(pages.problems)
    result = CliRunner().invoke(cli_app, ["audit", "verify", "--db", db_url])
    assert result.exit_code == 0, result.output
