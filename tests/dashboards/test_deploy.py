"""``python -m dashboards deploy`` against recorded Grafana HTTP exchanges.

No Grafana server can run on these machines (no server package, no Docker engine), so the
exchanges in ``data/grafana_exchange.json`` (request and response shapes from Grafana's HTTP
API reference) are served by a real HTTP server on a local port, and grafana-client talks to
it over real HTTP. The server records what deploy sent, so the tests check the requests too.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dashboards.__main__ import main
from dashboards.deploy import DeployError, deploy_boards
from dashboards.generate import load
from dashboards.queries import INFLUX_UID, TICKETS_UID

EXCHANGES = json.loads((Path(__file__).parent / "data" / "grafana_exchange.json").read_text())
TOKEN = "glsa_recordedTokenForTests_0123456789abcdef"


class RecordedGrafana:
    """Serves one scenario's recorded responses and keeps the requests it got."""

    def __init__(self, scenario: str) -> None:
        self.exchanges = EXCHANGES["scenarios"][scenario]
        self.requests: list[dict[str, Any]] = []
        recorded = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                recorded.requests.append({"method": self.command, "path": self.path,
                                          "authorization": self.headers.get("Authorization"),
                                          "body": body})
                status, payload = recorded.response(self.command, self.path.split("?")[0],
                                                    body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's method names

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def response(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        for exchange in self.exchanges:
            request = exchange["request"]
            pattern = request["path"]
            if request["method"] == method and (
                    pattern == path or (pattern.endswith("*") and path.startswith(pattern[:-1]))):
                return exchange["response"]["status"], self._fill(exchange["response"]["body"],
                                                                  body)
        return 404, {"message": "Not found"}

    @staticmethod
    def _fill(payload: Any, posted: Any) -> Any:
        if not isinstance(posted, dict) or "dashboard" not in posted:
            return payload
        board = posted["dashboard"]
        slug = re.sub(r"[^a-z0-9]+", "-", board["title"].lower()).strip("-")
        version = int(board.get("version") or 0) + 1
        text = json.dumps(payload).replace("{uid}", board["uid"]).replace("{slug}", slug)
        return json.loads(text.replace('"{version}"', str(version)))

    def posted_boards(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests
                if r["method"] == "POST" and r["path"] == "/api/dashboards/db"]


@pytest.fixture
def grafana(request: pytest.FixtureRequest) -> Iterator[RecordedGrafana]:
    server = RecordedGrafana(request.param)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize("grafana", ["fresh_folder_one_board_exists"], indirect=True)
def test_deploy_creates_the_folder_and_saves_every_board_with_a_version_check(
        grafana: RecordedGrafana) -> None:
    results = deploy_boards(grafana.url, TOKEN, "Rural water")
    assert {r.uid for r in results} == set(load())
    assert all(r["authorization"] == f"Bearer {TOKEN}" for r in grafana.requests)
    assert {"method": "POST", "path": "/api/folders", "authorization": f"Bearer {TOKEN}",
            "body": {"title": "Rural water", "uid": "ruralwater"}} in grafana.requests
    posted = {body["dashboard"]["uid"]: body for body in grafana.posted_boards()}
    assert posted["rw-county-overview"]["dashboard"]["version"] == 3
    assert all("version" not in body["dashboard"] for uid, body in posted.items()
               if uid != "rw-county-overview")
    assert all(body["overwrite"] is False and body["folderUid"] == "ruralwater"
               for body in posted.values())
    sent = json.dumps(list(posted.values()))
    assert INFLUX_UID not in sent and TICKETS_UID not in sent
    assert "P951FEA4DE68E13C5" in sent and "P44368ADAD746BC27" in sent
    county = next(r for r in results if r.uid == "rw-county-overview")
    assert (county.created, county.version) == (False, 4)
    assert str(county).startswith("updated County overview")


@pytest.mark.parametrize("grafana", ["token_without_folder_rights"], indirect=True)
def test_a_token_without_rights_gets_a_clear_error(
        grafana: RecordedGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--url", grafana.url, "--token", TOKEN]) == 1
    error = capsys.readouterr().err
    assert "lacks the rights (403" in error and "folders:create" in error
    assert "Editor role" in error
    assert grafana.posted_boards() == []


@pytest.mark.parametrize("grafana", ["board_edited_in_grafana_meanwhile"], indirect=True)
def test_a_board_changed_in_grafana_meanwhile_is_not_overwritten(
        grafana: RecordedGrafana) -> None:
    with pytest.raises(DeployError, match="changed in Grafana after deploy read version 3"):
        deploy_boards(grafana.url, TOKEN, "Rural water")
    assert not any(r["path"] == "/api/folders" and r["method"] == "POST"
                   for r in grafana.requests)


@pytest.mark.parametrize("grafana", ["no_influxdb_data_source"], indirect=True)
def test_a_missing_data_source_is_named(grafana: RecordedGrafana) -> None:
    with pytest.raises(DeployError, match='no data source named "InfluxDB"'):
        deploy_boards(grafana.url, TOKEN, "Rural water")


@pytest.mark.parametrize("grafana", ["revoked_token"], indirect=True)
def test_a_rejected_token_is_reported(grafana: RecordedGrafana) -> None:
    with pytest.raises(DeployError, match="rejected the token"):
        deploy_boards(grafana.url, TOKEN, "Rural water")


def test_an_unreachable_grafana_is_reported() -> None:
    with pytest.raises(DeployError, match="cannot reach Grafana"):
        deploy_boards("http://127.0.0.1:9", TOKEN, "Rural water", timeout_s=2)
