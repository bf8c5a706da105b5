"""Delivering alert changes: a real local HTTP server (down, then up), the real ticket
service, and the alert and KPI points in a real InfluxDB."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from analysis.findings import Finding
from analysis.sink import ApiSink, InfluxAlertSink, alert_line, kpi_points
from analysis.tracker import AlertTracker, Target
from api import migrate
from api.auth import service as auth
from api.auth.models import ServiceKind
from api.auth.security import SYSTEM
from api.main import create_app
from common.alerts import Alert, AlertKind, AlertStatus, Place, Severity
from common.influx import InfluxClient
from common.localservices import free_port
from common.settings import ApiSettings, InfluxSettings, Settings

T0 = datetime(2026, 6, 3, 2, 0, tzinfo=UTC)
TOKEN = SecretStr("rw_test_token")


def finding(subject: str, flow: float = 2.0, kind: AlertKind = AlertKind.NIGHT_FLOW) -> Finding:
    return Finding(kind=kind, subject=subject, severity=Severity.MEDIUM,
                   title=f"{kind.value} in {subject}", place=Place(village="v001", dma=subject),
                   started_at=T0 - timedelta(hours=5), evidence={"night_flow_m3h": flow})


class Recorder(BaseHTTPRequestHandler):
    """Records PUTs; answers with ``server.answer`` (200 unless a test says otherwise)."""

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(  # type: ignore[attr-defined]
            (self.path, self.headers["Authorization"], Alert.model_validate_json(body)))
        self.send_response(self.server.answer)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        return


def serve(port: int, answer: int = 200) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), Recorder)
    server.received = []  # type: ignore[attr-defined]
    server.answer = answer  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[AlertTracker]:
    with AlertTracker(tmp_path / "alerts.sqlite3") as state:
        yield state


def sink_for(port: int) -> ApiSink:
    return ApiSink(f"http://127.0.0.1:{port}", TOKEN, timeout_s=2.0, attempts=2,
                   backoff_s=0.01)


def test_changes_made_while_the_api_is_down_arrive_once_in_order_when_it_is_back(
        tracker: AlertTracker) -> None:
    port = free_port()
    sink = sink_for(port)
    tracker.apply_findings([finding("dma-v001"), finding("dma-v002")], {}, T0)
    down = sink.deliver(tracker)
    assert (down.delivered, down.pending) == (0, 2) and down.error
    tracker.apply_findings([finding("dma-v001", 5.0)], {}, T0 + timedelta(hours=1))
    tracker.apply_findings([], {AlertKind.NIGHT_FLOW: {"dma-v002"}}, T0 + timedelta(hours=2))
    server = serve(port)
    try:
        up = sink.deliver(tracker)
        assert up.complete and up.delivered == 4
        assert sink.deliver(tracker).delivered == 0  # nothing twice
        received = server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        sink.close()
    assert [(path, alert.status, alert.evidence["night_flow_m3h"])
            for path, _, alert in received] == [
        ("/api/v1/alerts/night_flow:dma-v001", AlertStatus.OPEN, 2.0),
        ("/api/v1/alerts/night_flow:dma-v002", AlertStatus.OPEN, 2.0),
        ("/api/v1/alerts/night_flow:dma-v001", AlertStatus.OPEN, 5.0),
        ("/api/v1/alerts/night_flow:dma-v002", AlertStatus.RESOLVED, 2.0)]
    assert {auth_header for _, auth_header, _ in received} == {"Bearer rw_test_token"}


def test_a_change_the_api_rejects_for_good_is_kept_as_a_dead_letter(
        tracker: AlertTracker) -> None:
    port = free_port()
    server = serve(port, answer=422)
    sink = sink_for(port)
    try:
        tracker.apply_findings([finding("dma-v001")], {}, T0)
        result = sink.deliver(tracker)
    finally:
        server.shutdown()
        sink.close()
    assert (result.delivered, result.dead_lettered, result.pending) == (0, 1, 0)
    [(item, reason)] = tracker.dead_letters()
    assert item.alert.key == "night_flow:dma-v001" and reason == "HTTP 422"


def test_a_refused_token_stops_delivery_and_keeps_the_changes(tracker: AlertTracker) -> None:
    port = free_port()
    server = serve(port, answer=401)
    sink = sink_for(port)
    try:
        tracker.apply_findings([finding("dma-v001"), finding("dma-v002")], {}, T0)
        result = sink.deliver(tracker)
    finally:
        server.shutdown()
        sink.close()
    assert result.pending == 2 and "token" in (result.error or "")


def test_the_ticket_service_takes_the_alerts_and_opens_one_ticket_per_problem(
        tracker: AlertTracker, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'api.sqlite3'}"
    migrate.upgrade(url)
    settings = Settings(api=ApiSettings(database_url=url, jwt_secret=SecretStr("j" * 40),
                                        jwt_secret_file=tmp_path / "jwt", notify_loop=False,
                                        replan_loop=False),
                        influx=InfluxSettings(url="http://127.0.0.1:9", timeout_s=1.0))
    app = create_app(settings)
    with app.state.session_factory() as db_session:
        _, token = auth.create_service_token(db_session=db_session, name="analysis",
                                             kind=ServiceKind.ANALYSIS, actor=SYSTEM)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        sink = ApiSink("http://testserver", None, http=client)
        tracker.apply_findings([finding("dma-v001")], {}, T0)
        tracker.apply_findings([finding("dma-v001", 6.0)], {}, T0 + timedelta(hours=1))
        assert sink.deliver(tracker).complete
        stored = client.get("/api/v1/alerts/night_flow:dma-v001").json()
        tracker.apply_findings([], {AlertKind.NIGHT_FLOW: {"dma-v001"}}, T0 + timedelta(days=1))
        assert sink.deliver(tracker).complete
        resolved = client.get("/api/v1/alerts/night_flow:dma-v001").json()
    app.state.engine.dispose()
    assert stored["evidence"] == {"night_flow_m3h": 6.0} and stored["revision"] == 2
    assert resolved["status"] == "resolved"
    assert stored["ticket_id"] is not None  # one ticket, kept through update and resolve
    assert resolved["ticket_id"] == stored["ticket_id"]


def test_alert_points_of_one_pass_do_not_overwrite_each_other(
        tracker: AlertTracker, influx: InfluxClient) -> None:
    same_place = [Finding(kind=AlertKind.QUALITY_LIMIT, subject=f"q-v001:{name}",
                          severity=Severity.HIGH, title=f"{name} out of limits",
                          place=Place(village="v001", device="q-v001"), started_at=T0)
                  for name in ("turbidity_ntu", "free_chlorine_mgl")]
    tracker.apply_findings(same_place, {}, T0)
    assert InfluxAlertSink(influx).deliver(tracker).complete
    assert tracker.pending_count(Target.INFLUX) == 0
    rows = influx.query('SELECT "key", "open" FROM "alert"')[0].records()
    assert sorted(r["key"] for r in rows) == [f"quality_limit:q-v001:{n}" for n in
                                              ("free_chlorine_mgl", "turbidity_ntu")]
    # Writing the same change again lands on the same point.
    InfluxAlertSink(influx).client.write_lines(
        [alert_line(a) for a in tracker.open_alerts()], precision="ns")
    assert influx.count("alert", "key") == 2


def test_an_escalated_alert_stays_one_series_and_reads_at_its_latest_severity(
        tracker: AlertTracker, influx: InfluxClient) -> None:
    def quality(severity: Severity) -> Finding:
        return Finding(kind=AlertKind.QUALITY_LIMIT, subject="q-v001:turbidity_ntu",
                       severity=severity, title="turbidity out of limits",
                       place=Place(village="v001", device="q-v001"), started_at=T0)

    tracker.apply_findings([quality(Severity.MEDIUM)], {}, T0)
    tracker.apply_findings([quality(Severity.CRITICAL)], {}, T0 + timedelta(hours=1))
    assert InfluxAlertSink(influx).deliver(tracker).complete
    series = influx.query('SHOW SERIES FROM "alert"')[0].records()
    assert len(series) == 1
    [state] = influx.query('SELECT last("open") AS "open", "severity" FROM "alert" '
                           'GROUP BY "alert_key"')[0].records()
    assert state["open"] is True and state["severity"] == "critical"


def test_dma_kpis_are_stamped_at_the_start_of_the_local_day() -> None:
    days = pd.DataFrame({"dma": ["dma-v001"], "village": ["v001"],
                         "day": [pd.Timestamp("2026-06-02").date()], "inflow_m3": [120.0],
                         "consumption_m3": [100.0], "nrw_m3": [20.0],
                         "nrw_pct": [float("nan")], "ili": [1.5]})
    [point] = kpi_points(days, utc_offset_hours=8.0)
    assert point.time_ms == int(datetime(2026, 6, 1, 16, tzinfo=UTC).timestamp() * 1000)
    assert point.tags == {"dma": "dma-v001", "village": "v001"}
    assert "nrw_pct" not in point.fields and point.fields["ili"] == 1.5
    assert json.loads(json.dumps(point.fields))  # plain values only


def test_the_json_examples_in_docs_alerts_md_are_valid_alerts() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    blocks = text.split("```json\n")[1:]
    examples = [Alert.model_validate_json(block.split("```")[0]) for block in blocks]
    assert len(examples) >= 4
    assert {a.status for a in examples} == {AlertStatus.OPEN, AlertStatus.RESOLVED}
    assert all(a.key.startswith(f"{a.kind.value}:") for a in examples)
