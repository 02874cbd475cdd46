"""How each kind of criterion matches a patient's records.

``lenient`` is True for criteria that *raise* concern (present_if / unknown_if): imprecise dates
are read at the end that makes a match more likely, and missing data yields an uncertain match
(review) rather than silence. Criteria that *clear* (absent_if) read dates strictly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from ..knowledge.compiled import CompiledCriterion
from ..model import Coding, DateRange, Evidence, ObservationItem
from ..terminology.valueset import CompiledValueSet
from .context import Context, Match

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
    for vs in vss:
        hit = vs.match(codings, text)
        if hit is not None:
            return hit
    return None


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


# ------------------------------------------------------------------------------------ condition


def condition_state(
    clinical: str | None, abatement: DateRange | None, abated: bool, as_of: dt.date
) -> tuple[str, str | None]:
    """('current'|'resolved', reason-for-doubt) of a condition on the as-of date."""
    if abatement is not None:
        if abatement.hi < as_of:
            return "resolved", None
        return "current", None  # abated after the as-of date: ongoing then
    if clinical in ACTIVE_CLINICAL:
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
        hit = _match_vs(c.valuesets, it.codings, it.text)
        if hit is None or _excluded(c, it.codings):
            continue
        start = it.onset or it.recorded
        if _after(start, as_of):
            continue
        state, doubt = condition_state(it.clinical_status, it.abatement, it.abated, as_of)
        if (state == "current" and c.ended_by and it.onset is not None
                and _ended(ctx, c.ended_by, it.onset, as_of)):
            state, doubt = "resolved", None
        reasons: list[str] = []
        if doubt and (state == "current" or c.status != "current"):
            reasons.append(doubt)
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
            reference=it.reference, source="fhir", code=hit,
            date=when.text if when else None,
            detail=detail, uncertain="; ".join(reasons) or None,
        )
        out.append(Match(ev, _cap("uncertain" if reasons and lenient else None, c),
                         "; ".join(reasons) or None))
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
    candidates: list[tuple[ObservationItem, Coding]] = []
    for it in ctx.record.observations:
        if it.status in IGNORED_STATUS:
            continue
        hit = _match_vs(c.valuesets, it.codings, None)
        if hit is None or _excluded(c, it.codings) or _after(it.effective, as_of):
            continue
        candidates.append((it, hit))
    if c.most_recent:
        # per code, every result of the latest date: results tied on date are all considered
        # (in reference order), so the outcome never depends on the order of the input
        latest: dict[str, list[tuple[ObservationItem, Coding]]] = {}
        for it, hit in candidates:
            prev = latest.get(hit.code)
            if prev is None or _later(it.effective, prev[0][0].effective):
                latest[hit.code] = [(it, hit)]
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
        ok, why = _obs_value_test(c, it, hit)
        if not ok:
            continue
        if it.status in PRELIMINARY_OBS:
            reasons.append(f"result status is {it.status}")
        ev = Evidence(reference=it.reference, source="fhir", code=hit,
                      date=it.effective.text if it.effective else None, detail=why,
                      uncertain="; ".join(reasons) or None)
        out.append(Match(ev, _cap("uncertain" if reasons and lenient else None, c),
                         "; ".join(reasons) or None))
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
        hit = _match_vs(c.valuesets, it.codings, it.text)
        if hit is None or _excluded(c, it.codings) or _after(it.start, as_of):
            continue
        reasons: list[str] = []
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
        ev = Evidence(reference=it.reference, source="fhir", code=hit,
                      date=it.start.text if it.start else None,
                      detail=f"status {it.status or 'not recorded'}",
                      uncertain="; ".join(reasons) or None)
        out.append(Match(ev, _cap("uncertain" if reasons else None, c),
                         "; ".join(reasons) or None))
    return out


def match_procedures(c: CompiledCriterion, ctx: Context, lenient: bool) -> list[Match]:
    out: list[Match] = []
    as_of = ctx.as_of
    for it in ctx.record.procedures:
        if it.status in IGNORED_STATUS or it.status in ("preparation", "stopped"):
            continue
        hit = _match_vs(c.valuesets, it.codings, it.text)
        if hit is None or _excluded(c, it.codings) or _after(it.performed, as_of):
            continue
        reasons: list[str] = []
        if c.within_days is not None:
            if it.performed is None:
                if not lenient:
                    continue
                reasons.append("procedure has no date")
            elif not _within(it.performed, c.within_days, as_of, lenient):
                continue
        ev = Evidence(reference=it.reference, source="fhir", code=hit,
                      date=it.performed.text if it.performed else None,
                      detail=f"status {it.status or 'not recorded'}",
                      uncertain="; ".join(reasons) or None)
        out.append(Match(ev, _cap("uncertain" if reasons else None, c),
                         "; ".join(reasons) or None))
    return out


def match_allergies(c: CompiledCriterion, ctx: Context, lenient: bool) -> list[Match]:
    out: list[Match] = []
    for it in ctx.record.allergies:
        if it.verification in IGNORED_VERIFICATION or _after(it.recorded, ctx.as_of):
            continue
        if c.status == "current" and it.clinical_status in RESOLVED_CLINICAL:
            continue
        hit = _match_vs(c.valuesets, it.codings, it.text)
        if hit is None or _excluded(c, it.codings):
            continue
        reasons = []
        if it.verification in UNCERTAIN_VERIFICATION:
            reasons.append(f"verification status is {it.verification}")
        ev = Evidence(reference=it.reference, source="fhir", code=hit,
                      date=it.recorded.text if it.recorded else None,
                      detail=f"clinical status {it.clinical_status or 'not recorded'}",
                      uncertain="; ".join(reasons) or None)
        out.append(Match(ev, _cap("uncertain" if reasons else None, c),
                         "; ".join(reasons) or None))
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


MATCHERS: dict[str, Callable[[CompiledCriterion, Context, bool], list[Match]]] = {
    "condition": match_conditions,
    "observation": match_observations,
    "medication": match_medications,
    "procedure": match_procedures,
    "allergy": match_allergies,
    "questionnaire": match_questionnaire,
    "rule": match_rule,
    "demographic": match_demographic,
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
