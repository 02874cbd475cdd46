"""The population report: one self-contained HTML file (Vega-Lite plots, inline CSS and JS).

Built from bounded counters (``batch.assemble.Stats``). The plots are Vega-Lite specifications
drawn in the browser by vega, vega-lite and vega-embed, whose minified builds (``vendor/``) are
inlined, so the file opens offline and fetches nothing; drawing in Python (matplotlib) cost over
a second per run, this costs milliseconds. Every plot's numbers are also in a plain table for
screen readers and for readers without JavaScript. Deterministic: no run timestamps, numbers
formatted here, so a resumed run writes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import functools
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..model import DECISIONS

if TYPE_CHECKING:
    from jinja2 import Template

    from ..batch.assemble import Stats
    from ..knowledge.compiled import CompiledRuleset

TEMPLATES = Path(__file__).with_name("templates")
VENDOR = Path(__file__).with_name("vendor")
VENDOR_SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")  # load order
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"  # an identifier; never fetched
DECISION_COLOURS = {"contraindicated": "#b2182b", "physician-review": "#ef8a62",
                    "needs-information": "#fddb6d", "no-contraindication-found": "#67a9cf"}
REMAINING_COLOUR, EXCLUDED_COLOUR = "#4d9221", "#c51b7d"
HEAT_RANGE = ["#fff5f0", "#a50f15"]  # 0 % near white (Vega's "reds" scheme starts pink)
FONT = 'system-ui, -apple-system, "Segoe UI", sans-serif'
LABEL_LIMIT = 520  # px: the longest rule title fits whole (Vega-Lite's default 180 clips it)
CONFIG = {
    "font": FONT, "background": "white", "view": {"stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 11, "labelLimit": LABEL_LIMIT},
    "legend": {"labelFontSize": 11, "titleFontSize": 11, "labelLimit": LABEL_LIMIT},
    "title": {"fontSize": 14, "anchor": "start", "offset": 10},
}
WRAP = 50  # characters per line of a funnel label (the longest title takes two)
CODES_TOP = 25  # codes in no value set shown in the report (all of them: terminology-audit.csv)
COVERAGE_TOP = 15  # coverage patterns shown (the most common; per kind, every pattern counts)
_SOURCE_MAP = re.compile(rb"\n//# sourceMappingURL=\S+\s*\Z")


@functools.cache
def vendor_js() -> str:
    """The vendored scripts as inline ``<script>`` elements, read once per process.

    The trailing source-map comment is dropped (the maps are not shipped; a browser's developer
    tools would try to fetch them). A script holding ``</script`` or ``<!--`` would end or
    confuse the element, so it is refused rather than silently altered.
    """
    parts = []
    for name in VENDOR_SCRIPTS:
        path = VENDOR / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RuntimeError(f"report script missing: {path} ({exc.strerror})") from None
        data = _SOURCE_MAP.sub(b"\n", data)
        lowered = data.lower()
        if b"</script" in lowered or b"<!--" in lowered:
            raise RuntimeError(f"report script {path} cannot be inlined: it contains "
                               "'</script' or '<!--'")
        parts.append(f'<script data-lib="{name}">{data.decode("utf-8")}</script>')
    return "\n".join(parts)


def script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element: every ``<`` becomes ``\\u003c``.

    That covers ``</script>``, ``</`` in general and ``<!--`` in any string (rule titles, error
    reasons), and stays valid JSON for ``JSON.parse``.
    """
    return orjson.dumps(value).decode("utf-8").replace("<", "\\u003c")


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "–"


def _spec(description: str, title: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": SCHEMA, "description": description, "title": title, "config": CONFIG,
            **body}


def decision_plot(stats: Stats) -> dict[str, Any]:
    values = [{"decision": d, "n": stats.decisions.get(d, 0),
               "label": f"{stats.decisions.get(d, 0):,} ({_pct(stats.decisions.get(d, 0), stats.total)})"}
              for d in DECISIONS]
    return _spec("Bar chart of patients per decision; the same numbers are in the table below.",
                 "Decisions", {
        "width": 420, "height": {"step": 28},
        "data": {"values": values},
        "encoding": {
            "y": {"field": "decision", "type": "nominal", "sort": list(DECISIONS), "title": None},
            "x": {"field": "n", "type": "quantitative", "title": "patients",
                  "scale": {"domain": [0, max(1, stats.total)], "nice": False}},
        },
        "layer": [
            {"mark": {"type": "bar"},
             "encoding": {"color": {"field": "decision", "type": "nominal", "legend": None,
                                    "scale": {"domain": list(DECISIONS),
                                              "range": [DECISION_COLOURS[d] for d in DECISIONS]}},
                          "tooltip": [{"field": "decision"}, {"field": "label", "title": "patients"}]}},
            {"mark": {"type": "text", "align": "left", "baseline": "middle", "dx": 5, "fontSize": 11},
             "encoding": {"text": {"field": "label"}}},
        ],
    })


def funnel(stats: Stats) -> list[dict[str, Any]]:
    """Attrition in rule order: each rule removes the patients it is the first to exclude."""
    steps = []
    remaining = stats.total
    for rid, title in stats.rules:
        if rid not in stats.funnel_rules:
            continue
        excluded = stats.first_exclusion.get(rid, 0)
        remaining -= excluded
        steps.append({"rule": rid, "title": title, "excluded": excluded,
                      "present": stats.present.get(rid, 0), "remaining": remaining,
                      "excluded_pct": _pct(excluded, stats.total),
                      "remaining_pct": _pct(remaining, stats.total)})
    return steps


def _wrap(label: str) -> list[str]:
    """A long rule title on two lines, so the funnel fits the page without clipping it."""
    return textwrap.wrap(label, WRAP) or [label]


def funnel_plot(stats: Stats, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacked bars, one row per step in rule order, each labelled with counts and shares."""
    total = stats.total
    rows = [("All patients", total, 0, total)] + [
        ("\n".join(_wrap(f"{i}. {s['title']}")), s["remaining"], s["excluded"], s["present"])
        for i, s in enumerate(steps, 1)]
    still, gone = "still without a finding", "excluded at this step"
    bars, labels = [], []
    for step, remaining, excluded, present in rows:
        bars.append({"step": step, "part": still, "order": 0, "n": remaining,
                     "share": _pct(remaining, total)})
        bars.append({"step": step, "part": gone, "order": 1, "n": excluded,
                     "share": _pct(excluded, total), "present": present})
        text = f"{remaining:,} ({_pct(remaining, total)})"
        if excluded:
            text += f"  · {excluded:,} excluded ({_pct(excluded, total)})"
        labels.append({"step": step, "end": remaining + excluded, "label": text})
    order = [r[0] for r in rows]
    lines = max(len(_wrap(step)) for step in order)
    return _spec("Attrition funnel: patients still without a finding after each rule, in rule "
                 "order; the same numbers are in the table below.",
                 "Attrition funnel (rules in order; a patient leaves at the first present rule)", {
        "width": 380, "height": {"step": max(24, 14 * lines + 10)},
        "encoding": {
            "y": {"field": "step", "type": "nominal", "sort": order, "title": None,
                  "scale": {"paddingInner": 0.25},
                  "axis": {"labelFontSize": 12, "labelExpr": "split(datum.value, '\\n')"}},
        },
        "layer": [
            {"data": {"values": bars}, "mark": {"type": "bar"},
             "encoding": {
                 "x": {"field": "n", "type": "quantitative", "stack": "zero",
                       "title": "patients remaining",
                       "scale": {"domain": [0, max(1, total)], "nice": False}},
                 "order": {"field": "order", "type": "quantitative"},
                 "color": {"field": "part", "type": "nominal", "title": None,
                           "scale": {"domain": [still, gone],
                                     "range": [REMAINING_COLOUR, EXCLUDED_COLOUR]},
                           "legend": {"orient": "top", "direction": "horizontal"}},
                 "tooltip": [{"field": "step", "title": "step"}, {"field": "part"},
                             {"field": "n", "title": "patients", "format": ","},
                             {"field": "share", "title": "of all patients"}]}},
            {"data": {"values": labels},
             "mark": {"type": "text", "align": "left", "baseline": "middle", "dx": 5,
                      "fontSize": 11},
             "encoding": {"x": {"field": "end", "type": "quantitative",
                                "title": "patients remaining",
                                "scale": {"domain": [0, max(1, total)], "nice": False}},
                          "text": {"field": "label"}}},
        ],
    })


def _unique_titles(stats: Stats) -> list[str]:
    seen: set[str] = set()
    out = []
    for rid, title in stats.rules:
        out.append(title if title not in seen else f"{title} ({rid})")
        seen.add(title)
    return out


def prevalence(stats: Stats, groups: list[str], present: dict[tuple[str, str], int],
               totals: dict[str, int]) -> list[list[float]]:
    """Percent of each group with each rule present (rows: rules in order; columns: groups)."""
    return [[100.0 * present.get((rid, g), 0) / totals[g] if totals.get(g) else 0.0
             for g in groups] for rid, _ in stats.rules]


def heatmap(stats: Stats, groups: list[str], data: list[list[float]], totals: dict[str, int],
            title: str, what: str) -> dict[str, Any]:
    titles = _unique_titles(stats)
    columns = [f"{g}\n(n={totals.get(g, 0):,})" for g in groups]
    vmax = max([v for row in data for v in row] + [1.0])
    values = [{"rule": titles[i], "group": columns[j], "pct": round(v, 3), "label": f"{v:.1f}"}
              for i, row in enumerate(data) for j, v in enumerate(row)]
    return _spec(f"Heatmap of the percent of patients with each rule present, by {what}; the "
                 "same numbers are in the table below.", title, {
        "width": {"step": 64}, "height": {"step": 22},
        "data": {"values": values},
        "encoding": {
            "x": {"field": "group", "type": "nominal", "sort": columns, "title": None,
                  "axis": {"orient": "bottom", "labelAngle": 0, "labelExpr": "split(datum.value, '\\n')",
                           "labelPadding": 4, "domain": False, "ticks": False}},
            "y": {"field": "rule", "type": "nominal", "sort": titles, "title": None,
                  "axis": {"domain": False, "ticks": False}},
        },
        "layer": [
            {"mark": {"type": "rect", "stroke": "white", "strokeWidth": 1},
             "encoding": {
                 "color": {"field": "pct", "type": "quantitative", "title": "% present",
                           "scale": {"domain": [0, vmax], "range": HEAT_RANGE,
                                     "interpolate": "hcl"},
                           "legend": {"gradientLength": 160}},
                 "tooltip": [{"field": "rule"}, {"field": "group", "title": what},
                             {"field": "label", "title": "% present"}]}},
            {"mark": {"type": "text", "baseline": "middle", "fontSize": 10},
             "encoding": {
                 "text": {"field": "label"},
                 "color": {"condition": {"test": f"datum.pct > {vmax * 0.6!r}", "value": "white"},
                           "value": "black"}}},
        ],
    })


@functools.cache
def _template() -> Template:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("report.html.j2")


def _table(stats: Stats, groups: list[str], data: list[list[float]],
           totals: dict[str, int]) -> dict[str, Any]:
    return {"groups": [(g, totals.get(g, 0)) for g in groups],
            "rows": [(rid, title, [f"{v:.1f}" for v in row])
                     for (rid, title), row in zip(stats.rules, data, strict=True)]}


def completeness(stats: Stats) -> list[dict[str, Any]]:
    """Per kind of record read: how many, how many without a usable date, how many with no
    code in a code system the knowledge base knows (they can never match a rule)."""
    from ..batch.stats import NO_DATE, NO_KNOWN_CODE, READ, RECORD_KINDS

    out = []
    for _, name, _, _ in RECORD_KINDS:
        n = stats.records.get((name, READ), 0)
        if not n:
            continue
        nd, nk = stats.records.get((name, NO_DATE), 0), stats.records.get((name, NO_KNOWN_CODE), 0)
        out.append({"kind": name, "read": n, "no_date": nd, "no_date_pct": _pct(nd, n),
                    "no_code": nk, "no_code_pct": _pct(nk, n)})
    return out


def code_audit(stats: Stats, top: int = CODES_TOP) -> dict[str, Any]:
    """The terminology audit's table for the data-quality section: the ``top`` codes in no
    value set carried by the most patients (cells as ``msc-screen terminology audit`` prints
    them), how many there are in all, and how many of them have each main verdict."""
    from ..terminology.audit import OUTCOME_LABEL, OUTCOMES, table_rows

    rows = stats.codes.rows()
    verdicts = [(OUTCOME_LABEL[o], sum(1 for r in rows if r.outcome == o)) for o in OUTCOMES]
    return {"rows": table_rows(rows[:top]), "total": len(rows), "top": top,
            "verdicts": [(label, n) for label, n in verdicts if n]}


def coverage_table(stats: Stats, ruleset: CompiledRuleset, args: dict[str, Any],
                   top: int = COVERAGE_TOP) -> dict[str, Any]:
    """Patients per coverage pattern (the summary's ``coverage_gaps``: the kinds of data not
    provided or incomplete): the ``top`` most common with their decisions and how many are
    needs-information only for lack of data; per kind, the patients without it (every
    pattern counted); and the kinds declared complete for the run (``--complete``)."""
    from ..batch.stats import INCOMPLETE, UNANSWERED

    per: dict[str, dict[str, int]] = {}
    for (pattern, decision), n in stats.coverage.items():
        d = per.setdefault(pattern, {})
        d[decision] = d.get(decision, 0) + n
    ordered = sorted(per.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    rows = []
    for pattern, decisions in ordered[:top]:
        n = sum(decisions.values())
        rows.append({"pattern": pattern, "patients": n, "share": _pct(n, stats.total),
                     "decisions": [decisions.get(d, 0) for d in DECISIONS],
                     "data_only": stats.data_only.get(pattern, 0)})
    missing: dict[str, int] = {}
    partial: dict[str, int] = {}
    for pattern, decisions in per.items():
        n = sum(decisions.values())
        for token in filter(None, pattern.split(",")):
            if token.endswith(INCOMPLETE):
                k = token[:-len(INCOMPLETE)]
                partial[k] = partial.get(k, 0) + n
            else:
                missing[token] = missing.get(token, 0) + n
    titles = {k.id: k.title for k, _ in ruleset.coverage}
    kinds = [{"id": kid, "title": title, "missing": missing.get(kid, 0),
              "missing_pct": _pct(missing.get(kid, 0), stats.total),
              "incomplete": partial.get(kid, 0)} for kid, title in titles.items()]
    unanswered = "questionnaire" + UNANSWERED
    if missing.get(unanswered):
        kinds.append({"id": unanswered, "title": "Questions a rule needs left unanswered "
                      "(a questionnaire was given)", "missing": missing[unanswered],
                      "missing_pct": _pct(missing[unanswered], stats.total), "incomplete": 0})
    needs_info = stats.decisions.get("needs-information", 0)
    data_only = sum(stats.data_only.values())
    complete = list(args.get("complete") or ())
    return {"rows": rows, "patterns": len(per), "top": top, "kinds": kinds,
            "complete": [(k, titles.get(k, k)) for k in complete],
            "needs_info": needs_info, "data_only": data_only,
            "data_only_pct": _pct(data_only, stats.total),
            "full": sum(per.get("", {}).values()),
            "decision_names": list(DECISIONS)}


def render_report(stats: Stats, ruleset: CompiledRuleset, args: dict[str, Any]) -> str:
    from markupsafe import Markup

    from ..batch.assemble import BANDS

    steps = funnel(stats)
    bands = [b for b in BANDS if stats.band_total.get(b)]
    sexes = sorted(stats.sex_total)
    plots: dict[str, Any] = {"decisions": decision_plot(stats),
                             "funnel": funnel_plot(stats, steps)}
    tables: dict[str, Any] = {}
    if bands:
        data = prevalence(stats, bands, stats.band_present, stats.band_total)
        plots["age"] = heatmap(stats, bands, data, stats.band_total,
                               "Rule prevalence by age band (% with the finding present)",
                               "age band")
        tables["age"] = _table(stats, bands, data, stats.band_total)
    if sexes:
        data = prevalence(stats, sexes, stats.sex_present, stats.sex_total)
        plots["sex"] = heatmap(stats, sexes, data, stats.sex_total,
                               "Rule prevalence by sex (% with the finding present)", "sex")
        tables["sex"] = _table(stats, sexes, data, stats.sex_total)
    rules = [{"id": r.id, "title": r.title, "severity": r.severity,
              "present": stats.present.get(r.id, 0), "unknown": stats.unknown.get(r.id, 0)}
             for r in ruleset.rules]
    return _template().render(
        stats=stats, steps=steps, plots=plots, tables=tables, rules=rules, args=args,
        plots_json=Markup(script_json(plots)),  # noqa: S704 - escaped by script_json
        vendor_js=Markup(vendor_js()),  # noqa: S704 - checked by vendor_js
        decisions=[(d, stats.decisions.get(d, 0), DECISION_COLOURS[d],
                    _pct(stats.decisions.get(d, 0), stats.total)) for d in DECISIONS],
        ruleset=ruleset.ruleset_info, policy=ruleset.policy_info,
        quality=sorted(stats.quality.items(), key=lambda kv: (-kv[1], kv[0]))[:40],
        completeness=completeness(stats),
        codes=code_audit(stats),
        coverage=coverage_table(stats, ruleset, args),
        error_kinds=sorted(stats.error_kinds.items(), key=lambda kv: (-kv[1], kv[0]))[:40],
    )
