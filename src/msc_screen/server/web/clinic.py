"""The clinic's operations (accounts, invitations, answers, uploads, screening, sign-off),
each one transaction with its audit entry. Routes and the demo call these; none decides
anything clinical — screening is the engine's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...engine import evaluate
from ...engine.coverage import ALL, complete_kinds
from ...knowledge import get_ruleset
from ...knowledge.compiled import CompiledRuleset
from ...knowledge.schema import RuleDef
from ...questionnaire import FormDef, build_form
from ...store import Database
from ...store import audit as audit_log
from ...store.clinic_models import (
    ROLES,
    AppSetting,
    Invitation,
    Patient,
    QuestionnaireAnswer,
    Review,
    StoredAssessment,
    UploadedRecord,
    User,
    WebSession,
)
from ..screening import notes_extractor
from .config import WebConfig
from .records import ClinicPerson, Inspected, Source, compare, gather, inspect_upload
from .security import hash_password, new_token, token_hash
from .signoff import carries, fingerprint
from .signoff import reasons as signoff_reasons
from .throttle import LoginThrottle

SIGN_OFF_OUTCOMES = {
    "proceed-to-consultation": "Proceed to consultation",
    "not-a-candidate": "Not a candidate",
    "more-information-needed": "More information needed",
}
# Outcomes that depart from a `contraindicated` decision and so need a written reason.
DEPARTS_FROM_CONTRAINDICATED = {"proceed-to-consultation"}



def rule_definition(rule_id: str) -> RuleDef | None:
    """A rule's own text (rationale, patient text) from the knowledge base. It belongs to the
    rule, not to the policy a screening ran under, and a stored policy name cannot always be
    loaded again (a policy given as a YAML file is found by path, not by name)."""
    return get_ruleset(None).kb.rules.get(rule_id)

class ClinicError(ValueError):
    """A request the clinic refuses, with a message fit to show the user."""


class SignOffError(ClinicError):
    """A sign-off refused, naming the form field at fault (shown on that field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


LIVE_STATUSES = ("pending", "active")


@dataclass(frozen=True)
class UploadOutcome:
    """What became of an upload: ``screened`` (read; ``assessment`` is the new screening),
    ``needs-confirmation`` (its Patient differs or is missing: not read until confirmed) or
    ``duplicate`` (the same file is already uploaded for this patient: ``upload`` is that
    one, and nothing changed)."""

    status: str
    upload: int
    assessment: int | None = None


def _digest(text: str | None) -> str:
    """A reason's hash for the audit chain: the entry proves the text stored with the upload
    is the one given, without putting free text in the log."""
    return hashlib.sha256((text or "").encode()).hexdigest()


def _diffs(u: UploadedRecord) -> list[dict[str, Any]]:
    got = (u.summary or {}).get("differences")
    return [d for d in got if isinstance(d, dict)] if isinstance(got, list) else []


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


class Clinic:
    def __init__(self, db: Database, config: WebConfig, clock: Callable[[], dt.datetime],
                 default_policy: str | None = None) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.default_policy = default_policy
        self.throttle = LoginThrottle(self)
        # SQLite has one writer at a time and a read-then-write transaction can lose the
        # race; one in-process lock makes writes queue instead (PostgreSQL needs no lock).
        self._write_lock: threading.Lock | None = (
            threading.Lock() if db.engine.dialect.name == "sqlite" else None)

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.db.session() as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        if self._write_lock is None:
            with self.db.session() as s:
                yield s
            return
        with self._write_lock, self.db.session() as s:
            yield s

    def now(self) -> dt.datetime:
        return _aware(self.clock())

    def audit(self, s: Session, actor: str, action: str, target: str | None = None,
              **details: Any) -> None:
        audit_log.append(s, actor, action, target, details, now=self.now())

    # ------------------------------------------------------------------ settings
    def policy(self, s: Session) -> str | None:
        row = s.get(AppSetting, "policy")
        return row.value if row else self.default_policy

    def ruleset(self) -> CompiledRuleset:
        """The ruleset under the clinic's current policy."""
        with self.read() as s:
            return get_ruleset(self.policy(s))

    def form(self, s: Session | None = None) -> FormDef:
        if s is None:
            with self.read() as s2:
                return build_form(self.policy(s2))
        return build_form(self.policy(s))

    def set_policy(self, actor: User, name: str, reason: str = "") -> None:
        """Change the clinic's policy: a reason is required (kept in the audit entry, which
        holds no patient data)."""
        kb = get_ruleset(self.default_policy).kb
        if name not in kb.policies:
            raise ClinicError(f"Unknown policy {name!r}.")
        reason = reason.strip()
        if not reason:
            raise ClinicError("Give a reason for changing the screening policy.")
        with self.write() as s:
            before = self.policy(s)
            row = s.get(AppSetting, "policy")
            if row is None:
                s.add(AppSetting(key="policy", value=name))
            else:
                row.value = name
            self.audit(s, actor.username, "policy.set", None, policy=name, before=before,
                       reason=reason[:500])

    # ------------------------------------------------------------------ users and sessions
    def create_user(self, username: str, password: str, role: str, actor: str = "system"
                    ) -> User:
        username = username.strip()
        if role not in ROLES:
            raise ClinicError("Role must be staff, physician or admin.")
        if not username or len(username) > 80:
            raise ClinicError("Enter a user name of up to 80 characters.")
        if len(password) < 12:
            raise ClinicError("Passwords need at least 12 characters.")
        with self.write() as s:
            if s.scalar(select(User).where(User.username == username)) is not None:
                raise ClinicError("That user name is taken.")
            u = User(username=username, password_hash=hash_password(password), role=role,
                     active=True, created_at=self.now())
            s.add(u)
            s.flush()
            self.audit(s, actor, "user.create", f"User/{u.id}", role=role)
            return u

    def set_user_active(self, actor: User, user_id: int, active: bool) -> None:
        with self.write() as s:
            u = s.get(User, user_id)
            if u is None:
                raise ClinicError("No such user.")
            if u.id == actor.id and not active:
                raise ClinicError("You cannot deactivate your own account.")
            u.active = active
            if not active:
                for ws in s.scalars(select(WebSession).where(WebSession.user_id == u.id)):
                    s.delete(ws)
            self.audit(s, actor.username, "user.activate" if active else "user.deactivate",
                       f"User/{u.id}")

    def start_session(self, user: User) -> str:
        token = new_token()
        with self.write() as s:
            now = self.now()
            s.add(WebSession(token_hash=token_hash(token), user_id=user.id, created_at=now,
                             last_seen=now))
            self.audit(s, user.username, "login", f"User/{user.id}")
        return token

    def session_user(self, token: str | None) -> User | None:
        """The signed-in user, or None when the session is unknown or idle too long."""
        if not token:
            return None
        now = self.now()
        with self.read() as s:
            ws = s.scalar(select(WebSession).where(WebSession.token_hash == token_hash(token)))
            if ws is None:
                return None
            user = s.get(User, ws.user_id)
            idle = (now - _aware(ws.last_seen)).total_seconds()
            stale = idle > self.config.idle_timeout_s
            touch = idle > 30
        if stale or user is None or not user.active:
            self.end_session(token, reason="timeout" if stale else "inactive")
            return None
        if touch:
            with self.write() as s:
                ws2 = s.scalar(select(WebSession)
                               .where(WebSession.token_hash == token_hash(token)))
                if ws2 is not None:
                    ws2.last_seen = now
        return user

    def end_session(self, token: str, reason: str = "logout") -> None:
        with self.write() as s:
            ws = s.scalar(select(WebSession).where(WebSession.token_hash == token_hash(token)))
            if ws is not None:
                self.audit(s, f"User/{ws.user_id}", f"session.{reason}", f"User/{ws.user_id}")
                s.delete(ws)

    # ------------------------------------------------------------------ patients, invitations
    def create_patient(self, actor: str, name: str, birth_date: str | None,
                       gender: str | None, identifier: str | None = None) -> Patient:
        name = name.strip()
        identifier = (identifier or "").strip() or None
        if identifier and len(identifier) > 200:
            raise ClinicError("Enter an identifier of up to 200 characters.")
        if not name or len(name) > 200:
            raise ClinicError("Enter the patient's name (up to 200 characters).")
        if birth_date:
            try:
                dt.date.fromisoformat(birth_date)
            except ValueError:
                raise ClinicError("Enter the birth date as YYYY-MM-DD.") from None
        if gender and gender not in ("female", "male", "other", "unknown"):
            raise ClinicError("Choose the sex from the list.")
        with self.write() as s:
            p = Patient(fhir_id=str(uuid.uuid4()), display_name=name,
                        birth_date=birth_date or None, gender=gender or None,
                        identifier=identifier, created_at=self.now())
            s.add(p)
            s.flush()
            self.audit(s, actor, "patient.create", f"Patient/{p.id}")
            return p

    def create_invitation(self, actor: User | None, patient_id: int) -> str:
        token = new_token()
        with self.write() as s:
            if s.get(Patient, patient_id) is None:
                raise ClinicError("No such patient.")
            now = self.now()
            inv = Invitation(token_hash=token_hash(token), patient_id=patient_id,
                             created_by=actor.id if actor else None, created_at=now,
                             expires_at=now + dt.timedelta(seconds=self.config.invitation_ttl_s))
            s.add(inv)
            s.flush()
            self.audit(s, actor.username if actor else "system", "invitation.create",
                       f"Patient/{patient_id}", invitation=inv.id)
        return token

    def invitation(self, s: Session, token: str) -> Invitation | None:
        """The invitation for a link token: None if unknown or expired (used ones are
        returned so the page can say the answers were sent)."""
        inv = s.scalar(select(Invitation).where(Invitation.token_hash == token_hash(token)))
        if inv is None:
            return None
        if inv.used_at is None and (inv.revoked_at is not None
                                    or _aware(inv.expires_at) <= self.now()):
            return None
        return inv

    def revoke_invitation(self, actor: User, patient_id: int, invitation_id: int) -> None:
        with self.write() as s:
            inv = s.get(Invitation, invitation_id)
            if inv is None or inv.patient_id != patient_id:
                raise ClinicError("No such link for this patient.")
            if inv.used_at is not None or inv.revoked_at is not None:
                raise ClinicError("This link is no longer open.")
            inv.revoked_at, inv.revoked_by = self.now(), actor.id
            self.audit(s, actor.username, "invitation.revoke", f"Patient/{patient_id}",
                       invitation=inv.id)

    def saved_response(self, s: Session, inv: Invitation) -> QuestionnaireAnswer | None:
        return s.scalar(select(QuestionnaireAnswer)
                        .where(QuestionnaireAnswer.invitation_id == inv.id))

    def save_answers(self, token: str, answers: dict[str, Any], *, final: bool
                     ) -> StoredAssessment | None:
        """Store the answers on the link's response; on ``final``, use the link up and
        screen the patient. Raises ClinicError if the link is not open."""
        from ...questionnaire import context_answers, to_response

        with self.write() as s:
            inv = self.invitation(s, token)
            if inv is None or inv.used_at is not None:
                raise ClinicError("This link is no longer open.")
            form = self.form(s)
            patient = s.get(Patient, inv.patient_id)
            assert patient is not None
            row = self.saved_response(s, inv)
            now = self.now()
            rid = f"qr-{inv.id}"
            resource = to_response(form, answers, response_id=rid,
                                   patient_ref=f"Patient/{patient.fhir_id}", authored=now,
                                   completed=final, context=context_answers(
                                       patient.gender, patient.birth_date, now.date()))
            if row is None:
                row = QuestionnaireAnswer(patient_id=patient.id, invitation_id=inv.id,
                                          status=resource["status"], resource=resource,
                                          updated_at=now)
                s.add(row)
            else:
                row.status, row.resource, row.updated_at = resource["status"], resource, now
            s.flush()
            actor = f"Invitation/{inv.id}"
            self.audit(s, actor, "questionnaire.submit" if final else "questionnaire.save",
                       f"Patient/{patient.id}", response=row.id)
            if not final:
                return None
            inv.used_at = now
            return self._screen(s, patient, actor, "questionnaire")

    # ------------------------------------------------------------------ records and screening
    def add_upload(self, actor: User, patient_id: int, filename: str, data: bytes, *,
                   complete: bool = False, inspected: Inspected | None = None
                   ) -> UploadOutcome:
        """Store an upload the reader accepted. A file already uploaded for this patient (same
        bytes) is that upload, not a second one. A file whose Patient differs from the clinic
        patient, or that names none, waits for staff to confirm it (``confirm_upload``) and is
        not read until then; otherwise the patient is screened again."""
        if inspected is None:
            inspected = inspect_upload(data, filename, self.ruleset())
        try:
            return self._add_upload(actor, patient_id, filename, data, complete, inspected)
        except IntegrityError:
            # the same file stored for this patient by a request that committed in between
            # (PostgreSQL runs them at once; the unique index on live uploads refuses the
            # second): that one is the upload, and this attempt finds it
            return self._add_upload(actor, patient_id, filename, data, complete, inspected)

    def _same_upload(self, s: Session, patient_id: int, digest: str) -> UploadedRecord | None:
        return s.scalar(select(UploadedRecord).where(
            UploadedRecord.patient_id == patient_id, UploadedRecord.sha256 == digest,
            UploadedRecord.status.in_(LIVE_STATUSES)))

    def _add_upload(self, actor: User, patient_id: int, filename: str, data: bytes,
                    complete: bool, inspected: Inspected) -> UploadOutcome:
        digest = hashlib.sha256(data).hexdigest()
        with self.write() as s:
            patient = s.get(Patient, patient_id)
            if patient is None:
                raise ClinicError("No such patient.")
            same = self._same_upload(s, patient_id, digest)
            if same is not None:
                self.audit(s, actor.username, "record.upload-duplicate", f"Patient/{patient_id}",
                           upload=same.id, sha256=digest)
                return UploadOutcome("duplicate", same.id)
            diffs = compare(self._person(s, patient), inspected.person)
            status = "pending" if diffs else "active"
            rec = UploadedRecord(
                patient_id=patient_id, filename=filename[:255], data=data,
                uploaded_by=actor.id, created_at=self.now(), sha256=digest, size=len(data),
                status=status, complete=complete,
                summary={"patient": inspected.person.to_dict() if inspected.person else None,
                         "held": inspected.held,
                         "differences": [d.to_dict() for d in diffs]})
            s.add(rec)
            s.flush()
            self.audit(s, actor.username, "record.upload", f"Patient/{patient_id}",
                       upload=rec.id, bytes=len(data), sha256=digest, status=status,
                       complete=complete, differs=sorted({d.field for d in diffs}))
            if diffs:
                return UploadOutcome("needs-confirmation", rec.id)
            stored = self._screen(s, patient, actor.username, "upload")
            return UploadOutcome("screened", rec.id, stored.id)

    def _person(self, s: Session, patient: Patient) -> ClinicPerson:
        known: list[tuple[str | None, str, str]] = []
        for u in s.scalars(select(UploadedRecord).where(
                UploadedRecord.patient_id == patient.id, UploadedRecord.status == "active")
                .order_by(UploadedRecord.id)):
            shown = (u.summary or {}).get("patient")
            if isinstance(shown, dict):
                for i in shown.get("identifiers") or ():
                    if isinstance(i, dict) and i.get("value"):
                        known.append((i.get("system"), str(i["value"]), u.filename))
        return ClinicPerson(patient.display_name, patient.birth_date, patient.gender,
                            patient.identifier, tuple(known))

    def _upload(self, s: Session, patient_id: int, upload_id: int) -> UploadedRecord:
        u = s.get(UploadedRecord, upload_id)
        if u is None or u.patient_id != patient_id:
            raise ClinicError("No such upload for this patient.")
        return u

    def confirm_upload(self, actor: User, patient_id: int, upload_id: int, reason: str
                       ) -> StoredAssessment:
        """Staff confirm that a file whose Patient differs (or names none) is this patient's:
        a reason is required; the file is read from now on."""
        reason = reason.strip()
        if not reason:
            raise ClinicError("Give a reason for reading this file as this patient's records.")
        with self.write() as s:
            u = self._upload(s, patient_id, upload_id)
            if u.status != "pending":
                raise ClinicError("This upload is not awaiting confirmation.")
            patient = s.get(Patient, patient_id)
            assert patient is not None
            u.status, u.confirmed_by, u.confirmed_at = "active", actor.id, self.now()
            u.confirm_reason = reason[:2000]
            self.audit(s, actor.username, "record.confirm", f"Patient/{patient_id}",
                       upload=u.id, sha256=u.sha256, reason_sha256=_digest(u.confirm_reason),
                       differs=sorted({str(d.get("field")) for d in _diffs(u)}))
            return self._screen(s, patient, actor.username, "upload-confirmed")

    def cancel_upload(self, actor: User, patient_id: int, upload_id: int) -> None:
        """Staff decline a file awaiting confirmation: it was never read, and its bytes are
        deleted (they are probably another person's); the row and the audit entry keep its
        name, size, hash and what it showed."""
        with self.write() as s:
            u = self._upload(s, patient_id, upload_id)
            if u.status != "pending":
                raise ClinicError("This upload is not awaiting confirmation.")
            u.status, u.ended_by, u.ended_at, u.data = "cancelled", actor.id, self.now(), b""
            self.audit(s, actor.username, "record.cancel", f"Patient/{patient_id}",
                       upload=u.id, sha256=u.sha256)

    def withdraw_upload(self, actor: User, patient_id: int, upload_id: int, reason: str
                        ) -> StoredAssessment:
        """Take an accepted file out of the patient's record: screenings from now on do not
        read it (the patient is screened again at once). The bytes are kept: the earlier
        screenings, still in the history, read them, and the audit entry holds their hash."""
        reason = reason.strip()
        if not reason:
            raise ClinicError("Give a reason for withdrawing this file.")
        with self.write() as s:
            u = self._upload(s, patient_id, upload_id)
            if u.status != "active":
                raise ClinicError("Only a file that screenings read can be withdrawn.")
            patient = s.get(Patient, patient_id)
            assert patient is not None
            u.status, u.ended_by, u.ended_at = "withdrawn", actor.id, self.now()
            u.ended_reason = reason[:2000]
            self.audit(s, actor.username, "record.withdraw", f"Patient/{patient_id}",
                       upload=u.id, sha256=u.sha256, reason_sha256=_digest(u.ended_reason))
            return self._screen(s, patient, actor.username, "withdraw")

    def set_upload_complete(self, actor: User, patient_id: int, upload_id: int,
                            complete: bool) -> StoredAssessment | None:
        """Mark (or unmark) a file as the patient's complete record: its kinds of data are
        then declared complete. Re-screens when the file is read."""
        with self.write() as s:
            u = self._upload(s, patient_id, upload_id)
            if u.status not in LIVE_STATUSES:
                raise ClinicError("This upload is no longer part of the record.")
            if u.complete == complete:
                return None
            u.complete = complete
            self.audit(s, actor.username, "record.complete", f"Patient/{patient_id}",
                       upload=u.id, complete=complete)
            if u.status != "active":
                return None
            patient = s.get(Patient, patient_id)
            assert patient is not None
            return self._screen(s, patient, actor.username, "complete-record")

    def rescreen(self, actor: str, patient_id: int, trigger: str = "rescreen"
                 ) -> StoredAssessment:
        with self.write() as s:
            patient = s.get(Patient, patient_id)
            if patient is None:
                raise ClinicError("No such patient.")
            return self._screen(s, patient, actor, trigger)

    def _screen(self, s: Session, patient: Patient, actor: str, trigger: str
                ) -> StoredAssessment:
        rows = s.scalars(select(UploadedRecord).where(
            UploadedRecord.patient_id == patient.id, UploadedRecord.status == "active")
            .order_by(UploadedRecord.id)).all()
        uploads = [Source(f"upload-{u.id}-{u.filename}", u.data, u.complete) for u in rows]
        responses = [r.resource for r in s.scalars(
            select(QuestionnaireAnswer).where(QuestionnaireAnswer.patient_id == patient.id,
                                              QuestionnaireAnswer.status == "completed")
            .order_by(QuestionnaireAnswer.id))]
        ruleset = get_ruleset(self.policy(s))
        got = gather(patient.fhir_id, patient.gender, patient.birth_date, uploads, responses,
                     complete_kinds(ruleset, ALL))
        now = self.now()
        assessment = evaluate(got.record, ruleset, now.date(), notes_extractor())
        doc = assessment.to_dict()
        doc["input_errors"] = [e.describe() for e in got.errors]
        stored = StoredAssessment(
            patient_id=patient.id, decision=assessment.decision,
            as_of=assessment.as_of.isoformat(), ruleset_sha256=ruleset.sha256,
            policy_name=ruleset.policy_name, policy_sha256=ruleset.policy_sha256,
            trigger=trigger, document=doc, created_at=now,
            findings_sha256=fingerprint(doc, ruleset.sha256, ruleset.policy_sha256))
        s.add(stored)
        s.flush()
        self.audit(s, actor, "assessment.create", f"Patient/{patient.id}",
                   assessment=stored.id, decision=assessment.decision, trigger=trigger,
                   ruleset=ruleset.sha256, policy=ruleset.policy_name,
                   uploads=[u.id for u in rows])
        return stored

    # ------------------------------------------------------------------ reviews
    def sign_off(self, actor: User, patient_id: int, assessment_id: int, outcome: str,
                 reason: str, reason_code: str = "") -> Review:
        """A physician's outcome for the newest screening, with a standard reason
        (``signoff-reasons.yaml``) and/or free text; both go into the audit chain (the code,
        and the text's sha256)."""
        if actor.role != "physician":
            raise PermissionError("Only a physician can sign off.")
        if outcome not in SIGN_OFF_OUTCOMES:
            raise SignOffError("outcome", "Choose one of the sign-off outcomes.")
        reason = reason.strip()
        code = reason_code.strip() or None
        std = next((r for r in signoff_reasons() if r.code == code), None) if code else None
        if code and (std is None or (std.outcomes and outcome not in std.outcomes)):
            raise SignOffError("reason_code", "That standard reason does not fit the chosen "
                                              "outcome; pick another or leave it blank.")
        with self.write() as s:
            latest = s.scalar(select(StoredAssessment)
                              .where(StoredAssessment.patient_id == patient_id)
                              .order_by(StoredAssessment.id.desc()).limit(1))
            opened = s.get(StoredAssessment, assessment_id) if latest is not None else None
            if (latest is not None and opened is not None and opened.id != latest.id
                    and opened.patient_id == patient_id and carries(opened, latest)):
                # re-screened meanwhile with nothing changed: the page showed what it rests on
                assessment_id = latest.id
            if latest is None or latest.id != assessment_id:
                raise SignOffError("outcome", "The screening changed since this page was "
                                              "opened; review the newest result before "
                                              "signing off.")
            if (latest.decision == "contraindicated" and outcome in DEPARTS_FROM_CONTRAINDICATED
                    and not reason):
                raise SignOffError("reason", "A reason is required when the decision departs "
                                             "from a contraindicated finding: write it in "
                                             "your own words.")
            rv = Review(patient_id=patient_id, assessment_id=assessment_id, user_id=actor.id,
                        kind="sign-off", outcome=outcome, reason=reason[:4000] or None,
                        reason_code=code, created_at=self.now())
            s.add(rv)
            s.flush()
            self.audit(s, actor.username, "signoff.create", f"Patient/{patient_id}",
                       review=rv.id, assessment=assessment_id, outcome=outcome,
                       reason_code=code, reason_sha256=_digest(rv.reason) if rv.reason else None,
                       departs=latest.decision == "contraindicated"
                       and outcome in DEPARTS_FROM_CONTRAINDICATED)
            return rv

    def add_note(self, actor: User, patient_id: int, assessment_id: int, text: str) -> Review:
        text = text.strip()
        if not text:
            raise ClinicError("Write the note before saving it.")
        with self.write() as s:
            a = s.get(StoredAssessment, assessment_id)
            if a is None or a.patient_id != patient_id:
                raise ClinicError("No such screening.")
            rv = Review(patient_id=patient_id, assessment_id=assessment_id, user_id=actor.id,
                        kind="note", outcome=None, reason=text[:4000], created_at=self.now())
            s.add(rv)
            s.flush()
            self.audit(s, actor.username, "review.note", f"Patient/{patient_id}", review=rv.id)
            return rv
