"""The batch report without a browser: deterministic bytes, self-contained (no fetchable URL),
JSON safely inlined, balanced markup, vendored scripts as pinned in vendor/README.md."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser

import pytest

from msc_screen.batch.assemble import Stats
from msc_screen.knowledge import get_ruleset
from msc_screen.render import report
from msc_screen.render.report import render_report, script_json, vendor_js

ARGS = {"as_of": "2026-01-01", "inputs": ["pop/"]}
HOSTILE = "Evil </script><script>alert(1)</script> <!-- title"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source"}


@pytest.fixture(scope="module")
def ruleset():
    return get_ruleset()


def make_stats(ruleset, titles: dict[str, str] | None = None) -> Stats:
    titles = titles or {}
    stats = Stats([(r.id, titles.get(r.id, r.title)) for r in ruleset.rules],
                  frozenset(r.id for r in ruleset.rules if r.severity != "recommendation"))
    ids = [r.id for r in ruleset.rules]
    for i in range(60):
        row = {rid: "absent" for rid in ids}
        row[ids[i % len(ids)]] = "present" if i % 3 else "unknown"
        row.update(patient_id=f"p{i}", decision="contraindicated" if i % 3 else
                   "needs-information", age_band=("18-34", "50-64", "80+")[i % 3],
                   sex=("female", "male")[i % 2])
        stats.add_row(row)
    stats.quality.update({"Condition onset missing": 4, "unknown code <x>": 1})
    stats.add_error({"source": "bad.json", "line": 3, "resource": "Patient", "field": "id",
                     "reason": "not JSON </script>"})
    return stats


class Structure(HTMLParser):
    """Tags in order, attributes with URLs, and unbalanced elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "poster", "data") or (
                    value and re.search(r"url\(|https?:", value) and name == "style"):
                self.urls.append(f"{tag}[{name}]={value}")
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def parse(html: str) -> Structure:
    s = Structure()
    s.feed(html)
    s.close()
    return s


def plots_json(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-plots">(.*?)</script>', html,
                  re.S)
    assert m
    return json.loads(m.group(1))


def test_same_inputs_give_identical_bytes(ruleset):
    a = render_report(make_stats(ruleset), ruleset, ARGS)
    b = render_report(make_stats(ruleset), ruleset, ARGS)
    assert a.encode() == b.encode()


def test_page_is_balanced_self_contained_and_draws_four_plots(ruleset):
    html = render_report(make_stats(ruleset), ruleset, ARGS)
    s = parse(html)
    assert s.errors == [] and s.stack == []
    assert s.urls == []  # nothing to fetch: no src/href anywhere (scripts are inline)
    assert not {"img", "link", "iframe", "object", "embed"} & s.tags
    assert [sc.get("data-lib") for sc in s.scripts if sc.get("data-lib")] == [
        "vega.min.js", "vega-lite.min.js", "vega-embed.min.js"]
    specs = plots_json(html)
    assert list(specs) == ["decisions", "funnel", "age", "sex"]
    for name in specs:
        assert f'id="plot-{name}"' in html
    assert "<noscript>" in html
    assert 'renderer: "svg", actions: false' in html


def test_funnel_is_in_rule_order_with_counts_and_shares(ruleset):
    stats = make_stats(ruleset)
    spec = plots_json(render_report(stats, ruleset, ARGS))["funnel"]
    order = spec["encoding"]["y"]["sort"]
    titles = [t for rid, t in stats.rules if rid in stats.funnel_rules]
    assert order[0] == "All patients" and len(order) == len(titles) + 1
    for i, (label, title) in enumerate(zip(order[1:], titles, strict=True), 1):
        assert label.replace("\n", " ") == f"{i}. {title}"
        assert all(len(line) <= report.WRAP for line in label.split("\n"))
    labels = spec["layer"][1]["data"]["values"]
    assert labels[0]["label"] == "60 (100.0%)"
    excluded = [v for v in labels if "excluded" in v["label"]]
    assert excluded and all(re.fullmatch(r"[\d,]+ \(\d+\.\d%\)  · [\d,]+ excluded \(\d+\.\d%\)",
                                         v["label"]) for v in excluded)
    remaining = [v["end"] for v in labels]
    assert remaining == sorted(remaining, reverse=True)


def test_hostile_text_cannot_end_a_script(ruleset):
    rid = ruleset.rules[0].id
    stats = make_stats(ruleset, {rid: HOSTILE})
    html = render_report(stats, ruleset, ARGS)
    s = parse(html)
    assert s.errors == [] and s.stack == []
    # the only script elements are the JSON block, the three libraries and the bootstrap
    assert len(s.scripts) == 5
    assert "<script>alert(1)" not in html
    assert "\\u003c/script>" in html and "\\u003c!-- title" in html
    assert "&lt;/script&gt;" in html  # the tables autoescape it
    assert plots_json(html)["funnel"]["encoding"]["y"]["sort"][1].replace("\n", " ") == \
        f"1. {HOSTILE}"


def test_script_json_escapes_every_angle_bracket():
    text = script_json({"a": "</script><!--x-->", "b": ["<\u2028"]})
    assert "<" not in text
    assert json.loads(text) == {"a": "</script><!--x-->", "b": ["<\u2028"]}


def test_empty_population_renders_without_heatmaps(ruleset):
    stats = Stats([(r.id, r.title) for r in ruleset.rules], frozenset())
    html = render_report(stats, ruleset, ARGS)
    assert list(plots_json(html)) == ["decisions", "funnel"]
    assert parse(html).errors == []


def test_vendored_scripts_match_their_pinned_hashes_and_are_read_once():
    readme = (report.VENDOR / "README.md").read_text(encoding="utf-8")
    for name in report.VENDOR_SCRIPTS:
        digest = hashlib.sha256((report.VENDOR / name).read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(name)}` \| .* \| `{digest}` \|", readme), name
    for licence in ("LICENSE-vega", "LICENSE-vega-lite", "LICENSE-vega-embed"):
        assert "Redistribution" in (report.VENDOR / licence).read_text(encoding="utf-8")
    assert vendor_js() is vendor_js()
    assert "sourceMappingURL" not in vendor_js()
    assert vendor_js().lower().count("</script") == len(report.VENDOR_SCRIPTS)


def test_a_missing_vendored_script_is_named(ruleset, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "VENDOR", tmp_path)
    vendor_js.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"vega\.min\.js"):
            vendor_js()
    finally:
        monkeypatch.undo()
        vendor_js.cache_clear()
