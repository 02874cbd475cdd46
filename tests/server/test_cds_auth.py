"""Client JWT checks required by the CDS Hooks spec, with the spec's example ES384 key."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey

from msc_screen.server.app import create_app
from msc_screen.server.cds.auth import AuthError, JwtVerifier, load_clients

from .conftest import NOW, SPEC_ISS, SPEC_JKU, SPEC_JWT, SPEC_PUBLIC_JWKS, b64, sign

DISCOVERY = "http://testserver/cds-services"


@pytest.fixture
def client(make_settings, clients_file):
    with TestClient(create_app(make_settings(cds_clients=clients_file))) as c:
        yield c


def _get(client, token):
    return client.get("/cds-services", headers={"Authorization": f"Bearer {token}"})


def _reason(resp) -> str:
    return resp.json()["issue"][0]["diagnostics"]


def test_spec_example_jwt_verifies_with_spec_key():
    """The spec's token lives 3.5 years: refused by the default one-hour cap, accepted by a
    client entry that allows it (issue 13: token lifetime is capped)."""
    aud = "https://cds.example.org/cds-services/some-service"
    during = dt.datetime(2014, 1, 1, tzinfo=dt.UTC).timestamp()
    capped = JwtVerifier(load_clients(json.dumps([{"iss": SPEC_ISS, "jwks": SPEC_PUBLIC_JWKS}])),
                         clock=lambda: during)
    with pytest.raises(AuthError, match="lifetime"):
        asyncio.run(capped.verify(f"Bearer {SPEC_JWT}", aud))
    clients = load_clients(json.dumps([{"iss": SPEC_ISS, "jwks": SPEC_PUBLIC_JWKS,
                                        "max_lifetime_s": 120_000_000}]))
    v = JwtVerifier(clients, clock=lambda: during)
    claims = asyncio.run(v.verify(f"Bearer {SPEC_JWT}",
                                  "https://cds.example.org/cds-services/some-service"))
    assert claims["jti"] == "ee22b021-e1b7-4611-ba5b-8eec6a33ac1e"
    # ... and the same token is expired by now
    later = JwtVerifier(clients, clock=lambda: NOW.timestamp())
    with pytest.raises(AuthError, match="expired"):
        asyncio.run(later.verify(f"Bearer {SPEC_JWT}",
                                 "https://cds.example.org/cds-services/some-service"))


def test_valid_token_is_accepted(client):
    r = _get(client, sign(DISCOVERY))
    assert r.status_code == 200
    assert {s["hook"] for s in r.json()["services"]} == {"patient-view", "order-select",
                                                          "order-sign"}


def test_aud_as_list_is_accepted(client):
    assert _get(client, sign([DISCOVERY])).status_code == 200  # type: ignore[arg-type]


def test_missing_header_is_401(client):
    r = client.get("/cds-services")
    assert r.status_code == 401
    assert "Authorization" in _reason(r)
    assert r.headers["www-authenticate"] == "Bearer"


def test_expired_token_is_401(client):
    r = _get(client, sign(DISCOVERY, now=NOW - dt.timedelta(hours=1), exp_in=300))
    assert r.status_code == 401
    assert "expired" in _reason(r)


def test_future_iat_is_401(client):
    r = _get(client, sign(DISCOVERY, now=NOW + dt.timedelta(hours=1)))
    assert r.status_code == 401
    assert "future" in _reason(r)


def test_wrong_aud_is_401(client):
    r = _get(client, sign("http://testserver/cds-services/other"))
    assert r.status_code == 401
    assert "aud" in _reason(r)


def test_unknown_iss_is_401(client):
    r = _get(client, sign(DISCOVERY, iss="https://evil.example.com/"))
    assert r.status_code == 401
    assert "iss" in _reason(r)


def test_alg_none_is_401(client):
    t = int(NOW.timestamp())
    token = (b64({"alg": "none", "typ": "JWT"}) + "." + b64(
        {"iss": SPEC_ISS, "aud": DISCOVERY, "exp": t + 300, "iat": t, "jti": "n1"}) + ".")
    r = _get(client, token)
    assert r.status_code == 401
    assert "'none'" in _reason(r)


def test_hs256_is_401_even_with_the_public_key_as_secret(client):
    """The classic key-confusion attack: HMAC keyed with the client's public key."""
    t = int(NOW.timestamp())
    signing_input = (b64({"alg": "HS256", "typ": "JWT", "kid": "example-kid"}) + "." + b64(
        {"iss": SPEC_ISS, "aud": DISCOVERY, "exp": t + 300, "iat": t, "jti": "h1"}))
    secret = json.dumps(SPEC_PUBLIC_JWKS["keys"][0]).encode()
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    r = _get(client, token)
    assert r.status_code == 401
    assert "HS256" in _reason(r)


def test_replayed_jti_is_401(client):
    token = sign(DISCOVERY, jti="once-only")
    assert _get(client, token).status_code == 200
    r = _get(client, token)
    assert r.status_code == 401
    assert "replay" in _reason(r)


def test_missing_jti_is_401(client):
    r = _get(client, sign(DISCOVERY, drop=("jti",)))
    assert r.status_code == 401
    assert "jti" in _reason(r)


def test_signature_by_another_key_is_401(client):
    other = ECKey.generate_key("P-384", parameters={"kid": "example-kid"}, private=True)
    r = _get(client, sign(DISCOVERY, key=other.as_dict(private=True)))
    assert r.status_code == 401
    assert "signature" in _reason(r)


def test_tampered_payload_is_401(client):
    h, _p, s = sign(DISCOVERY).split(".")
    t = int(NOW.timestamp())
    forged = b64({"iss": SPEC_ISS, "aud": DISCOVERY, "exp": t + 9999, "iat": t, "jti": "f"})
    assert _get(client, f"{h}.{forged}.{s}").status_code == 401


def test_hook_call_and_feedback_need_a_token_too(client):
    body = {"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "1"}}
    assert client.post("/cds-services/msc-screen-patient-view", json=body).status_code == 401
    assert client.post("/cds-services/msc-screen-patient-view/feedback",
                       json={"feedback": []}).status_code == 401


def test_no_clients_configured_refuses_everything(make_settings, monkeypatch):
    monkeypatch.delenv("MSC_SCREEN_CDS_CLIENTS", raising=False)
    with TestClient(create_app(make_settings())) as c:
        r = _get(c, sign(DISCOVERY))
    assert r.status_code == 401
    assert "no trusted CDS clients" in _reason(r)


def test_clients_from_env_inline_json(make_settings, monkeypatch):
    monkeypatch.setenv("MSC_SCREEN_CDS_CLIENTS",
                       json.dumps([{"iss": SPEC_ISS, "jwks": SPEC_PUBLIC_JWKS}]))
    with TestClient(create_app(make_settings())) as c:
        assert _get(c, sign(DISCOVERY)).status_code == 200


def test_jwks_url_fetched_only_for_allowlisted_jku():
    fetched = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, json=SPEC_PUBLIC_JWKS)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    clients = load_clients(json.dumps([{"iss": SPEC_ISS, "jwks_url": SPEC_JKU}]))
    v = JwtVerifier(clients, clock=lambda: NOW.timestamp(), http=http)
    aud = "https://cds.example.org/cds-services"
    claims = asyncio.run(v.verify("Bearer " + sign(aud, header={"jku": SPEC_JKU}), aud))
    assert claims["iss"] == SPEC_ISS and fetched == [SPEC_JKU]
    with pytest.raises(AuthError, match="jku"):
        asyncio.run(v.verify("Bearer " + sign(aud, header={"jku": "https://evil.example/k"}),
                             aud))
    assert fetched == [SPEC_JKU]  # the foreign jku was never fetched


@pytest.mark.parametrize("entry, message", [
    ({"jwks": SPEC_PUBLIC_JWKS}, "iss"),
    ({"iss": "a"}, "exactly one"),
    ({"iss": "a", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "symmetric"),
    ({"iss": "a", "jwks_url": "file:///etc/passwd"}, "http"),
])
def test_bad_client_entries_are_named(entry, message):
    with pytest.raises(ValueError, match=message):
        load_clients(json.dumps([entry]))


def test_insecure_no_auth_refuses_public_host(make_settings):
    with pytest.raises(ValueError, match="loopback"):
        create_app(make_settings(insecure_no_auth=True, host="0.0.0.0"))


def test_replay_is_caught_across_processes_with_the_shared_cache(make_settings, clients_file):
    """Two apps on one database stand in for two worker processes."""
    settings = make_settings(cds_clients=clients_file, shared_replay_cache=True)
    token = sign(DISCOVERY, jti="shared-once")
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        assert _get(a, token).status_code == 200
        r = _get(b, token)
        assert r.status_code == 401 and "replay" in _reason(r)
        assert _get(b, sign(DISCOVERY)).status_code == 200
