"""The CDS store on PostgreSQL: migrations, feedback and the shared JWT replay cache."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from msc_screen.server.app import create_app
from store.pg import cluster, fresh_database  # tests/store, on sys.path like this package

from .conftest import sign

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("postgres")]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with cluster() as admin, fresh_database(admin) as url:
        yield url


def test_feedback_and_replay_cache_on_postgres(pg_url, make_settings, clients_file):
    settings = make_settings(db_url=pg_url, cds_clients=clients_file, shared_replay_cache=True)
    aud = "http://testserver/cds-services/msc-screen-patient-view/feedback"
    token = sign(aud, jti="pg-once")
    body = {"feedback": [{"card": "c1", "outcome": "accepted"}]}
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        r = a.post("/cds-services/msc-screen-patient-view/feedback", json=body,
                   headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        again = b.post("/cds-services/msc-screen-patient-view/feedback", json=body,
                       headers={"Authorization": f"Bearer {token}"})
        assert again.status_code == 401 and "replay" in again.text
        assert a.app.state.cds.feedback_count("msc-screen-patient-view") == 1
