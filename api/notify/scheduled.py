"""The periodic job that sends due notifications: one pass, or a loop in a thread."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.notify import service
from api.notify.config import NotifyConfig
from api.notify.sender import WebhookSender

logger = logging.getLogger(__name__)


def deliver_due_once(factory: sessionmaker[Session], config: NotifyConfig,
                     sender: WebhookSender) -> int:
    """One pass over open notifications; how many copies were sent or tried."""
    with factory() as db_session:
        return len(service.deliver_due(db_session=db_session, config=config, sender=sender))


class ReminderLoop(threading.Thread):
    """Calls ``deliver_due_once`` every ``interval_s`` seconds until ``stop()``.

    A database error ends the pass, is logged, and the next pass tries again; the loop
    itself never dies of it.
    """

    def __init__(self, factory: sessionmaker[Session], config: NotifyConfig,
                 sender: WebhookSender, interval_s: float = 60.0) -> None:
        super().__init__(name="notify-reminders", daemon=True)
        self._factory = factory
        self._config = config
        self._sender = sender
        self._interval_s = interval_s
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                deliver_due_once(self._factory, self._config, self._sender)
            except SQLAlchemyError:
                logger.exception("notification pass failed; retrying in %.0f s",
                                 self._interval_s)
            self._stopping.wait(self._interval_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self.join(timeout_s)
