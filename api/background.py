"""``python -m api background``: the ticket service's periodic work in one process.

- the notification reminder loop (api/notify, every ``notify_interval_s``),
- the re-plan loop (api/scheduling, polling every ``replan_poll_s``, debounced),
- telemetry verification of resolved tickets (every ``verify_interval_s``).

Run exactly one next to any number of API workers started with
``RURALWATER_API__NOTIFY_LOOP=false`` and ``RURALWATER_API__REPLAN_LOOP=false`` (those two
settings govern only the API's own processes; this command always runs all three jobs).
SIGTERM or SIGINT stops it cleanly: the current verification pass and plan finish, the loops
stop, connections close, and the process exits 0.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, session_factory
from api.notify.config import NotifyConfig, load_notify_config
from api.notify.scheduled import ReminderLoop
from api.notify.sender import WebhookSender, make_client
from api.periodic import run_periodically
from api.scheduling.config import scheduling_config
from api.scheduling.loop import Replanner
from api.tickets import verification
from common.influx import InfluxClient
from common.settings import Settings

log = logging.getLogger(__name__)

def verify_once(factory: sessionmaker[Session], influx: InfluxClient,
                settings: Settings) -> None:
    """One verification pass; each outcome that moved a ticket is logged."""
    with factory() as db_session:
        outcomes = verification.verify_resolved(db_session=db_session, influx=influx,
                                                settings=settings.api)
    decided = [o for o in outcomes if o.result is not verification.Result.PENDING]
    log.info("verification: %d resolved tickets judged, %d decided", len(outcomes),
             len(decided))
    for outcome in decided:
        log.info("ticket %s: %s (%s)", outcome.ticket_id, outcome.result, outcome.detail)


def run_background(settings: Settings, stop: threading.Event,
                   started: threading.Event | None = None) -> None:
    """Run the three jobs until ``stop`` is set (by a signal handler, or a test)."""
    api = settings.api
    notify_config = (load_notify_config(api.notify_config_file)
                     if api.notify_config_file else NotifyConfig())
    engine = make_engine(api.database_url)
    factory = session_factory(engine)
    planning = scheduling_config(api).model_copy(update={"replan_loop": True})
    with make_client(notify_config.timeout_s) as http, InfluxClient(settings.influx) as influx:
        reminders = ReminderLoop(factory, notify_config, WebhookSender(http, notify_config.retry),
                                 interval_s=api.notify_interval_s)
        replanner = Replanner(factory, planning)
        reminders.start()
        replanner.start()
        log.info("background: reminders every %.0f s, re-plan checks every %.0f s, "
                 "verification every %.0f s", api.notify_interval_s, planning.replan_poll_s,
                 api.verify_interval_s)
        if started is not None:
            started.set()
        try:
            run_periodically(lambda: verify_once(factory, influx, settings),
                             every_s=api.verify_interval_s, passes=None, stop=stop)
        finally:
            replanner.stop()
            reminders.stop()
            engine.dispose()
            log.info("background: stopped")
