"""``make demo``: seed demo accounts and patients into a local SQLite file, then serve the app
on http://127.0.0.1:8000.

Accounts get fresh random passwords on every start, printed once; demo patients (synthetic
FHIR files) are screened through the engine like any upload, on the first start only.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import func, select

from ..fhir.reader import iter_files
from ..store.clinic_models import ROLES, Patient, User
from .config import Settings

DEMO_DIR = Path("demo-data")


def seed(app: object, patients_dir: str | Path | None, base_url: str,
         max_patients: int = 25) -> dict[str, object]:
    """Accounts (password reset each time), patients (first time only), one open link."""
    from .web.clinic import Clinic
    from .web.records import inspect_upload
    from .web.security import hash_password

    clinic: Clinic = app.state.clinic  # type: ignore[attr-defined]
    accounts: dict[str, str] = {}
    for role in ROLES:
        name = f"demo-{role}"
        password = secrets.token_urlsafe(12)
        with clinic.write() as s:
            u = s.scalar(select(User).where(User.username == name))
            if u is not None:
                u.password_hash, u.active = hash_password(password), True
                clinic.audit(s, "demo", "user.password-reset", f"User/{u.id}")
        if u is None:
            clinic.create_user(name, password, role, actor="demo")
        accounts[name] = password
    admin = None
    with clinic.read() as s:
        admin = s.scalar(select(User).where(User.username == "demo-admin"))
        have = s.scalar(select(func.count()).select_from(Patient)) or 0
    seeded = 0
    if not have and patients_dir is not None:
        for i, path in enumerate(iter_files([patients_dir])):
            if seeded >= max_patients or not isinstance(path, Path):
                continue
            data = path.read_bytes()
            got = inspect_upload(data, path.name, clinic.ruleset())
            if got.errors or got.patients != 1 or (got.person and got.person.deceased):
                continue  # a prospective patient is alive: a deceased one would need confirming
            name, gender, birth = _demographics(data, f"Demo patient {i + 1}")
            p = clinic.create_patient("demo", name, birth, gender)
            assert admin is not None
            clinic.add_upload(admin, p.id, path.name, data, inspected=got)
            seeded += 1
    p = clinic.create_patient("demo", "Demo questionnaire patient", "1990-05-01", "female")
    token = clinic.create_invitation(admin, p.id)
    return {"accounts": accounts, "patients": seeded, "link": f"{base_url}/p/{token}"}


def _demographics(data: bytes, fallback: str) -> tuple[str, str | None, str | None]:
    """Name, sex and birth date from the file's Patient resource (synthetic demo data)."""
    import gzip

    import orjson

    try:
        doc = orjson.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    except (orjson.JSONDecodeError, OSError):
        return fallback, None, None
    entries = doc.get("entry", []) if isinstance(doc, dict) else []
    for e in entries:
        res = e.get("resource") if isinstance(e, dict) else None
        if isinstance(res, dict) and res.get("resourceType") == "Patient":
            names = res.get("name") or [{}]
            n = names[0] if isinstance(names[0], dict) else {}
            shown = " ".join([*n.get("given", []), n.get("family", "")]).strip()
            gender = res.get("gender") if res.get("gender") in (
                "female", "male", "other", "unknown") else None
            birth = res.get("birthDate")
            return (shown or fallback)[:200], gender, birth if isinstance(birth, str) else None
    return fallback, None, None


def serve_demo(patients_dir: str | Path | None = None, host: str = "127.0.0.1",
               port: int = 8000, db_url: str | None = None) -> None:
    import uvicorn

    from .app import create_app

    DEMO_DIR.mkdir(exist_ok=True)
    url = db_url or f"sqlite:///{(DEMO_DIR / 'clinic.db').resolve()}"
    app = create_app(Settings(host=host, port=port, db_url=url))
    base = f"http://{host}:{port}"
    info = seed(app, patients_dir, base)
    print(f"\nmsc-screen demo clinic at {base}/login  (database {url})")
    print("Demo accounts (passwords are new on every start; shown only now):")
    for name, password in info["accounts"].items():  # type: ignore[attr-defined]
        print(f"  {name:16} {password}")
    print(f"Demo patients screened from files: {info['patients']}")
    print(f"Questionnaire link for a demo patient: {info['link']}\n", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                proxy_headers=False)
