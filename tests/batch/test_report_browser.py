"""The batch report renders in headless Chromium with every plot loaded; the screenshot is kept
under test-output/ for a look by eye."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import batch

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.mark.browser
@pytest.mark.xdist_group("batch-browser")
def test_report_renders_without_missing_images(population, tmp_path, test_output):
    if not CHROMIUM.exists():
        pytest.skip("Chromium missing at /usr/bin/chromium (scripts/ensure-chromium.sh)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    out = tmp_path / "r"
    batch([population["bundles"]], out)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto((out / "report.html").as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth, e.naturalHeight])")
            assert len(images) == 4
            for alt, complete, w, h in images:
                assert complete and w > 100 and h > 50, (alt, w, h)
            assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
            funnel = page.locator("#funnel img")
            assert funnel.bounding_box()["height"] > 300  # one readable row per rule
            page.screenshot(path=str(test_output / "batch-report.png"), full_page=True)
            funnel.screenshot(path=str(test_output / "batch-report-funnel.png"))
        finally:
            browser.close()
