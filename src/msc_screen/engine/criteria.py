"""How each kind of criterion matches a patient's records.

``lenient`` is True for criteria that *raise* concern (present_if / unknown_if): imprecise dates
are read at the end that makes a match more likely, and missing data yields an uncertain match
(review) rather than silence. Criteria that *clear* (absent_if) read dates strictly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from ..knowledge.compiled import CompiledCriterion
from ..model import Coding, DateRange, Evidence, ObservationItem
from ..terminology.valueset import KNOWN_KEYS, CompiledValueSet
from .context import Context, Match
from .coverage import describe
from .index import free_text

ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
RESOLVED_CLINICAL = frozenset({"inactive", "remission", "resolved"})
IGNORED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
UNCERTAIN_VERIFICATION = frozenset({"unconfirmed", "provisional", "differential"})
IGNORED_STATUS = frozenset({"entered-in-error", "cancelled", "not-done", "revoked"})
PRELIMINARY_OBS = frozenset({"preliminary", "registered"})
ACTIVE_MED = frozenset({"active", "on-hold", "intended", "draft"})
POSITIVE_INTERP = frozenset({"POS", "H", "HH", "HU", "A", "AA", "DET", ">"})
NEGATIVE_INTERP = frozenset({"NEG", "N", "ND", "L", "LL", "LU", "<"})
HIGH_INTERP = frozenset({"H", "HH", "HU", "A", "AA", ">"})
# Free-text results: "Negative", "not HIV positive", "HIV positive", "hCG detected" (Synthea
# writes "HIV positive" / "not HIV positive"). Negation is tested first.
_NEG_TEXT_START = ("neg", "not ", "no ", "non-reactive", "nonreactive", "false", "absent")
_NEG_TEXT_END = (" negative", " not detected", " non-reactive", " nonreactive")
_POS_TEXT_START = ("pos", "detected", "reactive", "true", "yes", "pregnant", "present")
_POS_TEXT_END = (" positive", " detected", " reactive")


def _match_vs(vss: tuple[CompiledValueSet, ...], codings: tuple[Coding, ...],
              text: str | None) -> Coding | None:
    """Codes, then text patterns of uncoded records, without assertion context: for what ends
    or excludes (a later delivery), never for what raises concern (``_hit``)."""
    for vs in vss:
        hit = vs.match(codings, text)
        if hit is not None:
            return hit
    return None


class _Hit(NamedTuple):
    """How a record belongs to a criterion's value sets."""

    coding: Coding  # the evidence's code (a text match: the text as a pseudo-coding)
    how: str | None = None  # said in the evidence when it is not a plain code match
    doubt: str | None = None  # why it only supports review
    net: bool = False  # matched by the safety net
    unknown: bool = False  # the record's words state it with uncertainty


def _hit(c: CompiledCriterion, it: Any, ctx: Context, lenient: bool) -> _Hit | None:
    """Does record ``it`` belong to ``c``'s value sets: by code; by an ingredient name in a
    display or the text (drug classes); by a text pattern, with its assertion context, when it
    has no code in a known system; or, for criteria that raise concern, by the safety net (its
    text names the rule's concept although no value set holds its codes)."""
    codings: tuple[Coding, ...] = it.codings
    for vs in c.valuesets:
        for cd in codings:
            if vs.contains(cd.system, cd.code):
                return _Hit(cd)
    text: str | None = getattr(it, "text", None)
    for vs in c.valuesets:
        if not vs.has_ingredients():
            continue
        for cd in codings:
            name = vs.ingredient_in(cd.display) if cd.display else None
            if name:
                return _Hit(cd, f"its display names the ingredient «{name}»")
        name = vs.ingredient_in(text) if text else None
        if name and text:
            return _Hit(Coding(None, text, text), f"its text names the ingredient «{name}»")
    net = ctx.net
    if not any(cd.system in KNOWN_KEYS for cd in codings):
        free = free_text(it)
        if free:
            for vs in c.valuesets:
                span = vs.text_span(free)
                if span is None:
                    continue
                a = net.assertion(free, *span) if net is not None else None
                if a is not None and not net.admissible(c.rule_id, a):  # type: ignore[union-attr]
                    continue
                words = free[span[0]:span[1]]
                unsure = a is not None and a.uncertain
                return _Hit(Coding(None, free, free), f"its text names «{words}»",
                            f"its text states «{words}» with uncertainty" if unsure else None,
                            unknown=unsure)
    if lenient and net is not None:
        for h in net.hits(c.kind, codings, text):
            if h.rule == c.rule_id:
                coding = h.coding or (codings[0] if codings else Coding(None, text or "", text))
                return _Hit(coding, None, h.reason, True, h.uncertain)
    return None


def _how(detail: str, hit: _Hit) -> str:
    return f"{detail}; {hit.how}" if hit.how else detail


def _excluded(c: CompiledCriterion, codings: tuple[Coding, ...]) -> bool:
    return bool(c.excludes) and _match_vs(c.excludes, codings, None) is not None


def _after(d: DateRange | None, as_of: dt.date) -> bool:
    """Recorded after the as-of date: not yet known on that date, so ignored."""
    return d is not None and d.lo > as_of


def _within(d: DateRange, days: int, as_of: dt.date, lenient: bool) -> bool:
    edge = as_of - dt.timedelta(days=days)
    return (d.hi if lenient else d.lo) >= edge


def _cap(ctx_cap: str | None, c: CompiledCriterion) -> str | None:
    return c.max_severity if ctx_cap is None else ctx_cap


def _match(ev: Evidence, hit: _Hit, cap: str | None, reasons: list[str]) -> Match:
    """A safety-net match supports physician review at most; a record whose own words state
    the concept with uncertainty ("rule out", "possible") makes the finding unknown, not
    present."""
    return Match(ev, "physician-review" if hit.net else cap, "; ".join(reasons) or None,
                 unknown=hit.unknown)


# ------------------------------------------------------------------------------------ condition


def condition_state(
    clinical: str | None, abatement: DateRange | None, abated: bool, as_of: dt.date,
    onset: DateRange | None = None,
) -> tuple[str, str | None]:
    """('current'|'resolved', reason-for-doubt) of a condition on the as-of date. Dates and a
    status that contradict each other are a data error: never read as resolved."""
    if abatement is not None and onset is not None and abatement.hi < onset.lo:
        return "current", (f"abatement {abatement.text} is before onset {onset.text} (a data "
                           "error); treated as current")
    if abatement is not None:
        if abatement.hi < as_of:
            if clinical in ACTIVE_CLINICAL:
                return "current", (f"clinical status {clinical} contradicts the abatement "
                                   f"{abatement.text}; treated as current")
            return "resolved", None
        return "current", None  # abated after the as-of date: ongoing then
    if clinical in ACTIVE_CLINICAL:
        if abated:
            return "current", (f"clinical status {clinical} contradicts the recorded "
                               "abatement; treated as current")
        return "current", None
    if clinical in RESOLVED_CLINICAL:
        return "resolved", None if abated else "resolved without an abatement date"
    if clinical is None:
        if abated:
            return "resolved", "clinical status missing; abatement recorded"
        return "current", "clinical status missing; treated as current"
    return "current", f"unrecognised clinical status {clinical!r}; treated as current"


def match_conditions(c: CompiledCriterion, ctx: Context, lenient: bool) -> list[Match]:
    out: list[Match] = []
    as_of = ctx.as_of
    for it in ctx.record.conditions:
        if it.verification in IGNORED_VERIFICATION:
            continue
        hit = _hit(c, it, ctx, lenient)
        if hit is None or _excluded(c, it.codings):
            continue
        start = it.onset or it.recorded
        reasons: list[str] = []
        if it.onset is not None and it.recorded is not None and it.onset.lo > it.recorded.hi:
            # recorded before it began: a data error, not a condition of the future
            reasons.append(f"onset {it.onset.text} is after the date it was recorded "
                           f"({it.recorded.text}), a data error")
            start = it.recorded
        if _after(start, as_of):
            continue
        state, doubt = condition_state(it.clinical_status, it.abatement, it.abated, as_of,
                                       it.onset)
        if (state == "current" and c.ended_by and it.onset is not None
                and _ended(ctx, c.ended_by, it.onset, as_of)):
            state, doubt = "resolved", None
        if doubt and (state == "current" or c.status != "current"):
            reasons.append(doubt)
        if hit.doubt:
            reasons.append(hit.doubt)
        if c.status == "current" and state != "current":
            continue
        if c.status == "resolved" and state != "resolved":
            continue
        if c.onset_within_days is not None:
            if it.onset is None:
                if not lenient:
                    continue
                reasons.append("onset date missing; recency cannot be established")
            elif not _within(it.onset, c.onset_within_days, as_of, lenient):
                continue
        if c.resolved_within_days is not None and state == "resolved":
            if it.abatement is None:
                if not lenient:
                    continue
                reasons.append("resolution date missing; look-back cannot be established")
            elif not _within(it.abatement, c.resolved_within_days, as_of, lenient):
                continue
        if it.verification in UNCERTAIN_VERIFICATION:
            reasons.append(f"verification status is {it.verification}")
        detail = f"clinical status {it.clinical_status or 'not recorded'}"
        if it.onset:
            detail += f"; onset {it.onset.text}"
        if it.abatement:
            detail += f"; abated {it.abatement.text}"
        elif state == "resolved":
            detail += "; resolved"
        when = it.onset or it.recorded
        ev = Evidence(
            reference=it.reference, source="fhir", code=hit.coding,
            date=when.text if when else None,
            detail=_how(detail, hit), uncertain="; ".join(reasons) or None,
        )
        out.append(_match(ev, hit, _cap("uncertain" if reasons and lenient else None, c),
                          reasons))
    return out


def _ended(ctx: Context, enders: tuple[CompiledValueSet, ...], onset: DateRange,
           as_of: dt.date) -> bool:
    """A later delivery/termination (procedure or condition) ends a pregnancy-like state."""
    for p in ctx.record.procedures:
        if p.status in IGNORED_STATUS or p.performed is None:
            continue
        if onset.lo <= p.performed.lo <= as_of and _match_vs(enders, p.codings, p.text):
            return True
    for cond in ctx.record.conditions:
        d = cond.onset or cond.recorded
        if d is None or cond.verification in IGNORED_VERIFICATION:
            continue
        if onset.lo < d.lo <= as_of and _match_vs(enders, cond.codings, cond.text):
            return True
    return False


# ---------------------------------------------------------------------------------- observation


def _obs_upper(c: CompiledCriterion, code: str, ref_high: float | None) -> float | None:
    if ref_high is not None:
        return ref_high
    return c.default_upper_limits.get(code)


def _obs_value_test(c: CompiledCriterion, it: ObservationItem, hit: Coding) -> tuple[bool, str]:
    interp = set(it.interpretation)
    text = (it.value_text or "").strip().lower()
    if c.value == "any":
        return True, "result recorded"
    if c.value in ("positive", "negative"):
        want_pos = c.value == "positive"
        vs = c.positive if want_pos else c.negative
        if vs is not None and it.value_codings and vs.match(it.value_codings) is not None:
            return True, f"coded result {it.value_codings[0].display or it.value_codings[0].code}"
        if interp & (POSITIVE_INTERP if want_pos else NEGATIVE_INTERP):
            return True, f"interpretation {', '.join(sorted(interp))}"
        if text:
            neg = text.startswith(_NEG_TEXT_START) or text.endswith(_NEG_TEXT_END)
            pos = not neg and (text.startswith(_POS_TEXT_START) or text.endswith(_POS_TEXT_END))
            if (pos and want_pos) or (neg and not want_pos):
                return True, f"result {it.value_text}"
        if it.value is not None:
            upper = _obs_upper(c, hit.code, it.ref_high)
            if upper is not None:
                above = it.value > upper or (it.value == upper and it.comparator == ">")
                if above == want_pos:
                    return True, f"value {it.value:g} {it.unit or ''} vs limit {upper:g}".strip()
        return False, ""
    if c.value in ("above-reference", "below-reference"):
        if it.value is not None:
            if c.value == "above-reference":
                upper = _obs_upper(c, hit.code, it.ref_high)
                if upper is not None:
                    src = "reference range" if it.ref_high is not None else "documented default"
                    return (it.value > upper,
                            f"value {it.value:g} {it.unit or ''} above {upper:g} ({src})")
            elif it.ref_low is not None:
                return it.value < it.ref_low, f"value {it.value:g} below {it.ref_low:g}"
        if c.value == "above-reference" and interp & HIGH_INTERP:
            return True, f"interpretation {', '.join(sorted(interp))}"
        return False, ""
    return False, ""


def match_observations(c: CompiledCriterion, ctx: Context, lenient: bool) -> list[Match]:
    as_of = ctx.as_of
    candidates: list[tuple[ObservationItem, _Hit]] = []
    for it in ctx.record.observations:
        if it.status in IGNORED_STATUS:
            continue
        hit = _hit(c, it, ctx, lenient)
        if hit is None or _excluded(c, it.codings) or _after(it.effective, as_of):
            continue
        candidates.append((it, hit))
    if c.most_recent:
        # per code, every result of the latest date: results tied on date are all considered
        # (in reference order), so the outcome never depends on the order of the input
        latest: dict[str, list[tuple[ObservationItem, _Hit]]] = {}
        for it, hit in candidates:
            prev = latest.get(hit.coding.code)
            if prev is None or _later(it.effective, prev[0][0].effective):
                latest[hit.coding.code] = [(it, hit)]
            elif not _later(prev[0][0].effective, it.effective):
                prev.append((it, hit))
        candidates = [x for k in sorted(latest)
                      for x in sorted(latest[k], key=lambda x: x[0].reference)]
    out: list[Match] = []
    for it, hit in candidates:
        reasons: list[str] = []
        if c.within_days is not None:
            if it.effective is None:
                if not lenient:
                    continue
                reasons.append("result has no date")
            elif not _within(it.effective, c.within_days, as_of, lenient):
                continue
        ok, why = _obs_value_test(c, it, hit.coding)
        if not ok:
            continue
        if it.status in PRELIMINARY_OBS:
            reasons.append(f"result status is {it.status}")
        if hit.doubt:
            reasons.append(hit.doubt)
        ev = Evidence(reference=it.reference, source="fhir", code=hit.coding,
                      date=it.effective.text if it.effective else None, detail=_how(why, hit),
                      uncertain="; ".join(reasons) or None)
        out.append(_match(ev, hit, _cap("uncertain" if reasons and lenient else None, c),
                          reasons))
    return out


def _later(a: DateRange | None, b: DateRange | None) -> bool:
    if a is None:
        return False
    if b is None:
        return True
    return (a.hi, a.lo, a.text) > (b.hi, b.lo, b.text)


# ------------------------------------------------------------------ medication / procedure / allergy


def match_medications(c: CompiledCriterion, ctx: Context, lenient: bool) -> list[Match]:
    out: list[Match] = []
    as_of = ctx.as_of
    for it in ctx.record.medications:
        if it.status in IGNORED_STATUS:
            continue
        hit = _hit(c, it, ctx, lenient)
        if hit is None or _excluded(c, it.codings) or _after(it.start, as_of):
            continue
        reasons: list[str] = [hit.doubt] if hit.doubt else []
        if c.within_days is not None:
            if it.start is None:
                if not lenient:
                    continue
                reasons.append("medication has no date")
            elif not _within(it.start, c.within_days, as_of, lenient) and not (
                it.status in ACTIVE_MED and (it.end is None or it.end.hi >= as_of)
            ):
                continue
        elif c.status == "current" and not (
            (it.status in ACTIVE_MED or it.status is None)
            and (it.end is None or it.end.hi >= as_of)
        ):
            continue
        ev = Evidence(reference=it.reference, source="fhir", code=hit.coding,
                      date=it.start.text if it.start else None,
                      detail=_how(f"status {it.status or 'not recorded'}", hit),
                      uncertain="; ".join(reasons) or None)
        out.append(_match(ev, hit, _cap("uncertain" if reasons else None, c), reasons))
    return out


def match_procedures(c: CompiledCriterion, ctx: Context, lenient: bool) -> list[Match]:
    out: list[Match] = []
    as_of = ctx.as_of
    for it in ctx.record.procedures:
        if it.status in IGNORED_STATUS or it.status in ("preparation", "stopped"):
            continue
        hit = _hit(c, it, ctx, lenient)
        if hit is None or _excluded(c, it.codings) or _after(it.performed, as_of):
            continue
        reasons: list[str] = [hit.doubt] if hit.doubt else []
        if c.within_days is not None:
            if it.performed is None:
                if not lenient:
                    continue
                reasons.append("procedure has no date")
            elif not _within(it.performed, c.within_days, as_of, lenient):
                continue
        ev = Evidence(reference=it.reference, source="fhir", code=hit.coding,
                      date=it.performed.text if it.performed else None,
                      detail=_how(f"status {it.status or 'not recorded'}", hit),
                      uncertain="; ".join(reasons) or None)
        out.append(_match(ev, hit, _cap("uncertain" if reasons else None, c), reasons))
    return out


def match_allergies(c: CompiledCriterion, ctx: Context, lenient: bool) -> list[Match]:
    out: list[Match] = []
    for it in ctx.record.allergies:
        if it.verification in IGNORED_VERIFICATION or _after(it.recorded, ctx.as_of):
            continue
        if c.status == "current" and it.clinical_status in RESOLVED_CLINICAL:
            continue
        hit = _hit(c, it, ctx, lenient)
        if hit is None or _excluded(c, it.codings):
            continue
        reasons = [hit.doubt] if hit.doubt else []
        if it.verification in UNCERTAIN_VERIFICATION:
            reasons.append(f"verification status is {it.verification}")
        ev = Evidence(reference=it.reference, source="fhir", code=hit.coding,
                      date=it.recorded.text if it.recorded else None,
                      detail=_how(f"clinical status {it.clinical_status or 'not recorded'}",
                                  hit),
                      uncertain="; ".join(reasons) or None)
        out.append(_match(ev, hit, _cap("uncertain" if reasons else None, c), reasons))
    return out


# ---------------------------------------------------------------- questionnaire / notes / rules


def _answer_matches(c: CompiledCriterion, value: object, as_of: dt.date) -> bool:
    if isinstance(value, dt.date):
        if value > as_of:
            return False
        return c.within_days is None or value >= as_of - dt.timedelta(days=c.within_days)
    if not c.answers:
        return value not in (None, "", False)
    for want in c.answers:
        if isinstance(value, Coding):
            if str(want) in (value.code, value.display):
                return True
        elif isinstance(want, bool) or isinstance(value, bool):
            if want is value:
                return True
        elif isinstance(want, str) and isinstance(value, str):
            if want.lower() == value.strip().lower():
                return True
        elif want == value:
            return True
    return False


def match_questionnaire(c: CompiledCriterion, ctx: Context, lenient: bool) -> list[Match]:
    out: list[Match] = []
    for it in ctx.record.answers:
        if it.link_id != c.link_id or _after(it.authored, ctx.as_of):
            continue
        if any(_answer_matches(c, v, ctx.as_of) for v in it.values):
            ev = Evidence(reference=it.reference, source="questionnaire",
                          date=it.authored.text if it.authored else None,
                          text=it.text, detail=c.label or f"answer to {c.link_id}")
            out.append(Match(ev, c.max_severity, c.reason))
    return out


def match_notes(c: CompiledCriterion, ctx: Context, lenient: bool, rule_id: str) -> list[Match]:
    out: list[Match] = []
    for m, ref in ctx.mentions.get(rule_id, ()):
        if m.negated or m.family or m.hypothetical:
            continue
        if m.historical and not c.accept_historical:
            continue
        reasons = []
        if m.uncertain:
            reasons.append("the note states it with uncertainty")
        if c.reason:
            reasons.append(c.reason)
        ev = Evidence(reference=ref, source="note", text=m.snippet or m.text, span=m.span,
                      context=m.flags(), detail=c.label,
                      uncertain="; ".join(reasons) or None)
        cap = "uncertain" if m.uncertain else c.max_severity
        out.append(Match(ev, cap, "; ".join(reasons) or None))
    return out


def match_rule(c: CompiledCriterion, ctx: Context, lenient: bool) -> list[Match]:
    f = ctx.findings.get(c.rule or "")
    if f is None or f.status not in c.rule_status:
        return []
    ev = Evidence(reference=f"rule/{f.rule}", source="fhir",
                  detail=f"finding of rule {f.rule} is {f.status}")
    return [Match(ev, c.max_severity, c.reason)]


def match_demographic(c: CompiledCriterion, ctx: Context, lenient: bool) -> list[Match]:
    rec = ctx.record
    if c.sex and (rec.gender or "unknown") not in c.sex:
        return []
    if c.min_age is not None and (ctx.age is None or ctx.age < c.min_age):
        return []
    if c.max_age is not None and (ctx.age is None or ctx.age > c.max_age):
        return []
    ev = Evidence(reference=f"Patient/{rec.id}", source="fhir",
                  date=rec.birth_date.text if rec.birth_date else None,
                  detail=c.label or f"age {ctx.age}, sex {rec.gender}")
    return [Match(ev, c.max_severity, c.reason)]


def match_coverage(c: CompiledCriterion, ctx: Context, lenient: bool) -> list[Match]:
    """None of the kinds of data provided, or any of them known to be incomplete."""
    cov = ctx.coverage
    if c.data_status == "any-incomplete":
        gaps = tuple(k for k in c.data if k in cov and cov[k].status == "incomplete")
    elif any(k in cov and cov[k].status == "provided" for k in c.data):
        gaps = ()
    else:
        gaps = c.data
    if not gaps:
        return []
    ev = Evidence(reference="coverage", source="fhir", detail=describe(cov, gaps) or c.label)
    return [Match(ev, c.max_severity, c.reason)]


MATCHERS: dict[str, Callable[[CompiledCriterion, Context, bool], list[Match]]] = {
    "condition": match_conditions,
    "observation": match_observations,
    "medication": match_medications,
    "procedure": match_procedures,
    "allergy": match_allergies,
    "questionnaire": match_questionnaire,
    "rule": match_rule,
    "demographic": match_demographic,
    "coverage": match_coverage,
}


def match_all(criteria: Iterable[CompiledCriterion], ctx: Context, lenient: bool,
              rule_id: str) -> list[Match]:
    out: list[Match] = []
    tokens = ctx.tokens
    for c in criteria:
        if tokens is not None and c.vs_tokens and c.vs_tokens.isdisjoint(tokens):
            continue  # no record touches its value sets (engine/index.py)
        if c.kind == "note":
            out.extend(match_notes(c, ctx, lenient, rule_id))
        else:
            out.extend(MATCHERS[c.kind](c, ctx, lenient))
    return out
