"""The demo's ticket service and analysis pass, run as their own programs like in production.

The API (``python -m api``) runs on an SQLite file under the demo's data folder with the
simulated county's register imported, a dispatcher to sign in as, two repair crews based at
the county seat and a service token for the analysis. The analysis (``python -m analysis
once``) reads InfluxDB and sends its alerts to that API, which opens tickets by its rules.
Everything goes through the programs' command lines and the HTTP API: the demo knows no
internals of either.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from common.register import County

REPO = Path(__file__).resolve().parents[1]
DISPATCHER = ("dispatcher", "demo-dispatcher")  # demo logins, printed for the person
CREW_MEMBER = ("crew1", "demo-crew1")  # a member of the first crew, for the crew page


class DemoError(SystemExit):
    """A demo program failed; the message names its log."""


class ApiProcess:
    def __init__(self, data_dir: Path, port: int, influx_url: str) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{port}"
        self.env = os.environ | {
            "RURALWATER_API__DATABASE_URL": f"sqlite:///{data_dir / 'api.sqlite3'}",
            "RURALWATER_API__JWT_SECRET_FILE": str(data_dir / "jwt-secret"),
            "RURALWATER_API__PORT": str(port),
            "RURALWATER_API__NOTIFY_LOOP": "false",  # no channels configured in the demo
            "RURALWATER_INFLUX__URL": influx_url,
            "RURALWATER_LOG_LEVEL": "WARNING",
        }
        self.token = ""
        self.crews: list[dict[str, Any]] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._jwt = ""

    def _cli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run([sys.executable, "-m", "api", *args], cwd=REPO, env=self.env,
                              input=stdin, capture_output=True, text=True, timeout=300,
                              check=False)
        if done.returncode != 0:
            raise DemoError(f"python -m api {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, register: Path) -> None:
        """Migrate, import the register, make the demo's users and token, serve, add crews."""
        self._cli("migrate")
        self._cli("import-register", str(register))
        self._cli("create-user", DISPATCHER[0], "--role", "dispatcher", "--password-stdin",
                  stdin=DISPATCHER[1] + "\n")
        issued = re.search(r"rw_\S+", self._cli("create-token", "analysis", "--kind",
                                                "analysis"))
        if issued is None:
            raise DemoError("python -m api create-token printed no API key")
        self.token = issued.group(0)
        log = (self.data_dir / "api.log").open("ab")
        self._process = subprocess.Popen([sys.executable, "-m", "api", "serve", "--no-migrate"],
                                         cwd=REPO, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)
        self._wait_up()
        self._jwt = self._log_in()
        self.crews = [self._add_crew(name, skills, County.model_validate_json(
            register.read_text())) for name, skills in (
                ("Crew 1 (pipes)", ["pipe", "meter"]),
                ("Crew 2 (pumps, quality)", ["pump_electrical", "water_quality", "meter"]))]
        self._cli("create-user", CREW_MEMBER[0], "--role", "crew_member", "--crew-id",
                  str(self.crews[0]["id"]), "--password-stdin", stdin=CREW_MEMBER[1] + "\n")

    def _wait_up(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise DemoError(f"the API exited; see {self.data_dir / 'api.log'}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise DemoError(f"the API did not answer; see {self.data_dir / 'api.log'}")

    def _log_in(self) -> str:
        answer = httpx.post(f"{self.url}/api/v1/auth/token", timeout=10,
                            data={"username": DISPATCHER[0], "password": DISPATCHER[1]})
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def _add_crew(self, name: str, skills: list[str], county: County) -> dict[str, Any]:
        answer = httpx.post(f"{self.url}/api/v1/crews", timeout=10, headers=self._headers(),
                            json={"name": name, "skills": skills,
                                  "home_latitude": county.seat_latitude,
                                  "home_longitude": county.seat_longitude})
        answer.raise_for_status()
        crew: dict[str, Any] = answer.json()
        return crew

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._jwt}"}

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx.get(f"{self.url}{path}", params=params, headers=self._headers(),
                           timeout=30)
        answer.raise_for_status()
        return answer.json()

    def schedule(self) -> dict[str, Any]:
        """Plan the open tickets onto the crews now (what the re-plan loop does by itself)."""
        answer = httpx.post(f"{self.url}/api/v1/schedule", headers=self._headers(), timeout=120)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def show_outcome(self, say: Callable[[str], None]) -> None:
        alerts = self.get("/api/v1/alerts", limit=1000)
        plan = self.schedule() if alerts else None
        tickets = self.get("/api/v1/tickets", limit=1000)
        kinds = Counter(alert["kind"] for alert in alerts)
        say(f"\nticket service: {len(alerts)} alerts "
            f"({', '.join(f'{n} {kind}' for kind, n in kinds.most_common()) or 'none'}), "
            f"{len(tickets)} tickets")
        crews = {crew["id"]: crew["name"] for crew in self.crews}
        for ticket in tickets[:8]:
            crew = crews.get(ticket.get("crew_id"), "")
            say(f"  #{ticket['id']:<4} {ticket['priority']:<7} {ticket['status']:<10} "
                f"due {(ticket.get('due_at') or '')[:16]}  {crew:<24} {ticket['title']}")
        if plan is not None:
            say(f"route plan ({plan['solver']}): {len(plan['assignments'])} tickets on "
                f"{len(crews)} crews, {plan['total_travel_km']:.0f} km, "
                f"{plan['breaches']} predicted SLA breaches, "
                f"{len(plan['unassigned']) + len(plan['skipped'])} left over")
        say(f"""
look at the tickets: {self.url}/docs (sign in as {DISPATCHER[0]} / {DISPATCHER[1]});
the crews' phone page: {self.url}/crew (sign in as {CREW_MEMBER[0]} / {CREW_MEMBER[1]}, of
{self.crews[0]["name"]}); or
  curl -s -d username={DISPATCHER[0]} -d password={DISPATCHER[1]} {self.url}/api/v1/auth/token""")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def analyse_once(data_dir: Path, influx_url: str, api: ApiProcess, register: Path) -> str:
    """One analysis pass over InfluxDB; its alerts go to the API. Returns its summary."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "RURALWATER_INFLUX__URL": influx_url,
        "RURALWATER_ANALYSIS__API_URL": api.url,
        "RURALWATER_ANALYSIS__API_TOKEN": api.token,
        "RURALWATER_ANALYSIS__STATE_DB": str(data_dir / "alerts.sqlite3"),
        "RURALWATER_ANALYSIS__REGISTER_FILE": str(register),
        "RURALWATER_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run([sys.executable, "-m", "analysis", "once"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise DemoError(f"python -m analysis once failed: {done.stderr.strip()}")
    return done.stdout.strip()
