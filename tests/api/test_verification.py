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
from common.alerts import AlertKind, AlertStatus, Place, Severity
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


def _resolve(client: TestClient, admin: dict[str, str], crew: Crew, ticket_id: int) -> None:
    """Schedule the ticket on ``crew``, start it and resolve it, as the crew would."""
    for step, fields in (("scheduled", {"crew_id": crew.id}), ("in_progress", {}),
                         ("resolved", {"note": "repaired"})):
        assert move(client, admin, ticket_id, step, **fields).status_code == 200


def _resolved_ticket(client: TestClient, admin: dict[str, str], crew: Crew,
                     body_kind: AlertKind, subject: str, place: Place) -> int:
    ticket_id: int = put_alert(client, admin, alert(body_kind, subject, Severity.HIGH,
                                                    place=place)).json()["ticket_id"]
    _resolve(client, admin, crew, ticket_id)
    return ticket_id


def _stored_resolved(db_session: Session, ticket_id: int) -> tuple[Ticket, datetime]:
    """The resolved ticket as stored, and when it was resolved (verification starts there)."""
    ticket = db_session.get(Ticket, ticket_id)
    assert ticket is not None and ticket.resolved_at is not None
    return ticket, ticket.resolved_at


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
    _, resolved_at = _stored_resolved(db_session, ticket_id)
    _write_night_flows(influx, resolved_at, night_flow_m3h, nights=3)
    outcomes = verification.verify_resolved(
        db_session=db_session, influx=influx, settings=SETTINGS,
        now=resolved_at + timedelta(days=4))
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
    _, resolved_at = _stored_resolved(db_session, ticket_id)
    _write_night_flows(influx, resolved_at, 1.0, nights=1)
    outcome, = verification.verify_resolved(db_session=db_session, influx=influx,
                                            settings=SETTINGS,
                                            now=resolved_at + timedelta(days=2))
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
    _, resolved_at = _stored_resolved(db_session, ticket_id)
    moment = to_millis(resolved_at + timedelta(minutes=30))
    influx.write_lines([f'meter,device={household.meter},village={household.village} '
                        f'volume_m3=12.5,valve="open" {moment}'])
    outcome, = verification.verify_resolved(db_session=db_session, influx=influx,
                                            settings=SETTINGS,
                                            now=resolved_at + timedelta(hours=1))
    assert outcome.result is verification.Result.VERIFIED


def test_offline_meter_ticket_reopens_when_readings_do_not_resume(
        client: TestClient, admin: dict[str, str], db_session: Session,
        make_crew: Callable[..., Crew], influx: InfluxClient) -> None:
    county = import_county(client, admin)
    meter = county.households[1].meter
    ticket_id = _resolved_ticket(client, admin, make_crew("meters", ["meter"]),
                                 AlertKind.DEVICE_SILENT, meter,
                                 Place(village="v001", device=meter))
    _, resolved_at = _stored_resolved(db_session, ticket_id)
    influx.ensure_database()
    waiting, = verification.verify_resolved(db_session=db_session, influx=influx,
                                            settings=SETTINGS,
                                            now=resolved_at + timedelta(hours=2))
    assert waiting.result is verification.Result.PENDING
    silent, = verification.verify_resolved(db_session=db_session, influx=influx,
                                           settings=SETTINGS,
                                           now=resolved_at + timedelta(hours=25))
    assert silent.result is verification.Result.REOPEN


def test_loss_judgement_weighs_real_losses_over_the_survey_days() -> None:
    days = [verification.LossDay(date(2026, 7, d), 100.0, 90.0, 10.0) for d in range(2, 9)]
    # real losses = 10 - 0.02 x 90 = 8.2 m3 a day: 8.2% of inflow, under the 12% grade
    good = verification.judge_losses(days, SETTINGS)
    assert good.result is verification.Result.VERIFIED
    assert good.figures["real_loss_share"] == 0.082
    lossy = [verification.LossDay(d.day, 100.0, 80.0, 20.0) for d in days]
    assert verification.judge_losses(lossy, SETTINGS).result is verification.Result.REOPEN
    assert verification.judge_losses(days[:6], SETTINGS).result is verification.Result.PENDING
    no_inflow = [verification.LossDay(date(2026, 7, 9), 0.0, 0.0, 0.0)]
    assert verification.judge_losses(days[:6] + no_inflow, SETTINGS).result is \
        verification.Result.PENDING


def _write_loss_days(influx: InfluxClient, after: datetime, nrw_share: float,
                     days: int) -> None:
    local = timedelta(hours=8)
    first = (after + local).date() + timedelta(days=1)
    lines = []
    for n in range(days):
        midnight = datetime.combine(first + timedelta(days=n), datetime.min.time(),
                                    tzinfo=UTC) - local
        lines.append(f"dma_kpi,dma=dma-v001,village=v001 inflow_m3=100.0,"
                     f"consumption_m3={100 * (1 - nrw_share)},nrw_m3={100 * nrw_share} "
                     f"{to_millis(midnight)}")
    influx.write_lines(lines)


@pytest.mark.parametrize(("nrw_share", "expected"), [(0.08, "verified"), (0.3, "reopened")])
def test_a_leak_survey_is_judged_by_the_dmas_losses_after_the_repair(
        client: TestClient, admin: dict[str, str], db_session: Session,
        make_crew: Callable[..., Crew], influx: InfluxClient, nrw_share: float,
        expected: str) -> None:
    import_county(client, admin)
    ticket_id = _resolved_ticket(client, admin, make_crew("north"), AlertKind.WATER_BALANCE,
                                 "dma-v001", Place(village="v001", dma="dma-v001"))
    ticket, resolved_at = _stored_resolved(db_session, ticket_id)
    assert ticket.type.value == "leak_survey"
    _write_loss_days(influx, resolved_at, nrw_share, days=7)
    early, = verification.verify_resolved(db_session=db_session, influx=influx,
                                          settings=SETTINGS,
                                          now=resolved_at + timedelta(days=4))
    assert early.result is verification.Result.PENDING and "days of water balance" in \
        early.detail
    verification.verify_resolved(db_session=db_session, influx=influx, settings=SETTINGS,
                                 now=resolved_at + timedelta(days=9))
    after = client.get(f"/api/v1/tickets/{ticket_id}", headers=admin).json()
    assert after["status"] == expected, after["verification"]
    assert len(after["verification"]["days"]) == 7


def test_a_leak_without_a_night_baseline_is_judged_by_the_water_balance(
        client: TestClient, admin: dict[str, str], db_session: Session,
        make_crew: Callable[..., Crew], influx: InfluxClient) -> None:
    import_county(client, admin)
    ticket_id = put_alert(client, admin, alert(evidence={"excess_loss_m3h": 1.2})
                          ).json()["ticket_id"]
    _resolve(client, admin, make_crew("north"), ticket_id)
    _, resolved_at = _stored_resolved(db_session, ticket_id)
    _write_loss_days(influx, resolved_at, 0.05, days=7)
    outcome, = verification.verify_resolved(db_session=db_session, influx=influx,
                                            settings=SETTINGS,
                                            now=resolved_at + timedelta(days=9))
    assert outcome.result is verification.Result.VERIFIED
    assert outcome.detail.startswith("no night-flow baseline for the DMA, judged by its water")


def test_other_tickets_wait_for_every_joined_alert_to_resolve(
        client: TestClient, admin: dict[str, str], db_session: Session,
        make_crew: Callable[..., Crew], influx: InfluxClient) -> None:
    import_county(client, admin)
    pump = Place(village="v001", device="well-v001-1")
    ticket_id = _resolved_ticket(client, admin, make_crew("pumps", ["pump_electrical"]),
                                 AlertKind.PUMP_FAULT, "well-v001-1", pump)
    put_alert(client, admin, alert(AlertKind.PUMP_CYCLING, "well-v001-1", place=pump))
    ticket, resolved_at = _stored_resolved(db_session, ticket_id)
    assert ticket.alert_keys == ["pump_fault:well-v001-1", "pump_cycling:well-v001-1"]
    later = resolved_at + timedelta(hours=2)
    put_alert(client, admin, alert(AlertKind.PUMP_FAULT, "well-v001-1", place=pump,
                                   status=AlertStatus.RESOLVED, resolved_at=later,
                                   updated_at=later))
    waiting, = verification.verify_resolved(db_session=db_session, influx=influx,
                                            settings=SETTINGS, now=later)
    assert waiting.result is verification.Result.PENDING and "pump_cycling" in waiting.detail
    put_alert(client, admin, alert(AlertKind.PUMP_CYCLING, "well-v001-1", place=pump,
                                   status=AlertStatus.RESOLVED, resolved_at=later,
                                   updated_at=later))
    done, = verification.verify_resolved(db_session=db_session, influx=influx,
                                         settings=SETTINGS, now=later)
    assert done.result is verification.Result.VERIFIED
