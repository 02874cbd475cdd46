"""The per-patient value-set index is only a shortcut: findings and bytes never change."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given

from msc_screen.api import default_notes_extractor, load_records
from msc_screen.engine.context import Context, age_on
from msc_screen.engine.coverage import provided, record_coverage
from msc_screen.engine.evaluate import (
    _note_mentions,
    _plan,
    evaluate,
    evaluate_rule,
    with_coverage,
)
from msc_screen.engine.index import record_tokens, rule_tokens
from msc_screen.engine.safety_net import safety_net
from msc_screen.knowledge import get_ruleset
from msc_screen.model import PatientRecord

from .test_properties import AS_OF, SETTINGS, patients


def _both_ways(rec: PatientRecord, as_of: dt.date, policy: str | None = None) -> int:
    """Evaluate every rule with the index and with a full scan; returns rules skipped."""
    rs = get_ruleset(policy)
    mentions, _ = _note_mentions(rec.notes, default_notes_extractor())
    age = age_on(rec.birth_date.lo, as_of) if rec.birth_date else None
    net = safety_net(rs)
    fast = Context(record=rec, as_of=as_of, age=age, mentions=mentions,
                   tokens=record_tokens(rec, rs, mentions, net), net=net)
    slow = Context(record=rec, as_of=as_of, age=age, mentions=mentions, tokens=None, net=net)
    skipped = 0
    for rule, _, _, _, adds in _plan(rs):
        a, b = evaluate_rule(rule, fast), evaluate_rule(rule, slow)
        assert a == b, rule.id
        skipped += fast.tokens is not None and rule_tokens(rule).isdisjoint(fast.tokens)
        fast.findings[rule.id] = a
        slow.findings[rule.id] = b
        if adds is not None and fast.tokens is not None:  # as evaluate() does
            fast.tokens.add(adds[a.status])
    return skipped


@SETTINGS
@given(patients())
def test_index_never_changes_a_finding(res: list[dict[str, Any]]) -> None:
    records, errors = load_records(res)
    assert not errors
    for rec in records:
        for policy in (None, "conservative"):
            _both_ways(rec, AS_OF, policy)


def _slow_assessment(rec: PatientRecord, as_of: dt.date, policy: str | None) -> tuple[Any, ...]:
    """Every rule by a full scan, in order, no memo or shortcut: (decision, findings)."""
    from msc_screen.engine.evaluate import _order, decide

    rs = get_ruleset(policy)
    mentions, _ = _note_mentions(rec.notes, default_notes_extractor())
    age = age_on(rec.birth_date.lo, as_of) if rec.birth_date else None
    coverage = record_coverage(rec, rs)
    ctx = Context(record=rec, as_of=as_of, age=age, mentions=mentions, tokens=None,
                  net=safety_net(rs), coverage=coverage, provided=provided(coverage))
    for rule in rs.rules:
        ctx.findings[rule.id] = with_coverage(rule, evaluate_rule(rule, ctx), ctx)
    ordered = tuple(sorted(ctx.findings.values(), key=_order))
    return decide(ordered), ordered


@SETTINGS
@given(patients())
def test_evaluate_with_every_shortcut_equals_a_full_scan(res: list[dict[str, Any]]) -> None:
    """``evaluate`` (index, per-rule memos by sex and age, finding tokens) against a plain
    evaluation of every rule; twice, so the second run reads the memos the first filled."""
    records, _ = load_records(res)
    for rec in records:
        for policy in (None, "conservative"):
            want = _slow_assessment(rec, AS_OF, policy)
            for _ in range(2):
                a = evaluate(rec, get_ruleset(policy), AS_OF, default_notes_extractor())
                assert (a.decision, a.findings) == want


@SETTINGS
@given(patients())
def test_assessment_json_is_orjson_of_its_dict(res: list[dict[str, Any]]) -> None:
    records, _ = load_records(res)
    rs = get_ruleset()
    for rec in records:
        a = evaluate(rec, rs, AS_OF, default_notes_extractor())
        assert a.to_json() == orjson.dumps(a.to_dict())


def test_index_agrees_on_demo_and_synthea_patients(synthea_dir: Path) -> None:
    """Real records: coded in many systems, free text, notes, questionnaires."""
    from msc_screen.synth.demo import build_demo

    sources: list[Any] = [p.resources for p in build_demo(dt.date(2019, 1, 1))]
    sources += sorted(synthea_dir.glob("*.json*"))[:40]
    skipped = 0
    for src in sources:
        records, _ = load_records(src)
        for rec in records:
            for day in (dt.date(2012, 1, 1), dt.date(2019, 1, 1)):
                skipped += _both_ways(rec, day)
    assert skipped > 0  # the shortcut is actually taken
