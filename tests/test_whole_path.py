"""The whole path, end to end: a simulated leak on a DMA -> analysis alerts (a burst and a
night-flow alert) -> one ticket for the leak -> scheduled on a crew -> resolved on the crew
page -> verified by the DMA's night flow, or reopened when the leak goes on.

Real pieces throughout: the simulator's county and telemetry (collector line protocol) in a
real InfluxDB, an analysis worker pass that delivers its alerts over HTTP with a service
token, the ticket service served by uvicorn (SQLite), the planner, the crew page's forms and
the telemetry verification. Two DMAs leak from the same hour; the crew repairs both, but
only one repair holds: the simulated leak on dma-v001 ends when the crew resolves it, the
one on dma-v002 does not. Each leak starts as a seep (a night-flow alert after the first
night) and grows into a burst (a burst alert at the next pass): both alerts join the one
ticket of the leak.

The ticket service stamps tickets with the real clock, so the simulation is laid on the
real calendar: five days of history up to now, the repair now, then four more days of
telemetry that arrive after the repair and are judged by ``verify_resolved`` as of then.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from analysis.params import AnalysisParams
from analysis.sink import ApiSink
from analysis.tracker import AlertTracker, Target
from analysis.worker import Worker
from api import migrate
from api.auth.models import Role, User
from api.auth.security import hash_password
from api.main import create_app
from api.scheduling.config import SchedulingConfig
from api.tickets import verification
from common.contract import TelemetryMessage
from common.influx import InfluxClient
from common.register import County
from common.schema import reading_line
from common.settings import AnalysisSettings, ApiSettings, InfluxSettings, Settings
from simulator.county import build_county
from simulator.engine import CountySimulation
from simulator.incidents import Incident, IncidentKind
from simulator.messages import MessageBuilder, message_stream
from tests.api.crewpage.live import serve

PASSWORD = "correct horse battery"
SEED = 7
#: the two leaking DMAs: the repair of the first holds, the second leak goes on
REPAIRED, PERSISTING = "dma-v001", "dma-v002"
#: each leak, as a share of its DMA's mean inflow: a seep (a night-flow leak, below the
#: burst step) that grows into a burst
LEAK_SHARE = 0.08
BURST_SHARE = 0.4
HOUSEHOLDS = 60


@dataclass
class Timeline:
    """The simulated days on the real calendar (UTC; local time is UTC+8)."""

    start: datetime  # 08:00 local, five days ago
    leak: datetime  # both leaks start (13:00 local, day 3)
    analysed: datetime  # the analysis pass (16:00 local, day 4: after one leaky night)
    grows: datetime  # both leaks grow into bursts (18:00 local, day 4)
    followed_up: datetime  # the next pass (08:00 local, day 5)
    repair: datetime  # the crew's repair: now (the first leak stops here)
    end: datetime  # four days of telemetry after the repair

    @classmethod
    def around(cls, now: datetime) -> Timeline:
        start = datetime.combine(now.date() - timedelta(days=5), time(0), tzinfo=UTC)
        repair = now.replace(second=0, microsecond=0) + timedelta(minutes=5 - now.minute % 5)
        return cls(start=start, leak=start + timedelta(days=3, hours=5),
                   analysed=start + timedelta(days=4, hours=8),
                   grows=start + timedelta(days=4, hours=10),
                   followed_up=start + timedelta(days=5), repair=repair,
                   end=repair + timedelta(days=4))


def simulated_lines(county: County, timeline: Timeline) -> tuple[list[str], list[str]]:
    """The collector's InfluxDB lines of every telemetry message: (until the repair, after)."""
    growth: tuple[tuple[IncidentKind, datetime, float], ...] = (
        ("background_leak", timeline.leak, LEAK_SHARE), ("burst", timeline.grows, BURST_SHARE))
    incidents = [
        Incident(kind=kind, target=f"{dma}-b1", start=start, magnitude=share, relative=True,
                 end=timeline.repair if dma == REPAIRED else None)
        for dma in (REPAIRED, PERSISTING)
        for kind, start, share in growth
    ]
    simulation = CountySimulation(county, incidents, timeline.start, SEED)
    before: list[str] = []
    after: list[str] = []
    for message in message_stream(simulation, MessageBuilder(county, SEED), timeline.end):
        if not message.topic.endswith("/telemetry"):
            continue
        telemetry = TelemetryMessage.model_validate_json(message.payload)
        for reading in telemetry.readings:
            target = before if reading.time <= timeline.repair else after
            target.append(reading_line(reading, telemetry.gateway))
    return before, after


@dataclass
class Service:
    base: str
    settings: Settings
    app_state: Any  # the app's state: its session factory
    admin: dict[str, str]


@pytest.fixture
def service(tmp_path: Path, influx_settings: InfluxSettings) -> Iterator[Service]:
    """The ticket service on SQLite with an admin, served by uvicorn."""
    url = f"sqlite:///{tmp_path / 'api.sqlite3'}"
    migrate.upgrade(url)
    settings = Settings(api=ApiSettings(database_url=url, jwt_secret=SecretStr("t" * 40),
                                        jwt_secret_file=tmp_path / "jwt", notify_loop=False,
                                        replan_loop=False),
                        influx=influx_settings)
    app = create_app(settings)
    app.state.scheduling_config = SchedulingConfig(time_limit_s=5, solution_limit=50)
    with app.state.session_factory() as db_session:
        db_session.add(User(username="root", role=Role.ADMIN,
                            password_hash=hash_password(PASSWORD)))
        db_session.commit()
    with serve(app) as base:
        yield Service(base, settings, app.state, sign_in(base, "root"))


def sign_in(base: str, username: str) -> dict[str, str]:
    token = httpx.post(f"{base}/api/v1/auth/token",
                       data={"username": username, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def set_up_bureau(http: httpx.Client, county: County) -> tuple[int, SecretStr]:
    """Register, a pipe crew with its member, the analysis service token."""
    http.post("/api/v1/assets/import/register",
              json=county.model_dump(mode="json")).raise_for_status()
    village = county.villages[0]
    crew = http.post("/api/v1/crews", json={
        "name": "county pipes", "skills": ["pipe", "meter", "pump_electrical"],
        "home_latitude": village.latitude, "home_longitude": village.longitude}).json()
    http.post("/api/v1/users", json={"username": "li", "password": PASSWORD,
                                     "role": "crew_member", "crew_id": crew["id"]}
              ).raise_for_status()
    issued = http.post("/api/v1/service-tokens", json={"name": "analysis",
                                                       "kind": "analysis"}).json()
    return crew["id"], SecretStr(issued["token"])


def analysis_pass(influx: InfluxSettings, county: County, base: str, token: SecretStr,
                  state: Path, now: datetime) -> None:
    """One worker pass as of ``now``, delivering its alerts to the ticket service (the
    worker owns its clients and closes them)."""
    worker = Worker(AnalysisSettings(state_db=state, api_url=base, detail_h=24.0),
                    register=county, params=AnalysisParams(), influx=InfluxClient(influx),
                    tracker=AlertTracker(state, targets=(Target.API, Target.INFLUX)),
                    api=ApiSink(base, token, timeout_s=30))
    try:
        report = worker.run_pass(now)
    finally:
        worker.close()
    assert report.api is not None and report.api.complete, report.summary()


def leak_ticket(http: httpx.Client, dma: str) -> int:
    """The one ticket of the leak on ``dma``: every leak alert the analysis raised there
    (burst, night flow, water balance) joined it."""
    alerts = http.get("/api/v1/alerts", params={"dma": dma}).json()
    leak_keys = {a["key"] for a in alerts if a["kind"] in ("burst", "night_flow",
                                                          "water_balance")}
    assert {key.split(":")[0] for key in leak_keys} >= {"burst", "night_flow"}, leak_keys
    tickets = [row for row in http.get("/api/v1/tickets").json()
               if row["problem_key"] == f"leak:{dma}"]
    assert len(tickets) == 1, tickets
    ticket = tickets[0]
    assert set(ticket["alert_keys"]) == leak_keys and ticket["type"] == "leak"
    assert {a["ticket_id"] for a in alerts if a["key"] in leak_keys} == {ticket["id"]}
    ticket_id: int = ticket["id"]
    return ticket_id


def resolve_on_crew_page(base: str, ticket_ids: list[int]) -> None:
    """The crew member signs in on the crew page and works the leak tickets."""
    with httpx.Client(base_url=base, follow_redirects=True) as page:
        route = page.post("/crew/login", data={"username": "li", "password": PASSWORD})
        assert route.status_code == 200
        for ticket_id in ticket_ids:
            assert f'id="t{ticket_id}"' in route.text
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', route.text)
            assert csrf is not None
            for step, note in (("in_progress", ""), ("resolved", "clamped the leaking main")):
                route = page.post(f"/crew/tickets/{ticket_id}",
                                  data={"to": step, "note": note, "csrf": csrf.group(1)})
                assert route.status_code == 200 and \
                    f"Ticket {ticket_id} is now {step.replace('_', ' ')}." in route.text


def test_a_leak_becomes_a_ticket_a_repair_and_is_verified_or_reopened_by_night_flow(
        service: Service, influx: InfluxClient, tmp_path: Path) -> None:
    timeline = Timeline.around(datetime.now(UTC))
    county = build_county(SEED, 2, HOUSEHOLDS)
    history, after_repair = simulated_lines(county, timeline)
    influx.write_lines(history)
    with httpx.Client(base_url=service.base, headers=service.admin, timeout=60) as http:
        crew_id, token = set_up_bureau(http, county)

        for moment in (timeline.analysed, timeline.followed_up):
            analysis_pass(service.settings.influx, county, service.base, token,
                          tmp_path / "alerts.sqlite3", moment)
        leaks = {dma: leak_ticket(http, dma) for dma in (REPAIRED, PERSISTING)}
        worked = [leaks[REPAIRED], leaks[PERSISTING]]

        result = http.post("/api/v1/schedule").json()
        placed = {a["ticket_id"]: a for a in result["assignments"]}
        assert all(placed[t]["crew_id"] == crew_id for t in worked)
        route = http.get(f"/api/v1/crews/{crew_id}/route").json()
        assert set(worked) <= {stop["ticket_id"] for stop in route["stops"]}

        resolve_on_crew_page(service.base, worked)
        influx.write_lines(after_repair)  # the nights after the repair arrive
        with service.app_state.session_factory() as db_session:
            outcomes = verification.verify_resolved(
                db_session=db_session, influx=influx, settings=service.settings.api,
                now=timeline.end)
        judged = {o.ticket_id: o.detail for o in outcomes}
        after = {t: http.get(f"/api/v1/tickets/{t}").json() for t in worked}
    held = after[leaks[REPAIRED]]
    assert held["status"] == "verified", judged[held["id"]]
    nights = held["verification"]["nights"]
    assert len(nights) == 3 and all(
        flow <= held["verification"]["limit_m3h"] for flow in nights.values())
    persisting = after[leaks[PERSISTING]]
    assert (persisting["status"], persisting["reopen_count"]) == ("reopened", 1), \
        judged[persisting["id"]]
    first_night = next(iter(persisting["verification"]["nights"].values()))
    assert first_night > persisting["verification"]["limit_m3h"]
