"""The CDS Hooks service: discovery, one hook call, feedback. Screening goes through the
engine (``server.screening``); this module only gathers data and shapes the response."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
from sqlalchemy import func, select

from ...fhir.record import RecordBuilder
from ...model import Assessment, KindCoverage, PatientRecord
from ...render.cards import (
    COVERAGE_RULE,
    ORDER_HOOKS,
    CardContext,
    assessment_cards,
    coverage_card,
    foreign_card,
)
from ...store import Database
from ...store.models import CdsFeedback
from ..config import Settings
from ..problems import ApiProblem, issue
from ..screening import notes_extractor, resolve_ruleset
from . import attachments
from .audit import CallAudit
from .auth import AuthError, Caller, DbReplayCache, JwtVerifier
from .clients import load_clients, published_key_warnings
from .fhir_base import FhirServerRefused, check_fhir_server, same_server
from .fhir_fetch import FetchJob, fetch_all, render_template
from .gather import Gathered, KeyState, declared_coverage
from .orderables import load_orderables
from .orders import MscOrderMatcher
from .prefetch import add_to_builder, read_value

log = logging.getLogger("msc_screen.server.cds")
# httpx logs every request URL at INFO (the EHR's host and the patient id) and httpcore every
# header at DEBUG (the bearer token): neither is logged unless a deployment lowers these itself.
for _name in ("httpx", "httpcore"):
    if logging.getLogger(_name).level < logging.WARNING:
        logging.getLogger(_name).setLevel(logging.WARNING)

ENV_ORDERABLES = "MSC_SCREEN_CDS_ORDERABLES"  # a site's copy of orderables.json
SERVICES_FILE = Path(__file__).with_name("services.json")


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
    usage: str | None = None  # usageRequirements: the scopes and setup an EHR needs

    def discovery(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hook": self.hook, "title": self.title,
                               "description": self.description, "id": self.id,
                               "prefetch": self.prefetch}
        if self.usage:
            out["usageRequirements"] = self.usage
        return out


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
                                             s.get("prefetch", data["prefetch"]),
                                             s.get("usageRequirements"))
                         for s in data["services"]}
        self.override_reasons: list[dict[str, str]] = data["overrideReasons"]
        self.coverage_of: dict[str, str] = data.get("coverage", {})  # prefetch key -> kind
        self.orders = MscOrderMatcher.load(settings.msc_orders_file)
        self.orderables = load_orderables(os.environ.get(ENV_ORDERABLES) or None)
        clients = load_clients(settings.cds_clients_source())
        for line in published_key_warnings(clients):
            log.warning("%s", line)
        self.verifier = JwtVerifier(clients,
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
    async def authenticate(self, authorization: str | None, audience: str) -> Caller | None:
        """Who called (None under --insecure-no-auth); 401 otherwise."""
        if self.settings.insecure_no_auth:
            return None
        if not self.verifier.clients:
            raise ApiProblem(401, "no trusted CDS clients are configured (--cds-clients)",
                             code="security", headers={"WWW-Authenticate": "Bearer"})
        try:
            caller, _claims = await self.verifier.verify_caller(authorization, audience)
        except AuthError as exc:
            log.info("CDS call refused: %s", exc)
            raise ApiProblem(401, str(exc), code="security",
                             headers={"WWW-Authenticate": "Bearer"}) from None
        return caller

    # -- discovery ----------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        return {"services": [s.discovery() for s in self.services.values()]}

    def service(self, service_id: str) -> ServiceDef:
        svc = self.services.get(service_id)
        if svc is None:
            raise ApiProblem(404, f"no CDS service {service_id[:80]!r}", code="not-found")
        return svc

    # -- hook call ----------------------------------------------------------------------
    def audit_for(self, service_id: str, caller: Caller | None) -> CallAudit:
        return CallAudit(service_id, self.settings.clock(),
                         iss=caller.iss if caller else None,
                         tenant=caller.tenant if caller else None,
                         sub=caller.sub if caller else None)

    async def call(self, service_id: str, raw: bytes, rules_url: str,
                   caller: Caller | None = None, audit: CallAudit | None = None
                   ) -> dict[str, Any]:
        svc = self.service(service_id)
        try:
            req = _REQUEST.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise _decode_error(exc, "CDS Hooks request") from None
        if req.hook != svc.hook:
            raise ApiProblem(400, f"service {svc.id} answers hook {svc.hook!r}, not "
                             f"{req.hook[:40]!r}", code="value", expression="hook")
        patient_id = req.context.get("patientId")
        if audit is not None:
            audit.hook, audit.hook_instance = svc.hook, req.hookInstance
            user = req.context.get("userId")
            audit.user_id = user if isinstance(user, str) else None
            audit.patient_id = patient_id if isinstance(patient_id, str) else None
        if not isinstance(patient_id, str) or not patient_id:
            raise ApiProblem(400, "context.patientId is required", code="required",
                             expression="context.patientId")
        msc: list[dict[str, Any]] = []
        if svc.hook in ORDER_HOOKS:
            if "draftOrders" not in req.context:
                raise ApiProblem(400, "context.draftOrders is required for " + svc.hook,
                                 code="required", expression="context.draftOrders")
            selections = req.context.get("selections") if svc.hook == "order-select" else None
            msc = self.orders.msc_orders(req.context["draftOrders"], selections)
            if not msc:
                msc = await self._msc_by_fetched_medication(req, selections, caller)
            if not msc:
                return {"cards": []}
        got = await self._gather(svc, req, patient_id, caller)
        a = self._screen(got.records, patient_id, got.declared)
        if audit is not None:
            audit.decision = a.decision
            audit.coverage = {k: v.status for k, v in a.coverage.items()}
        record = next((r for r in got.records if r.id == patient_id), None)
        return {"cards": self._cards(a, got, req, rules_url, msc,
                                     record.gender if record is not None else None)}

    async def _msc_by_fetched_medication(self, req: CdsRequest, selections: Any,
                                         caller: Caller | None) -> list[dict[str, Any]]:
        """Epic sends an order's product as ``medicationReference`` to a Medication that may
        be neither contained nor in the Bundle: read it from fhirServer (same checks, same
        deadline as the prefetch) and match its code."""
        drafts = req.context["draftOrders"]
        refs = self.orders.unresolved_medications(drafts, selections)
        if not refs or not req.fhirServer:
            return []
        await self._check_server(req.fhirServer, caller)
        token = (req.fhirAuthorization or {}).get("access_token")
        jobs = {r: FetchJob(r) for r in refs[:10]}
        fetched = await fetch_all(self.http, req.fhirServer, token if isinstance(token, str)
                                  else None, jobs, deadline_s=self.settings.fhir_deadline_s,
                                  page_limit=1)
        meds: dict[str, Any] = {}
        for ref, kf in fetched.keys.items():
            try:
                value = json.loads(kf.pages[0]) if kf.pages and kf.problem is None else None
            except ValueError:
                value = None
            if isinstance(value, dict) and value.get("resourceType") == "Medication":
                meds[ref] = value
        return self.orders.msc_orders(drafts, selections, meds)

    async def _check_server(self, server: str, caller: Caller | None) -> None:
        try:
            await check_fhir_server(server, caller.client.fhir_servers
                                    if caller is not None else None)
        except FhirServerRefused as exc:
            raise ApiProblem(400, f"fhirServer refused: {exc}", code="security",
                             expression="fhirServer") from None

    def _cards(self, a: Assessment, got: Gathered, req: CdsRequest, rules_url: str,
               msc: list[dict[str, Any]], sex: str | None) -> list[dict[str, Any]]:
        """The hook's cards, as the policy's ``cds`` settings and the hook decide (README)."""
        ruleset = resolve_ruleset(self.settings)
        policy = ruleset.policy.cds
        label = f"msc-screen {a.ruleset.get('version', '')}".strip()
        ctx = CardContext(rules_url, req.hookInstance, hook=req.hook, source_label=label,
                          override_reasons=tuple(self.override_reasons),
                          rationale=_rationales(ruleset), msc_orders=tuple(msc),
                          show_info=True if policy.patient_view_info else None, sex=sex,
                          orderables=self.orderables,
                          max_indicator=None if req.hook in ORDER_HOOKS
                          else policy.patient_view_max_indicator)
        cov = None
        if req.hook in ORDER_HOOKS or policy.patient_view_coverage:
            cov = coverage_card(a, left_out=got.unreadable(), rules_url=rules_url,
                                hook_instance=req.hookInstance, source_label=label)
        cards = [] if cov is None else [cov]
        foreign = got.foreign()
        if foreign:
            cards.append(foreign_card(a, foreign, source_label=label, url=rules_url))
        cards += assessment_cards(a, rules_url=rules_url, hook_instance=req.hookInstance,
                                  ctx=ctx, warnings=a.warnings,
                                  skip_rules=(COVERAGE_RULE,) if cov is not None else ())
        return cards

    async def _gather(self, svc: ServiceDef, req: CdsRequest, patient_id: str,
                      caller: Caller | None) -> Gathered:
        """Every prefetch key read, fetched, followed or refetched, judged as data coverage,
        and the patient's resources in one record builder. 412 when nothing usable came."""
        prefetch = req.prefetch or {}
        server = req.fhirServer
        if server is not None:
            await self._check_server(server, caller)
        if not server and not any(k in prefetch for k in svc.prefetch):
            raise ApiProblem(412, "no prefetch data and no fhirServer to fetch from; "
                             "send the prefetch keys listed in discovery or fhirServer "
                             "with fhirAuthorization", code="required", expression="prefetch")
        states: dict[str, KeyState] = {}
        jobs: dict[str, FetchJob] = {}
        for key, template in svc.prefetch.items():
            st = states[key] = KeyState(key, self.coverage_of.get(key), "?" in template)
            query = render_template(template, req.context)
            raw = prefetch.get(key)
            if raw is None:
                if server and query is not None:
                    jobs[key] = FetchJob(query)
                else:
                    st.missing = ("not sent, and no fhirServer to fetch it from"
                                  if query is not None else
                                  "not sent, and its template needs context the call lacks")
                continue
            data = bytes(raw)
            if data.strip() == b"null":
                st.answered, st.empty = True, True  # the EHR says: no data
                continue
            v = read_value(data, f"prefetch.{key}", patient_id)
            st.prefetched = v
            st.answered = True
            if v.next_url is not None:
                on_server = bool(server) and same_server(v.next_url, server or "")
                if on_server and not v.problems:
                    jobs[key] = FetchJob(v.next_url, pages_done=1)  # a paged prefetch
                    st.paged = True
                    continue
                if not on_server:
                    v.problems.append("next page on another server not followed" if server
                                      else "next page not followed (no fhirServer to fetch "
                                      "it from)")
            if v.problems and server and query is not None:
                jobs[key] = FetchJob(query)  # the prefetch is incomplete: ask fhirServer
        deadline = time.monotonic() + self.settings.fhir_deadline_s
        raw_token = (req.fhirAuthorization or {}).get("access_token")
        token = raw_token if isinstance(raw_token, str) else None
        if jobs and server:
            fetched = await fetch_all(self.http, server, token, jobs,
                                      deadline_s=self.settings.fhir_deadline_s,
                                      page_limit=self.settings.fhir_page_limit)
            for key, kf in fetched.keys.items():
                states[key].settle_fetch(kf, patient_id)
                if self.metrics is not None:
                    self.metrics.fhir_fetch.labels(kf.outcome).inc()
        if server:  # notes whose text is a Binary on fhirServer, in what is left of the time
            await attachments.inline(self.http, server, token,
                                     [r for st in states.values() for v in st.reads
                                      for r, _u, _l in v.result.resources], deadline)
        ruleset = resolve_ruleset(self.settings)
        builder = RecordBuilder.for_ruleset(ruleset)

        def probe() -> RecordBuilder:
            return RecordBuilder.for_ruleset(ruleset)

        for st in states.values():
            for v in st.reads:
                add_to_builder(builder, v, probe)
        got = Gathered(builder.finish(), states)
        for st in states.values():  # counts and key names only: no patient data in logs
            n_foreign = sum(len(x) for _s, x in st.foreign())
            n_bad = sum(len(x) for _s, x in st.unreadable())
            if n_foreign or n_bad:
                log.warning("CDS prefetch key %s: %d resource(s) of another patient and %d "
                            "unreadable left out", st.key, n_foreign, n_bad)
        if not any(st.usable for st in states.values()):
            raise ApiProblem(
                412, "no usable data: every prefetch key and FHIR query failed",
                issues=[issue(f"{st.key}: {st.reason()}", code="incomplete",
                              expression=f"prefetch.{st.key}") for st in states.values()])
        got.declared = declared_coverage(states)
        return got

    def _screen(self, records: list[PatientRecord], patient_id: str,
                declared: dict[str, KindCoverage]) -> Assessment:
        from ...engine import evaluate

        ruleset = resolve_ruleset(self.settings)
        # only context.patientId's record: everything else was left out as another patient's
        record = next((r for r in records if r.id == patient_id), None)
        if record is None:
            record = PatientRecord(id=patient_id)  # nothing read about the patient
        for kind, cov in declared.items():
            mine = record.declared.get(kind)
            if mine is None or mine.status != "incomplete":
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


def _rationales(ruleset: Any) -> dict[str, str]:
    memo: dict[str, str] | None = ruleset.memo.get("cds-rationales")
    if memo is None:
        memo = ruleset.memo["cds-rationales"] = {
            rid: r.rationale for rid, r in ruleset.kb.rules.items()}
    return memo


__all__ = ["CdsService"]
