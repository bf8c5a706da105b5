"""Verification from telemetry, judged on data written to a real InfluxDB."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.crews.models import Crew
from api.tickets import verification
from api.tickets.models import Ticket
from common.alerts import AlertKind, Place, Severity
from common.influx import InfluxClient
from common.schema import to_millis
from common.settings import ApiSettings
from tests.api.helpers import alert, import_county, move, put_alert

SETTINGS = ApiSettings()


def test_night_window_is_two_to_four_local_time() -> None:
    start, end = verification.night_window(date(2026, 7, 2), 8.0)
    assert (start, end) == (datetime(2026, 7, 1, 18, tzinfo=UTC),
                            datetime(2026, 7, 1, 20, tzinfo=UTC))


def test_only_complete_nights_after_the_repair_count() -> None:
    repaired = datetime(2026, 7, 1, 19, tzinfo=UTC)  # 03:00 local, inside a window
    now = datetime(2026, 7, 3, 19, tzinfo=UTC)  # 03:00 local two days later
    assert verification.nights_after(repaired, now, 8.0) == [date(2026, 7, 3)]


def test_leak_judgement_needs_n_good_nights_and_reopens_on_a_bad_one() -> None:
    nights = [date(2026, 7, d) for d in (2, 3, 4)]
    good = verification.judge_leak([(n, 1.1) for n in nights], 1.0, SETTINGS)
    assert good.result is verification.Result.VERIFIED
    pending = verification.judge_leak([(nights[0], 1.1), (nights[1], None)], 1.0, SETTINGS)
    assert pending.result is verification.Result.PENDING
    bad = verification.judge_leak([(nights[0], 1.1), (nights[1], 2.4)], 1.0, SETTINGS)
    assert bad.result is verification.Result.REOPEN and "2026-07-03" in bad.detail


def _resolved_ticket(client: TestClient, admin: dict[str, str], crew: Crew,
                     body_kind: AlertKind, subject: str, place: Place) -> int:
    ticket_id: int = put_alert(client, admin, alert(body_kind, subject, Severity.HIGH,
                                                    place=place)).json()["ticket_id"]
    for step, fields in (("scheduled", {"crew_id": crew.id}), ("in_progress", {}),
                         ("resolved", {"note": "repaired"})):
        assert move(client, admin, ticket_id, step, **fields).status_code == 200
    return ticket_id


def _write_night_flows(influx: InfluxClient, after: datetime, flow_m3h: float,
                       nights: int) -> None:
    lines = []
    for night in verification.nights_after(after, after + timedelta(days=nights + 1), 8.0):
        start, end = verification.night_window(night, 8.0)
        moment = start
        while moment < end:
            lines.append(f"dma_inflow,device=inflow-v001,dma=dma-v001,village=v001 "
                         f"flow_m3h={flow_m3h} {to_millis(moment)}")
            moment += timedelta(minutes=5)
    influx.write_lines(lines)


@pytest.mark.parametrize(("night_flow_m3h", "expected"), [(1.05, "verified"),
                                                          (2.5, "reopened")])
def test_leak_ticket_is_verified_or_reopened_by_night_flow(
        client: TestClient, admin: dict[str, str], db_session: Session,
        make_crew: Callable[..., Crew], influx: InfluxClient, night_flow_m3h: float,
        expected: str) -> None:
    import_county(client, admin)
    ticket_id = _resolved_ticket(client, admin, make_crew("north"), AlertKind.NIGHT_FLOW,
                                 "dma-v001", Place(village="v001", dma="dma-v001"))
    ticket = db_session.get(Ticket, ticket_id)
    assert ticket is not None and ticket.resolved_at is not None
    _write_night_flows(influx, ticket.resolved_at, night_flow_m3h, nights=3)
    outcomes = verification.verify_resolved(
        db_session=db_session, influx=influx, settings=SETTINGS,
        now=ticket.resolved_at + timedelta(days=4))
    assert [o.ticket_id for o in outcomes] == [ticket_id]
    after = client.get(f"/api/v1/tickets/{ticket_id}", headers=admin).json()
    assert after["status"] == expected
    assert after["verification"]["baseline_m3h"] == 1.0
    history = client.get(f"/api/v1/tickets/{ticket_id}/history", headers=admin).json()
    assert history[0]["actor"] == "system" and history[0]["reason"].startswith("telemetry")


def test_leak_ticket_waits_for_enough_nights(client: TestClient, admin: dict[str, str],
                                             db_session: Session,
                                             make_crew: Callable[..., Crew],
                                             influx: InfluxClient) -> None:
    import_county(client, admin)
    ticket_id = _resolved_ticket(client, admin, make_crew("north"), AlertKind.NIGHT_FLOW,
                                 "dma-v001", Place(village="v001", dma="dma-v001"))
    ticket = db_session.get(Ticket, ticket_id)
    assert ticket is not None and ticket.resolved_at is not None
    _write_night_flows(influx, ticket.resolved_at, 1.0, nights=1)
    outcome, = verification.verify_resolved(db_session=db_session, influx=influx,
                                            settings=SETTINGS,
                                            now=ticket.resolved_at + timedelta(days=2))
    assert outcome.result is verification.Result.PENDING
    assert client.get(f"/api/v1/tickets/{ticket_id}", headers=admin).json()["status"] == \
        "resolved"


def test_valve_ticket_is_verified_when_the_valve_reports_open(
        client: TestClient, admin: dict[str, str], db_session: Session,
        make_crew: Callable[..., Crew], influx: InfluxClient) -> None:
    county = import_county(client, admin)
    household = county.households[0]
    ticket_id = _resolved_ticket(
        client, admin, make_crew("meters", ["meter"]), AlertKind.VALVE_CLOSED, household.id,
        Place(village=household.village, household=household.id, device=household.meter))
    ticket = db_session.get(Ticket, ticket_id)
    assert ticket is not None and ticket.resolved_at is not None
    moment = to_millis(ticket.resolved_at + timedelta(minutes=30))
    influx.write_lines([f'meter,device={household.meter},village={household.village} '
                        f'volume_m3=12.5,valve="open" {moment}'])
    outcome, = verification.verify_resolved(db_session=db_session, influx=influx,
                                            settings=SETTINGS,
                                            now=ticket.resolved_at + timedelta(hours=1))
    assert outcome.result is verification.Result.VERIFIED


def test_offline_meter_ticket_reopens_when_readings_do_not_resume(
        client: TestClient, admin: dict[str, str], db_session: Session,
        make_crew: Callable[..., Crew], influx: InfluxClient) -> None:
    county = import_county(client, admin)
    meter = county.households[1].meter
    ticket_id = _resolved_ticket(client, admin, make_crew("meters", ["meter"]),
                                 AlertKind.DEVICE_SILENT, meter,
                                 Place(village="v001", device=meter))
    ticket = db_session.get(Ticket, ticket_id)
    assert ticket is not None and ticket.resolved_at is not None
    influx.ensure_database()
    waiting, = verification.verify_resolved(db_session=db_session, influx=influx,
                                            settings=SETTINGS,
                                            now=ticket.resolved_at + timedelta(hours=2))
    assert waiting.result is verification.Result.PENDING
    silent, = verification.verify_resolved(db_session=db_session, influx=influx,
                                           settings=SETTINGS,
                                           now=ticket.resolved_at + timedelta(hours=25))
    assert silent.result is verification.Result.REOPEN
