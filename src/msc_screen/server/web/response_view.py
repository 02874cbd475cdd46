"""The patient's questionnaire responses as staff read them: every question and answer of
each submission (free text included), and answers that contradict each other between
completed submissions, flagged as warnings beside the findings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ...questionnaire import FormDef
from ...store.clinic_models import Invitation, QuestionnaireAnswer


def _shown(a: dict[str, Any]) -> str:
    if "valueCoding" in a:
        c = a["valueCoding"] or {}
        return str(c.get("display") or c.get("code") or "")
    for k, v in a.items():
        if k.startswith("value"):
            if isinstance(v, bool):
                return "Yes" if v else "No"
            return str(v)
    return ""


def _raw(a: dict[str, Any]) -> Any:
    if "valueCoding" in a:
        return (a["valueCoding"] or {}).get("code")
    return next((v for k, v in a.items() if k.startswith("value")), None)


def _items(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Every answered item, in the order stored (groups are sections)."""
    out: list[dict[str, Any]] = []

    def walk(items: list[Any], section: str | None) -> None:
        for it in items or ():
            if not isinstance(it, dict):
                continue
            answers = [a for a in it.get("answer") or () if isinstance(a, dict)]
            if answers:
                out.append({"link_id": it.get("linkId"), "text": it.get("text") or it.get(
                    "linkId"), "section": section, "answer": "; ".join(_shown(a) for a in answers),
                    "raw": [_raw(a) for a in answers]})
            walk(it.get("item") or [], it.get("text") if not answers else section)

    walk(list(resource.get("item") or []), None)
    return out


def responses_view(form: FormDef, rows: list[QuestionnaireAnswer],
                   links: dict[int, Invitation]) -> list[dict[str, Any]]:
    """Each submission, newest first, with its answers grouped by section. A question the
    current questionnaire no longer has keeps the text stored with the answer."""
    out = []
    for r in rows:
        items = _items(r.resource or {})
        for it in items:
            q = form.by_id.get(str(it["link_id"]))
            it["free_text"] = q is not None and q.type in ("string", "text")
        inv = links.get(r.invitation_id or -1)
        out.append({"id": r.id, "status": r.status, "updated_at": r.updated_at,
                    "authored": (r.resource or {}).get("authored"),
                    "invitation": inv.id if inv else None, "items": items})
    return out


def conflicts(form: FormDef, rows: list[QuestionnaireAnswer]) -> list[dict[str, Any]]:
    """Questions answered differently in two completed submissions ("pregnant: yes", then
    "no"): the screening read both, and staff should ask which is right."""
    seen: dict[str, list[tuple[int, str, Any]]] = {}
    for r in sorted(rows, key=lambda r: r.id):
        if r.status != "completed":
            continue
        for it in _items(r.resource or {}):
            seen.setdefault(str(it["link_id"]), []).append((r.id, it["answer"], it["raw"]))
    out = []
    for link_id, got in seen.items():
        values = {repr(raw) for _, _, raw in got}
        if len(values) > 1:
            q = form.by_id.get(link_id)
            out.append({"link_id": link_id, "text": q.text if q else link_id,
                        "answers": [{"response": rid, "answer": shown} for rid, shown, _ in got]})
    return out


def age_of(birth: str | None, today: dt.date) -> int | None:
    try:
        b = dt.date.fromisoformat(birth or "")
    except ValueError:
        return None
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


INVITE_STATUS = {"open": "Open", "used": "Answers sent", "expired": "Expired",
                 "revoked": "Revoked"}


def invite_view(i: Invitation, now: dt.datetime, names: dict[int, str]) -> dict[str, Any]:
    """A questionnaire link as listed: its status and expiry (the link itself is never
    stored, only its hash)."""
    exp = i.expires_at if i.expires_at.tzinfo else i.expires_at.replace(tzinfo=dt.UTC)
    status = ("used" if i.used_at else "revoked" if i.revoked_at
              else "expired" if exp <= now else "open")
    return {"id": i.id, "created_at": i.created_at, "expires_at": exp, "status": status,
            "status_words": INVITE_STATUS[status], "by": names.get(i.created_by or -1, "—"),
            "used_at": i.used_at, "revoked_at": i.revoked_at,
            "revoked_by": names.get(i.revoked_by or -1, "—")}
