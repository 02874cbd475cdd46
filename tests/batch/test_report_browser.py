"""The batch report draws every Vega-Lite plot in headless Chromium, offline, with no console or
page errors and no request beyond the file itself; the screenshots are kept under test-output/
for a look by eye (the funnel must be readable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import batch

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PLOTS = ("decisions", "funnel", "age", "sex")


@pytest.mark.browser
@pytest.mark.xdist_group("batch-browser")
def test_report_draws_every_plot_offline(population, tmp_path, test_output):
    if not CHROMIUM.exists():
        pytest.skip("Chromium missing at /usr/bin/chromium (scripts/ensure-chromium.sh)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    out = tmp_path / "r"
    batch([population["bundles"]], out)
    report = out / "report.html"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            failed: list[str] = []
            problems: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(report.as_uri())
            page.wait_for_selector("body[data-plots]", timeout=20_000)
            assert page.get_attribute("body", "data-plots") == "ready", problems

            for name in PLOTS:
                svg = page.locator(f"#plot-{name} svg")
                assert svg.count() == 1, name
                box = svg.bounding_box()
                assert box and box["width"] > 200 and box["height"] > 100, (name, box)
                bars = page.locator(f"#plot-{name} svg .mark-rect.role-mark path")
                texts = page.locator(f"#plot-{name} svg .mark-text.role-mark text")
                assert bars.count() >= 4 and texts.count() >= 4, name
            # one bar (two stacked parts) and one label per funnel step, nothing clipped
            steps = page.locator("#funnel table tr").count() - 1  # header row
            labels = page.locator("#plot-funnel .role-axis-label text").all_text_contents()
            assert "All patients" in labels, labels
            assert not [t for t in labels if "…" in t], labels  # Vega's mark of a clipped label
            svg_box = page.locator("#plot-funnel svg").bounding_box()
            div_box = page.locator("#plot-funnel").bounding_box()
            assert svg_box["width"] <= div_box["width"] + 1, (svg_box, div_box)  # no scrolling
            texts = page.locator("#plot-funnel .mark-text.role-mark text").all_text_contents()
            assert len(texts) == steps and all("%" in t for t in texts), texts
            assert page.locator("#plot-funnel svg").bounding_box()["height"] > 300

            assert problems == []
            assert failed == []
            assert requests == [report.as_uri()]  # the file itself; no CDN, no fetch
            page.screenshot(path=str(test_output / "batch-report.png"), full_page=True)
            page.locator("#plot-funnel").screenshot(
                path=str(test_output / "batch-report-funnel.png"))
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.xdist_group("batch-browser")
def test_report_without_javascript_keeps_the_numbers(population, tmp_path):
    """With JavaScript off the page says so and every plot's table is still there."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium missing at /usr/bin/chromium (scripts/ensure-chromium.sh)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    out = tmp_path / "r"
    batch([population["bundles"]], out)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(java_script_enabled=False)
            page.goto((out / "report.html").as_uri())
            assert "with JavaScript off" in page.locator("p.note").inner_text()
            assert page.locator("svg").count() == 0
            for section in ("#decisions", "#funnel", "#prevalence"):
                assert page.locator(f"{section} table").count() >= 1, section
            assert page.locator("#prevalence details table").count() == 2
        finally:
            browser.close()
