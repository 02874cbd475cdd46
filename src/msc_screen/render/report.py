"""The population report: one self-contained HTML file (inline SVG plots, inline CSS).

Built from bounded counters (``batch.assemble.Stats``), deterministic (no run timestamps, fixed
SVG ids) so a resumed run writes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..batch.assemble import Stats
    from ..knowledge.compiled import CompiledRuleset

TEMPLATES = Path(__file__).with_name("templates")
DECISIONS = ("contraindicated", "physician-review", "needs-information",
             "no-contraindication-found")
DECISION_COLOURS = {"contraindicated": "#b2182b", "physician-review": "#ef8a62",
                    "needs-information": "#fddb6d", "no-contraindication-found": "#67a9cf"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # text stays text (small, fast SVG); the report names a font stack every system has
    matplotlib.rcParams.update({"font.family": "DejaVu Sans","svg.hashsalt": "msc-screen", "svg.fonttype": "none",
                                "font.size": 10, "axes.spines.top": False,
                                "axes.spines.right": False})
    return plt


def _svg(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _plt().close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def decision_plot(stats: Stats) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 2.4))
    names = list(DECISIONS)[::-1]
    vals = [stats.decisions.get(d, 0) for d in names]
    bars = ax.barh(names, vals, color=[DECISION_COLOURS[d] for d in names])
    total = max(1, stats.total)
    for b, v in zip(bars, vals, strict=True):
        ax.text(b.get_width() + total * 0.01, b.get_y() + b.get_height() / 2,
                f"{v:,} ({100 * v / total:.1f}%)", va="center")
    ax.set_xlim(0, max([*vals, 1]) * 1.3)
    ax.set_xlabel("patients")
    ax.set_title("Decisions")
    return _svg(fig)


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
                      "present": stats.present.get(rid, 0), "remaining": remaining})
    return steps


def funnel_plot(stats: Stats, steps: list[dict[str, Any]]) -> str:
    plt = _plt()
    labels = ["All patients"] + [f"{s['title']}" for s in steps]
    remaining = [stats.total] + [s["remaining"] for s in steps]
    excluded = [0] + [s["excluded"] for s in steps]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(labels) + 1.0))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, remaining, color="#4d9221", label="still without a finding")
    ax.barh(y, excluded, left=remaining, color="#c51b7d", label="excluded at this step")
    total = max(1, stats.total)
    for yi, r, e in zip(y, remaining, excluded, strict=True):
        note = f"{r:,}" + (f"  (−{e:,})" if e else "")
        ax.text(r + e + total * 0.01, yi, note, va="center", fontsize=9)
    ax.set_yticks(y, labels)
    ax.set_xlim(0, total * 1.25)
    ax.set_xlabel("patients remaining")
    ax.set_title("Attrition funnel (rules in order; a patient leaves at the first present rule)")
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    return _svg(fig)


def heatmap(stats: Stats, groups: list[str], present: dict[tuple[str, str], int],
            totals: dict[str, int], title: str) -> str:
    plt = _plt()
    rules = stats.rules
    data = [[100.0 * present.get((rid, g), 0) / totals[g] if totals.get(g) else 0.0
             for g in groups] for rid, _ in rules]
    fig, ax = plt.subplots(figsize=(1.1 * len(groups) + 4.5, 0.36 * len(rules) + 1.4))
    vmax = max([max(row) for row in data] + [1.0])
    im = ax.imshow(data, cmap="Reds", vmin=0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(groups)), [f"{g}\n(n={totals.get(g, 0):,})" for g in groups])
    ax.set_yticks(range(len(rules)), [t for _, t in rules])
    for i, row in enumerate(data):
        for j, v in enumerate(row):
            if totals.get(groups[j]):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if v > vmax * 0.6 else "black")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="% with the finding present", shrink=0.8)
    ax.spines[:].set_visible(False)
    return _svg(fig)


def render_report(stats: Stats, ruleset: CompiledRuleset, args: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from ..batch.assemble import BANDS

    steps = funnel(stats)
    bands = [b for b in BANDS if stats.band_total.get(b)]
    sexes = sorted(stats.sex_total)
    plots = {
        "decisions": decision_plot(stats),
        "funnel": funnel_plot(stats, steps),
        "age": heatmap(stats, bands, stats.band_present, stats.band_total,
                       "Rule prevalence by age band (%)") if bands else None,
        "sex": heatmap(stats, sexes, stats.sex_present, stats.sex_total,
                       "Rule prevalence by sex (%)") if sexes else None,
    }
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(["html", "j2"]))
    tmpl = env.get_template("report.html.j2")
    rules = [{"id": r.id, "title": r.title, "severity": r.severity,
              "present": stats.present.get(r.id, 0), "unknown": stats.unknown.get(r.id, 0)}
             for r in ruleset.rules]
    return tmpl.render(
        stats=stats, steps=steps, plots=plots, rules=rules, args=args,
        decisions=[(d, stats.decisions.get(d, 0), DECISION_COLOURS[d]) for d in DECISIONS],
        ruleset=ruleset.ruleset_info, policy=ruleset.policy_info,
        quality=sorted(stats.quality.items(), key=lambda kv: (-kv[1], kv[0]))[:40],
        error_kinds=sorted(stats.error_kinds.items(), key=lambda kv: (-kv[1], kv[0]))[:40],
    )
