"""schemathesis: requests generated from the OpenAPI schema never get a 5xx answer.

Every operation of every api/ package (core, notifications, emergency plans, reports,
planning, scheduling, crew page) is called as an admin (so the requests reach the code
behind the checks) on a small imported register with one alert, a few examples each, on
SQLite and PostgreSQL.
Requests go through Starlette's test client: schemathesis' own transport disagrees with the
installed urllib3.
"""

from __future__ import annotations

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.helpers import alert, import_county, put_alert

MAX_EXAMPLES = 3
#: Path prefixes that must be among the fuzzed operations (each package mounted).
PACKAGE_PREFIXES = ("/api/v1/notifications", "/api/v1/emergency", "/api/v1/reports")


def _operations(app: FastAPI) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


def _server_errors(app: FastAPI, client: TestClient, admin: dict[str, str],
                   operations: list[schemathesis.APIOperation]) -> list[str]:
    import_county(client, admin)
    put_alert(client, admin, alert())
    failures: list[str] = []
    with TestClient(app, raise_server_exceptions=False) as lenient:
        for operation in operations:
            _fuzz(operation.as_strategy(), lenient, admin, failures)
    return failures


def test_no_operation_answers_5xx(app: FastAPI, client: TestClient,
                                  admin: dict[str, str]) -> None:
    operations = _operations(app)
    paths = {op.path for op in operations}
    assert all(any(p.startswith(prefix) for p in paths) for prefix in PACKAGE_PREFIXES)
    assert len(operations) > 50
    failures = _server_errors(app, client, admin, operations)
    assert not failures, "\n".join(failures)


def _fuzz(strategy: st.SearchStrategy[schemathesis.Case], client: TestClient,
          headers: dict[str, str], failures: list[str]) -> None:
    @given(case=strategy)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def call(case: schemathesis.Case) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
        data = kwargs.get("data")
        response = client.request(
            kwargs["method"], kwargs["url"], params=kwargs.get("params"),
            headers=kwargs.get("headers"), json=kwargs.get("json"),
            data=data if isinstance(data, dict) else None,
            content=None if isinstance(data, dict) else data, files=kwargs.get("files"))
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> "
                            f"{response.status_code}: {response.text[:300]}")

    call()
