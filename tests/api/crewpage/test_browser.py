"""The crew page in real headless Chromium (Debian chromium + chromium-driver, Selenium)
against the API served by uvicorn: sign in, open the route, resolve a ticket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from api import migrate
from api.auth.models import Role, User
from api.auth.security import hash_password
from api.main import create_app
from api.scheduling.config import SchedulingConfig
from tests.api.conftest import PASSWORD, api_settings
from tests.api.crewpage.live import serve
from tests.api.helpers import alert, small_county

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: how long the browser may take to show a page (a wait, not an assertion on speed)
PAGE_WAIT_S = 20


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("the crew page test needs Debian's chromium and chromium-driver "
                    "(scripts/bootstrap.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=412,915"):  # a phone
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def live_api(tmp_path: Path) -> Iterator[str]:
    """The ticket service on SQLite with a county, a crew, its member and a scheduled
    leak ticket from an alert; yields the base URL."""
    url = f"sqlite:///{tmp_path / 'api.sqlite3'}"
    migrate.upgrade(url)
    app = create_app(api_settings(url, tmp_path))
    app.state.scheduling_config = SchedulingConfig(time_limit_s=5, solution_limit=50)
    with app.state.session_factory() as db_session:
        db_session.add(User(username="root", role=Role.ADMIN,
                            password_hash=hash_password(PASSWORD)))
        db_session.commit()
    with serve(app) as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            token = http.post("/api/v1/auth/token", data={"username": "root",
                                                          "password": PASSWORD}).json()
            admin = {"Authorization": f"Bearer {token['access_token']}"}
            county = small_county()
            http.post("/api/v1/assets/import/register", headers=admin,
                      json=county.model_dump(mode="json")).raise_for_status()
            crew = http.post("/api/v1/crews", headers=admin, json={
                "name": "north", "skills": ["pipe"], "home_latitude": 39.05,
                "home_longitude": 112.45}).json()
            http.post("/api/v1/users", headers=admin, json={
                "username": "li", "password": PASSWORD, "role": "crew_member",
                "crew_id": crew["id"]}).raise_for_status()
            leak = alert()
            http.put(f"/api/v1/alerts/{leak.key}", headers=admin,
                     json=leak.model_dump(mode="json")).raise_for_status()
            http.post("/api/v1/schedule", headers=admin).raise_for_status()
        yield base


def wait_for(driver: WebDriver, element_id: str) -> None:
    WebDriverWait(driver, PAGE_WAIT_S).until(
        expected_conditions.presence_of_element_located((By.ID, element_id)))


def test_a_crew_member_signs_in_opens_the_route_and_resolves_a_ticket(
        browser: WebDriver, live_api: str) -> None:
    browser.get(f"{live_api}/crew")
    wait_for(browser, "sign-in")  # no session: the sign-in page
    browser.find_element(By.ID, "username").send_keys("li")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()

    wait_for(browser, "t1")
    job = browser.find_element(By.ID, "t1")
    assert browser.find_element(By.ID, "crew-name").text == "north"
    assert "night_flow at dma-v001" in job.text and "dma-v001" in job.text
    assert job.find_element(By.CLASS_NAME, "eta").text.count(":") == 1  # HH:MM
    assert "night flow m3h" in job.text  # the alert's evidence

    browser.find_element(By.ID, "in_progress-1").click()
    wait_for(browser, "message")
    assert "Ticket 1 is now in progress." in browser.find_element(By.ID, "message").text
    browser.find_element(By.ID, "note-1").send_keys("Replaced a cracked joint on branch b2")
    browser.find_element(By.ID, "resolved-1").click()
    wait_for(browser, "empty")
    assert "Ticket 1 is now resolved." in browser.find_element(By.ID, "message").text

    with httpx.Client(base_url=live_api) as http:
        token = http.post("/api/v1/auth/token", data={"username": "li",
                                                      "password": PASSWORD}).json()
        ticket = http.get("/api/v1/tickets/1", headers={
            "Authorization": f"Bearer {token['access_token']}"}).json()
    assert (ticket["status"], ticket["resolution_note"]) == \
        ("resolved", "Replaced a cracked joint on branch b2")

