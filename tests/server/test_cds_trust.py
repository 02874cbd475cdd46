"""Issue 13 item 3 / issue 15 item 7: the client trust model and fhirServer.

Oracle Health style entries (several JWK Set URLs, allowed tenants, entries sharing an iss),
``typ``/``nbf``/lifetime checks, a replay cache that never locks the service, fhirServer
https-only and on the calling client's list (compared as URLs: scheme, host, port, segments),
private and link-local addresses refused, a warning for published keys, and no FHIR URL,
patient id or token in the server log."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import ECKey

from msc_screen.server.app import create_app
from msc_screen.server.cds.auth import AuthError, JwtVerifier, ReplayCache
from msc_screen.server.cds.clients import load_clients
from msc_screen.server.cds.fhir_base import (
    FhirBase,
    FhirServerRefused,
    check_fhir_server,
    same_server,
)

from .cards_check import assert_valid_response
from .conftest import NOW, SPEC_ISS, SPEC_PRIVATE_JWK, SPEC_PUBLIC_JWKS

pytestmark = pytest.mark.xdist_group("cds-fhir")
AUD = "https://cds.example.org/cds-services"
PV = "/cds-services/msc-screen-patient-view"
OTHER_KEY = ECKey.generate_key("P-384", parameters={"kid": "site-b"}, private=True)
OTHER_JWKS = {"keys": [OTHER_KEY.as_dict(private=False)]}


def token(aud: str = AUD, *, key: Any = None, header: dict[str, Any] | None = None,
          drop: tuple[str, ...] = (), **claims: Any) -> str:
    t = int(NOW.timestamp())
    body = {"iss": SPEC_ISS, "sub": "client_id", "aud": aud, "exp": t + 300, "iat": t,
            "jti": str(uuid.uuid4()), "tenant": "2ddd6c3a", **claims}
    for d in drop:
        body.pop(d, None)
    k = key or ECKey.import_key(SPEC_PRIVATE_JWK)
    hdr = {"alg": "ES384", "typ": "JWT", "kid": k.kid, **(header or {})}
    hdr = {n: v for n, v in hdr.items() if v is not None}
    # jws, not jwt.encode: that one would add the typ a test leaves out
    return jws.serialize_compact(hdr, json.dumps(body).encode(), k, algorithms=["ES384"])


def verifier(entries: list[dict[str, Any]], http: httpx.AsyncClient | None = None,
             replay: ReplayCache | None = None) -> JwtVerifier:
    return JwtVerifier(load_clients(json.dumps(entries)), clock=lambda: NOW.timestamp(),
                       http=http, replay=replay)


def verify(v: JwtVerifier, tok: str) -> dict[str, Any]:
    return asyncio.run(v.verify("Bearer " + tok, AUD))


SPEC_ENTRY = {"iss": SPEC_ISS, "jwks": SPEC_PUBLIC_JWKS}


# -- the JWT attack list (beyond test_cds_auth.py) ----------------------------------------

@pytest.mark.parametrize("tok, reason", [
    (lambda: token(header={"typ": None}), "typ"),
    (lambda: token(header={"typ": "at+jwt"}), "typ"),
    (lambda: token(nbf=int(NOW.timestamp()) + 3600), "nbf"),
    (lambda: token(exp=int(NOW.timestamp()) + 7200), "lifetime"),
    (lambda: token(iat=int(NOW.timestamp()) - 3000, exp=int(NOW.timestamp()) + 1000), "lifetime"),
    (lambda: token(exp="soon"), "number"),
    (lambda: token(header={"kid": "no-such-kid"}), "signature"),
    (lambda: token(key=OTHER_KEY), "signature"),
])
def test_forged_or_overlong_tokens_are_refused(tok, reason):
    with pytest.raises(AuthError, match=reason):
        verify(verifier([SPEC_ENTRY]), tok())


def test_typ_is_case_insensitive_and_a_past_nbf_is_fine():
    v = verifier([SPEC_ENTRY])
    assert verify(v, token(header={"typ": "jwt"}))["iss"] == SPEC_ISS
    assert verify(v, token(nbf=int(NOW.timestamp()) - 10))["iss"] == SPEC_ISS


def test_lifetime_cap_is_per_client():
    """Epic's tokens live 5 minutes: a site can cap at 15 minutes."""
    v = verifier([{**SPEC_ENTRY, "max_lifetime_s": 900}])
    assert verify(v, token(exp=int(NOW.timestamp()) + 900))
    with pytest.raises(AuthError, match="900 s"):
        verify(v, token(exp=int(NOW.timestamp()) + 901))


def test_tenants_are_checked_when_listed():
    v = verifier([{**SPEC_ENTRY, "tenants": ["2ddd6c3a", "site-2"]}])
    assert verify(v, token(tenant="site-2"))["tenant"] == "site-2"
    with pytest.raises(AuthError, match="tenant is not one allowed"):
        verify(v, token(tenant="other-site"))
    with pytest.raises(AuthError, match="tenant claim is required"):
        verify(v, token(drop=("tenant",)))


def test_entries_sharing_an_iss_are_told_apart_by_tenant():
    """Oracle Health: one iss for every site, the tenant names the site; a token for site B
    signed with site A's key is refused."""
    v = verifier([{**SPEC_ENTRY, "tenants": ["site-a"]},
                  {"iss": SPEC_ISS, "jwks": OTHER_JWKS, "tenants": ["site-b"]}])
    assert verify(v, token(tenant="site-a"))
    assert verify(v, token(tenant="site-b", key=OTHER_KEY))
    with pytest.raises(AuthError, match="signature"):
        verify(v, token(tenant="site-b"))


def test_overlapping_entries_for_one_iss_are_refused_at_load():
    with pytest.raises(ValueError, match=r"clients\[1\].*distinct 'tenants'"):
        load_clients(json.dumps([SPEC_ENTRY, {"iss": SPEC_ISS, "jwks": OTHER_JWKS}]))


def test_several_jwks_urls_and_jku_among_them():
    urls = {"https://ehr.example/jwks-a": SPEC_PUBLIC_JWKS,
            "https://ehr.example/jwks-b": OTHER_JWKS}
    fetched: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, json=urls[str(request.url)])

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    v = verifier([{"iss": SPEC_ISS, "jwks_urls": list(urls)}], http=http)
    assert verify(v, token(key=OTHER_KEY))  # no jku: the keys of every listed URL
    assert sorted(fetched) == sorted(urls)
    assert verify(v, token(key=OTHER_KEY, header={"jku": "https://ehr.example/jwks-b"}))
    with pytest.raises(AuthError, match="jku"):
        verify(v, token(header={"jku": "https://ehr.example/jwks-a/../evil"}))
    with pytest.raises(AuthError, match="signature"):  # jku A does not hold key B
        verify(v, token(key=OTHER_KEY, header={"jku": "https://ehr.example/jwks-a"}))
    assert len(fetched) == 2  # cached; the foreign jku was never fetched


@pytest.mark.parametrize("entry, message", [
    ({**SPEC_ENTRY, "tenants": []}, "tenants"),
    ({**SPEC_ENTRY, "fhir_servers": ["http://ehr.example/fhir"]}, "loopback"),
    ({**SPEC_ENTRY, "fhir_servers": "https://ehr.example/fhir"}, "list"),
    ({**SPEC_ENTRY, "max_lifetime_s": 0}, "max_lifetime_s"),
    ({**SPEC_ENTRY, "jwks_urlz": "x"}, "unknown key"),
    ({"iss": "a", "jwks_urls": []}, "non-empty"),
    ({"iss": "a", "jwks_url": "http://ehr.example/jwks"}, "must be https"),
])
def test_bad_entries_are_named(entry, message):
    with pytest.raises(ValueError, match=message):
        load_clients(json.dumps([entry]))


# -- the replay cache ----------------------------------------------------------------------

def test_replay_cache_is_bounded_and_never_locks_out():
    c = ReplayCache(max_entries=3)
    now = 1000.0
    for i in range(10):  # past the bound: every new token still gets in
        assert c.check_and_add("iss", f"j{i}", now + 100 + i, now)
    assert len(c) == 3 and c.evicted == 7
    assert not c.check_and_add("iss", "j9", now + 200, now)  # the newest are still refused
    assert c.check_and_add("iss", "j0", now + 300, now + 150)  # expired ones are forgotten
    later = now + 10_000
    assert c.check_and_add("iss", "new", later + 5, later) and len(c) == 1


# -- fhirServer ----------------------------------------------------------------------------

@pytest.mark.parametrize("url, base, same", [
    ("https://ehr.example/fhir/Observation?_offset=5", "https://ehr.example/fhir", True),
    ("https://EHR.example:443/fhir/Patient/1", "https://ehr.example/fhir/", True),
    ("https://ehr.example/fhir-evil/Patient/1", "https://ehr.example/fhir", False),
    ("https://ehr.example/fhirx", "https://ehr.example/fhir", False),
    ("https://ehr.example:8443/fhir/Patient", "https://ehr.example/fhir", False),
    ("http://ehr.example/fhir/Patient", "https://ehr.example/fhir", False),
    ("https://ehr.example.evil/fhir/Patient", "https://ehr.example/fhir", False),
    ("https://user@ehr.example/fhir/Patient", "https://ehr.example/fhir", False),
    ("https://ehr.example/fhir/../admin", "https://ehr.example/fhir", False),
])
def test_same_server_compares_scheme_host_port_and_segments(url, base, same):
    assert same_server(url, base) is same


def run_check(url: str, allowed: list[str] | None) -> FhirBase:
    listed = None if allowed is None else tuple(FhirBase.parse_listed(a, "t") for a in allowed)
    return asyncio.run(check_fhir_server(url, listed))


@pytest.mark.parametrize("url, allowed, reason", [
    ("https://other.example/fhir", ["https://ehr.example/fhir"], "not one of the FHIR servers"),
    ("https://ehr.example/fhir-evil", ["https://ehr.example/fhir"], "not one of"),
    ("http://ehr.example/fhir", ["https://ehr.example/fhir"], "not one of"),
    ("https://ehr.example/fhir", [], "lists no fhir_servers"),
    ("http://203.0.113.9/fhir", None, "must be https"),
    ("https://10.1.2.3/fhir", None, "private"),
    ("https://192.168.0.7/fhir", None, "private"),
    ("https://169.254.169.254/latest", None, "link-local"),
    ("https://[fe80::1]/fhir", None, "link-local"),
    ("https://[::ffff:10.0.0.1]/fhir", None, "private"),
    ("ftp://ehr.example/fhir", None, "https"),
])
def test_fhir_server_refusals(url, allowed, reason):
    with pytest.raises(FhirServerRefused, match=reason):
        run_check(url, allowed)


def test_fhir_server_accepted():
    assert run_check("https://ehr.example/fhir/R4", ["https://ehr.example/fhir"]).host
    assert run_check("http://127.0.0.1:9999/fhir", ["http://127.0.0.1:9999/fhir"])
    assert run_check("https://10.1.2.3/fhir", ["https://10.1.2.3/fhir"])  # listed: intended
    assert run_check("https://93.184.216.34/fhir", None)  # no auth: a public address


@pytest.fixture
def signed_client(make_settings, tmp_path, fake_fhir):
    p = tmp_path / "clients.json"
    p.write_text(json.dumps([{**SPEC_ENTRY, "fhir_servers": [fake_fhir.base]}]))
    with TestClient(create_app(make_settings(cds_clients=str(p)))) as c:
        yield c


def call(client: TestClient, pid: str, server: str) -> httpx.Response:
    body = {"hookInstance": str(uuid.uuid4()), "hook": "patient-view", "fhirServer": server,
            "fhirAuthorization": {"access_token": "secret-token-42", "token_type": "Bearer"},
            "context": {"userId": "Practitioner/1", "patientId": pid}}
    return client.post(PV, json=body, headers={
        "Authorization": "Bearer " + token("http://testserver" + PV)})


@pytest.mark.parametrize("suffix, reason", [
    ("-evil", "not one of the FHIR servers"),
    ("@", None),
])
def test_fhir_server_off_the_list_is_400_naming_the_reason(signed_client, fake_fhir,
                                                           synthea_patient, suffix, reason):
    fake_fhir.app.state.log.clear()
    server = (fake_fhir.base + suffix if suffix != "@"
              else fake_fhir.base.replace("127.0.0.1", "localhost"))
    r = call(signed_client, synthea_patient["id"], server)
    assert r.status_code == 400
    issue = r.json()["issue"][0]
    assert issue["diagnostics"].startswith("fhirServer refused")
    assert reason is None or reason in issue["diagnostics"]
    assert issue["expression"] == ["fhirServer"]
    assert fake_fhir.app.state.log == []  # nothing, and no token, was sent


def test_listed_loopback_fhir_server_is_used(signed_client, fake_fhir, synthea_patient):
    fake_fhir.app.state.log.clear()
    r = call(signed_client, synthea_patient["id"], fake_fhir.base)
    assert r.status_code == 200
    assert_valid_response(r.json())
    assert {a for _p, _q, a in fake_fhir.app.state.log} == {"Bearer secret-token-42"}


def test_no_auth_refuses_a_private_fhir_server(make_settings, synthea_patient):
    with TestClient(create_app(make_settings(insecure_no_auth=True))) as c:
        body = {"hookInstance": "h", "hook": "patient-view", "fhirServer": "https://10.0.0.5/fhir",
                "context": {"patientId": synthea_patient["id"]}}
        r = c.post(PV, json=body)
    assert r.status_code == 400 and "private" in r.json()["issue"][0]["diagnostics"]


# -- published keys, and what the log holds ------------------------------------------------

def test_trusting_a_published_key_warns_at_start(make_settings, tmp_path, caplog):
    p = tmp_path / "clients.json"
    p.write_text(json.dumps([SPEC_ENTRY, {"iss": "https://sandbox.cds-hooks.org",
                                          "jwks_url": "https://sandbox.cds-hooks.org/"
                                                      ".well-known/jwks.json"}]))
    with caplog.at_level(logging.WARNING, logger="msc_screen"):
        create_app(make_settings(cds_clients=str(p)))
    text = caplog.text
    assert "specification's example key" in text and "sandbox" in text
    caplog.clear()
    q = tmp_path / "own.json"
    q.write_text(json.dumps([{"iss": "https://ehr.example", "jwks": OTHER_JWKS}]))
    with caplog.at_level(logging.WARNING, logger="msc_screen"):
        create_app(make_settings(cds_clients=str(q)))
    assert "published" not in caplog.text


def test_no_fhir_url_patient_id_or_token_in_the_log(make_settings, tmp_path, fake_fhir,
                                                    synthea_patient, live_app, caplog):
    """Real uvicorn, real HTTP, every logger at DEBUG: the server's log (a grep of the
    captured records) holds neither the patient id, the FHIR URL, nor the bearer token."""
    p = tmp_path / "clients.json"
    p.write_text(json.dumps([{**SPEC_ENTRY, "fhir_servers": [fake_fhir.base]}]))
    pid = synthea_patient["id"]
    app = create_app(make_settings(cds_clients=str(p)))
    caplog.set_level(logging.DEBUG)
    with live_app(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        for server in (fake_fhir.base, fake_fhir.base + "-evil"):
            body = {"hookInstance": str(uuid.uuid4()), "hook": "patient-view",
                    "fhirServer": server, "context": {"patientId": pid},
                    "fhirAuthorization": {"access_token": "secret-token-42"}}
            http.post(PV, json=body, headers={"Authorization": "Bearer " + token(srv.url + PV)})
        http.post(PV, json=body, headers={"Authorization": "Bearer " + token("https://x/")})
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert logged, "the test should capture the server's log"
    assert pid not in logged
    assert "secret-token-42" not in logged
    assert fake_fhir.base not in logged and "/fhir/" not in logged


def test_host_names_are_judged_by_the_addresses_they_resolve_to(monkeypatch):
    """Without authentication a name that resolves to a private address is refused like the
    address itself (the DNS answer is taken from the resolver's cache here)."""
    import time

    from msc_screen.server.cds import fhir_base

    monkeypatch.setitem(fhir_base._dns_cache, "intranet.example",
                        (time.monotonic(), ["10.0.0.8"]))
    monkeypatch.setitem(fhir_base._dns_cache, "mixed.example",
                        (time.monotonic(), ["93.184.216.34", "169.254.169.254"]))
    monkeypatch.setitem(fhir_base._dns_cache, "public.example",
                        (time.monotonic(), ["93.184.216.34"]))
    with pytest.raises(FhirServerRefused, match="private"):
        run_check("https://intranet.example/fhir", None)
    with pytest.raises(FhirServerRefused, match="link-local"):
        run_check("https://mixed.example/fhir", None)
    assert run_check("https://public.example/fhir", None).host == "public.example"
