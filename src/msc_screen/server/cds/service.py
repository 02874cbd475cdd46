"""The CDS Hooks service: discovery, one hook call, feedback. Screening goes through the
engine (``server.screening``); this module only gathers data and shapes the response."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
from sqlalchemy import func, select

from ...fhir.reader import ReadResult, read_bytes
from ...fhir.record import build_records
from ...model import Assessment, KindCoverage, PatientRecord
from ...render.cards import assessment_cards, notice_card
from ...store import Database
from ...store.models import CdsFeedback
from ..config import Settings
from ..problems import ApiProblem
from ..screening import notes_extractor, records_or_400, resolve_ruleset
from .auth import AuthError, DbReplayCache, JwtVerifier, load_clients
from .fhir_fetch import FetchResult, fetch_all, render_template
from .orders import MscOrderMatcher

log = logging.getLogger("msc_screen.server.cds")

SERVICES_FILE = Path(__file__).with_name("services.json")
ORDER_HOOKS = ("order-select", "order-sign")


class CdsRequest(msgspec.Struct):
    hook: str
    hookInstance: str
    context: dict[str, Any]
    fhirServer: str | None = None
    fhirAuthorization: dict[str, Any] | None = None
    prefetch: dict[str, msgspec.Raw] | None = None


class FeedbackItem(msgspec.Struct):
    card: str
    outcome: str
    outcomeTimestamp: str | None = None
    acceptedSuggestions: list[dict[str, Any]] | None = None
    overrideReason: dict[str, Any] | None = None


class FeedbackRequest(msgspec.Struct):
    feedback: list[FeedbackItem]


_REQUEST = msgspec.json.Decoder(CdsRequest)
_FEEDBACK = msgspec.json.Decoder(FeedbackRequest)


@dataclass(frozen=True)
class ServiceDef:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]

    def discovery(self) -> dict[str, Any]:
        return {"hook": self.hook, "title": self.title, "description": self.description,
                "id": self.id, "prefetch": self.prefetch}


def _decode_error(exc: msgspec.MsgspecError, what: str) -> ApiProblem:
    msg = str(exc)
    field = msg.rsplit("at `", 1)[1].rstrip("`") if "at `" in msg else None
    return ApiProblem(400, f"{what}: {msg}", expression=field)


class CdsService:
    """State shared by the CDS routes: service definitions, trusted clients, HTTP client."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        data = json.loads(SERVICES_FILE.read_text("utf-8"))
        self.services = {s["id"]: ServiceDef(s["id"], s["hook"], s["title"], s["description"],
                                             s.get("prefetch", data["prefetch"]))
                         for s in data["services"]}
        self.override_reasons: list[dict[str, str]] = data["overrideReasons"]
        self.coverage_of: dict[str, str] = data.get("coverage", {})  # prefetch key -> kind
        self.orders = MscOrderMatcher.load(settings.msc_orders_file)
        self.verifier = JwtVerifier(load_clients(settings.cds_clients_source()),
                                    clock=lambda: settings.clock().timestamp(),
                                    leeway_s=settings.jwt_leeway_s,
                                    replay=DbReplayCache(db) if settings.shared_replay_cache
                                    else None)
        timeout = httpx.Timeout(settings.fhir_deadline_s, connect=min(2.0, settings.fhir_deadline_s))
        self.metrics: Any = None  # server.metrics.Metrics, set by the app factory
        self.http = httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                      **settings.fhir_client_options)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- security -----------------------------------------------------------------------
    async def authenticate(self, authorization: str | None, audience: str) -> str | None:
        """The caller's ``iss`` (None under --insecure-no-auth); 401 otherwise."""
        if self.settings.insecure_no_auth:
            return None
        if not self.verifier.clients:
            raise ApiProblem(401, "no trusted CDS clients are configured (--cds-clients)",
                             code="security", headers={"WWW-Authenticate": "Bearer"})
        try:
            claims = await self.verifier.verify(authorization, audience)
        except AuthError as exc:
            log.info("CDS call refused: %s", exc)
            raise ApiProblem(401, str(exc), code="security",
                             headers={"WWW-Authenticate": "Bearer"}) from None
        return str(claims["iss"])

    # -- discovery ----------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        return {"services": [s.discovery() for s in self.services.values()]}

    def service(self, service_id: str) -> ServiceDef:
        svc = self.services.get(service_id)
        if svc is None:
            raise ApiProblem(404, f"no CDS service {service_id[:80]!r}", code="not-found")
        return svc

    # -- hook call ----------------------------------------------------------------------
    async def call(self, service_id: str, raw: bytes, rules_url: str) -> dict[str, Any]:
        svc = self.service(service_id)
        try:
            req = _REQUEST.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise _decode_error(exc, "CDS Hooks request") from None
        if req.hook != svc.hook:
            raise ApiProblem(400, f"service {svc.id} answers hook {svc.hook!r}, not "
                             f"{req.hook[:40]!r}", code="value", expression="hook")
        patient_id = req.context.get("patientId")
        if not isinstance(patient_id, str) or not patient_id:
            raise ApiProblem(400, "context.patientId is required", code="required",
                             expression="context.patientId")
        if svc.hook in ORDER_HOOKS:
            if "draftOrders" not in req.context:
                raise ApiProblem(400, "context.draftOrders is required for " + svc.hook,
                                 code="required", expression="context.draftOrders")
            if not self.orders.msc_orders(req.context["draftOrders"]):
                return {"cards": []}
        results, fetched = await self._gather(svc, req)
        a = self._screen(results, patient_id, self._coverage(svc, req, fetched))
        label = f"msc-screen {a.ruleset.get('version', '')}".strip()
        cards = assessment_cards(a, rules_url=rules_url, hook_instance=req.hookInstance,
                                 source_label=label, override_reasons=self.override_reasons)
        for notice in (_incomplete_notice(fetched, label, rules_url),
                       _warnings_notice(a, label, rules_url)):
            if notice is not None:
                cards.append(notice)
        return {"cards": cards}

    async def _gather(self, svc: ServiceDef, req: CdsRequest
                      ) -> tuple[list[ReadResult], FetchResult | None]:
        results: list[ReadResult] = []
        missing: dict[str, str] = {}
        prefetch = req.prefetch or {}
        for key, template in svc.prefetch.items():
            raw = prefetch.get(key)
            if raw is None:
                query = render_template(template, req.context)
                if query is not None:
                    missing[key] = query
                continue
            data = bytes(raw)
            if data.strip() == b"null":
                continue  # the client says: no data
            results.append(read_bytes(data, f"prefetch.{key}"))
        if not missing:
            return results, None
        if not req.fhirServer:
            if not results and len(missing) == len(svc.prefetch):
                raise ApiProblem(412, "no prefetch data and no fhirServer to fetch from; "
                                 "send the prefetch keys listed in discovery or fhirServer "
                                 "with fhirAuthorization", code="required",
                                 expression="prefetch")
            return results, FetchResult(failed={k: "not provided" for k in missing})
        if not req.fhirServer.startswith(("https://", "http://")):
            raise ApiProblem(400, "fhirServer must be an http(s) URL", code="value",
                             expression="fhirServer")
        token = (req.fhirAuthorization or {}).get("access_token")
        fetched = await fetch_all(self.http, req.fhirServer,
                                  token if isinstance(token, str) else None, missing,
                                  deadline_s=self.settings.fhir_deadline_s,
                                  page_limit=self.settings.fhir_page_limit)
        for key, pages in fetched.payloads.items():
            for i, data in enumerate(pages):
                name = f"fhirServer:{key}" if len(pages) == 1 else f"fhirServer:{key}[page {i + 1}]"
                results.append(read_bytes(data, name))
        if self.metrics is not None:
            count = self.metrics.fhir_fetch
            for _ in fetched.payloads:
                count.labels("ok").inc()
            for why in fetched.failed.values():
                count.labels("timeout" if why == "timeout" else "error").inc()
            for _ in fetched.truncated:
                count.labels("truncated").inc()
        return results, fetched

    def _coverage(self, svc: ServiceDef, req: CdsRequest, fetched: FetchResult | None
                  ) -> dict[str, KindCoverage]:
        """What each prefetch key says about its kind of data: answered (the search ran, even
        if it found nothing) → provided; failed or cut at the page limit → incomplete."""
        out: dict[str, KindCoverage] = {}
        failed = dict(fetched.failed) if fetched is not None else {}
        for key in fetched.truncated if fetched is not None else ():
            failed.setdefault(key, "more pages than the page limit")
        prefetch = req.prefetch or {}
        for key in svc.prefetch:
            kind = self.coverage_of.get(key)
            if kind is None:
                continue
            if key in failed:
                out[kind] = KindCoverage("incomplete", f"{key}: {failed[key]}")
            elif (key in prefetch or (fetched is not None and key in fetched.payloads)) and (
                    out.get(kind) is None):
                out[kind] = KindCoverage("provided", f"{key}: searched")
        return out

    def _screen(self, results: list[ReadResult], patient_id: str,
                declared: dict[str, KindCoverage] | None = None) -> Assessment:
        from ...engine import evaluate

        ruleset = resolve_ruleset(self.settings)
        record = _pick(records_or_400(results, ruleset), patient_id)
        if record is None:
            stub = read_bytes(msgspec.json.encode({"resourceType": "Patient", "id": patient_id}),
                              "context.patientId")
            # nothing read refers to this id (else it would have a record): the stub alone
            records, _ = build_records([stub], ruleset)
            record = _pick(records, patient_id) or PatientRecord(id=patient_id)
        for kind, cov in (declared or {}).items():
            if record.declared.get(kind, cov).status != "incomplete":
                record.declared[kind] = cov
        day = self.settings.clock().date()
        return evaluate(record, ruleset, day, notes_extractor())

    # -- feedback -----------------------------------------------------------------------
    def feedback(self, service_id: str, raw: bytes, iss: str | None) -> int:
        self.service(service_id)
        try:
            req = _FEEDBACK.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise _decode_error(exc, "CDS Hooks feedback") from None
        for i, f in enumerate(req.feedback):
            if f.outcome not in ("accepted", "overridden"):
                raise ApiProblem(400, f"feedback[{i}].outcome must be 'accepted' or "
                                 "'overridden'", code="value",
                                 expression=f"feedback[{i}].outcome")
        now = self.settings.clock()
        with self.db.session() as s:
            for f in req.feedback:
                s.add(CdsFeedback(
                    service_id=service_id, card_uuid=f.card[:100], outcome=f.outcome,
                    outcome_timestamp=(f.outcomeTimestamp or "")[:40] or None,
                    accepted_suggestions=[str(x.get("id")) for x in f.acceptedSuggestions or ()]
                    or None,
                    override_reason=f.overrideReason, client_iss=iss, received_at=now))
        return len(req.feedback)

    def feedback_count(self, service_id: str | None = None) -> int:
        with self.db.session() as s:
            q = select(func.count()).select_from(CdsFeedback)
            if service_id:
                q = q.where(CdsFeedback.service_id == service_id)
            return int(s.scalar(q) or 0)


def _pick(records: list[PatientRecord], patient_id: str) -> PatientRecord | None:
    for r in records:
        if r.id == patient_id:
            return r
    return records[0] if len(records) == 1 else None


def _incomplete_notice(fetched: FetchResult | None, label: str, url: str
                       ) -> dict[str, Any] | None:
    if fetched is None or not (fetched.failed or fetched.truncated):
        return None
    parts = [f"- {k}: {why}" for k, why in sorted(fetched.failed.items())]
    parts += [f"- {k}: more pages than the page limit; the rest was not read"
              for k in fetched.truncated]
    detail = ("Some of the patient's data could not be obtained, so this screening may miss "
              "a contraindication. Review the chart before ordering IV MSC therapy.\n\n"
              + "\n".join(parts))
    return notice_card("Screening incomplete: some patient data could not be fetched",
                       detail, source_label=label, url=url, indicator="warning")


def _warnings_notice(a: Assessment, label: str, url: str) -> dict[str, Any] | None:
    """The assessment's warnings (a note not analysed, a record without a code, …): without
    them, few or no cards would read as the whole picture."""
    if not a.warnings:
        return None
    detail = ("Parts of the record could not be used by the screening; read them before "
              "relying on its result.\n\n" + "\n".join(f"- {w}" for w in a.warnings))
    return notice_card(f"Screening read the record with {len(a.warnings)} warning(s)", detail,
                       source_label=label, url=url, indicator="info")


__all__ = ["CdsService"]
