"""An audit of every CDS Hooks call, and the alert-fatigue report an EHR committee asks for.

Each authenticated call is one ``cds_calls`` row (time, ``iss``, tenant, client ``sub``,
``userId``, patient id, hook, ``hookInstance``, data coverage, decision, status, cards with
their uuids and rules) and one ``cds_call_cards`` row per card and rule. EHR feedback names
the card's uuid, so per rule the report gives: cards fired, in how many calls, accepted,
overridden and with which reasons, and feedback that names no recorded card.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ...render.cards import card_rules
from ...store import Database
from ...store.models import CdsCall, CdsCallCard, CdsFeedback

log = logging.getLogger("msc_screen.server.cds")


def _cut(v: Any, n: int) -> str | None:
    return v[:n] if isinstance(v, str) and v else None


@dataclass
class CallAudit:
    """Filled in as a call proceeds; written once it is answered (or refused)."""

    service_id: str
    received_at: dt.datetime
    iss: str | None = None
    tenant: str | None = None
    sub: str | None = None
    hook: str = "?"
    hook_instance: str | None = None
    user_id: str | None = None
    patient_id: str | None = None
    status: int = 200
    decision: str | None = None
    coverage: dict[str, str] | None = None
    cards: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float | None = None

    def record(self, db: Database) -> None:
        """Write the rows; a store failure is logged (no patient data) and never fails the
        call the EHR is waiting on."""
        summary = [{"uuid": c.get("uuid"), "indicator": c.get("indicator"),
                    "rules": card_rules(c)} for c in self.cards]
        try:
            with db.session() as s:
                row = CdsCall(
                    received_at=self.received_at, service_id=self.service_id[:100],
                    hook=self.hook[:40], hook_instance=_cut(self.hook_instance, 100),
                    iss=_cut(self.iss, 500), tenant=_cut(self.tenant, 200),
                    sub=_cut(self.sub, 200), user_id=_cut(self.user_id, 200),
                    patient_id=_cut(self.patient_id, 200), status=self.status,
                    decision=self.decision, coverage=self.coverage, cards=summary or None,
                    duration_ms=self.duration_ms)
                s.add(row)
                s.flush()
                for c in summary:
                    for rule in c["rules"] or ["(notice)"]:
                        s.add(CdsCallCard(call_id=row.id, card_uuid=str(c["uuid"])[:100],
                                          rule=rule[:100], indicator=str(c["indicator"])))
        except SQLAlchemyError as exc:
            log.error("CDS call audit not written (%s)", type(exc).__name__)


def _reason(value: Any) -> str:
    if not isinstance(value, dict):
        return "(no reason given)"
    r = value.get("reason")
    if isinstance(r, dict):
        return str(r.get("code") or r.get("display") or "(no code)")
    return "(no reason given)"


def report(db: Database, since: dt.datetime | None = None,
           until: dt.datetime | None = None) -> dict[str, Any]:
    """Per hook: calls, calls with a card, cards; per rule: fired, calls, accepted,
    overridden, override reasons, and the rates (of the cards that got feedback)."""
    with db.session() as s:
        when = [c for c in (CdsCall.received_at >= since if since is not None else None,
                            CdsCall.received_at < until if until is not None else None)
                if c is not None]
        calls = s.execute(select(CdsCall.id, CdsCall.hook, CdsCall.status, CdsCall.cards)
                          .where(*when)).all()
        cards = s.execute(select(CdsCallCard.call_id, CdsCallCard.card_uuid, CdsCallCard.rule)
                          .join(CdsCall, CdsCall.id == CdsCallCard.call_id).where(*when)).all()
        uuids = {r.card_uuid for r in cards}
        feedback = s.execute(select(CdsFeedback.card_uuid, CdsFeedback.outcome,
                                    CdsFeedback.override_reason)).all()
    hooks: dict[str, dict[str, int]] = {}
    for c in calls:
        h = hooks.setdefault(c.hook, {"calls": 0, "calls_with_cards": 0, "cards": 0,
                                      "refused": 0})
        h["calls"] += 1
        h["refused"] += c.status >= 400
        n = len(c.cards or ())
        h["cards"] += n
        h["calls_with_cards"] += n > 0
    by_card: dict[str, list[tuple[str, Any]]] = collections.defaultdict(list)
    unmatched = 0
    for f in feedback:
        if f.card_uuid in uuids:
            by_card[f.card_uuid].append((f.outcome, f.override_reason))
        else:
            unmatched += 1
    rules: dict[str, dict[str, Any]] = {}
    seen_calls: dict[str, set[int]] = collections.defaultdict(set)
    for r in cards:
        e = rules.setdefault(r.rule, {"fired": 0, "calls": 0, "accepted": 0, "overridden": 0,
                                      "override_reasons": collections.Counter()})
        e["fired"] += 1
        seen_calls[r.rule].add(r.call_id)
        for outcome, reason in by_card.get(r.card_uuid, ()):
            if outcome == "accepted":
                e["accepted"] += 1
            elif outcome == "overridden":
                e["overridden"] += 1
                e["override_reasons"][_reason(reason)] += 1
    for rule, e in rules.items():
        e["calls"] = len(seen_calls[rule])
        answered = e["accepted"] + e["overridden"]
        e["accepted_rate"] = round(e["accepted"] / answered, 3) if answered else None
        e["override_rate"] = round(e["overridden"] / answered, 3) if answered else None
        e["override_reasons"] = dict(e["override_reasons"].most_common())
    return {"since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "hooks": hooks, "rules": dict(sorted(rules.items(), key=lambda kv: -kv[1]["fired"])),
            "feedback_without_a_recorded_card": unmatched}
