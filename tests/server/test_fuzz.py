"""Property-based fuzzing of the REST API and CDS Hooks endpoints from the OpenAPI document:
whatever schemathesis sends, the server answers without a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from msc_screen.server.app import create_app

from .conftest import settings_for

_DB_DIR = Path(tempfile.mkdtemp(prefix="msc-fuzz-"))
app = create_app(settings_for(_DB_DIR, insecure_no_auth=True))
schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
    path_regex=r"^/(screen|rules|healthz|metrics|cds-services)")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fuzz")]


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    ctype = response.headers.get("content-type") or [""]
    if response.status_code >= 400 and "fhir+json" in str(ctype):
        assert response.json()["resourceType"] == "OperationOutcome"
