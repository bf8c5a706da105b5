"""Raise, deliver, acknowledge and close notifications (keyword-only, session passed in).

``raise_notice`` records what needs a person; ``deliver_due`` (run periodically, see
``api.notify.scheduled``) asks the escalation policy what each open notification needs now
and sends it on the audience's channels; ``acknowledge`` stops the reminders.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.audit import service as audit
from api.auth.models import Role
from api.auth.security import Principal
from api.db import utcnow
from api.errors import Conflict, Forbidden, NotFound
from api.notify.config import NotifyConfig, NotifyConfigError
from api.notify.escalation import EscalationPolicy, Send, Sent, decide
from api.notify.message import Notice, NoticeSeverity
from api.notify.models import Notification, NotificationDelivery
from api.notify.sender import WebhookSender

logger = logging.getLogger(__name__)


def get(*, db_session: Session, notification_id: int) -> Notification:
    notification = db_session.get(Notification, notification_id)
    if notification is None:
        raise NotFound(f"no notification {notification_id}")
    return notification


def get_open_for_subject(*, db_session: Session, subject: str) -> Notification | None:
    query = (select(Notification)
             .where(Notification.subject == subject, Notification.acknowledged_at.is_(None),
                    Notification.closed_at.is_(None))
             .order_by(Notification.id.desc()))
    return db_session.scalars(query).first()


def get_all(*, db_session: Session, open_only: bool = False, subject: str | None = None,
            crew_id: int | None = None, limit: int = 100,
            offset: int = 0) -> Sequence[Notification]:
    """Newest first, with their deliveries."""
    query = select(Notification).options(selectinload(Notification.deliveries))
    if open_only:
        query = query.where(Notification.acknowledged_at.is_(None),
                            Notification.closed_at.is_(None))
    if subject is not None:
        query = query.where(Notification.subject == subject)
    if crew_id is not None:
        query = query.where(Notification.crew_id == crew_id)
    query = query.order_by(Notification.raised_at.desc(), Notification.id.desc())
    return db_session.scalars(query.limit(limit).offset(offset)).all()


def raise_notice(*, db_session: Session, subject: str, title: str, text: str,
                 severity: NoticeSeverity = NoticeSeverity.WARNING, policy: str = "default",
                 crew_id: int | None = None, url: str | None = None,
                 now: datetime | None = None, commit: bool = True) -> Notification:
    """Open a notification for ``subject``, or refresh the one already open (idempotent).

    Refreshing keeps the escalation clock running: new evidence changes what the next
    reminder says, not when it comes. The first copy goes out at the next ``deliver_due``.
    ``commit=False`` leaves the commit to a caller that has its own unit of work.
    """
    now = now or utcnow()
    existing = get_open_for_subject(db_session=db_session, subject=subject)
    if existing is not None:
        existing.title, existing.text, existing.url = title, text, url
        existing.severity = severity.value
        if crew_id is not None:
            existing.crew_id = crew_id
        _finish(db_session, commit)
        return existing
    notification = Notification(subject=subject, title=title, text=text,
                                severity=severity.value, url=url, policy=policy,
                                crew_id=crew_id, raised_at=now, next_check_at=now)
    db_session.add(notification)
    _finish(db_session, commit)
    return notification


def _finish(db_session: Session, commit: bool) -> None:
    if commit:
        db_session.commit()
    else:
        db_session.flush()


def acknowledge(*, db_session: Session, notification_id: int, actor: Principal,
                now: datetime | None = None) -> Notification:
    """Stop the reminders. A crew member may acknowledge only their crew's notifications;
    acknowledging twice keeps the first acknowledgement."""
    notification = get(db_session=db_session, notification_id=notification_id)
    if actor.role is Role.CREW_MEMBER and notification.crew_id != actor.crew_id:
        raise Forbidden("a crew member may acknowledge only their own crew's notifications")
    if notification.acknowledged_at is not None:
        return notification
    if notification.closed_at is not None:
        raise Conflict(f"notification {notification_id} is closed; nothing to acknowledge")
    notification.acknowledged_at = now or utcnow()
    notification.acknowledged_by = actor.actor
    notification.next_check_at = None
    audit.record(db_session=db_session, actor=actor, action="notification.acknowledge",
                 entity_type="notification", entity_id=notification.id,
                 changes={"subject": notification.subject})
    db_session.commit()
    return notification


def close_subject(*, db_session: Session, subject: str, now: datetime | None = None,
                  commit: bool = True) -> int:
    """Close every open notification about ``subject`` (its problem is gone); how many."""
    closed = 0
    query = select(Notification).where(Notification.subject == subject,
                                       Notification.acknowledged_at.is_(None),
                                       Notification.closed_at.is_(None))
    for notification in db_session.scalars(query):
        notification.closed_at = now or utcnow()
        notification.next_check_at = None
        closed += 1
    _finish(db_session, commit)
    return closed


def _history(notification: Notification) -> list[Sent]:
    """One ``Sent`` per send event (a send reaches several channels: count it once)."""
    first_at: dict[tuple[int, int], datetime] = {}
    for delivery in notification.deliveries:
        key = (delivery.step, delivery.reminder_number)
        if key not in first_at or delivery.sent_at < first_at[key]:
            first_at[key] = delivery.sent_at
    return [Sent(step=step, at=at) for (step, _), at in first_at.items()]


def _notice(notification: Notification, send: Send, audience: str) -> Notice:
    return Notice(subject=notification.subject, title=notification.title,
                  text=notification.text, severity=NoticeSeverity(notification.severity),
                  url=notification.url, audience=audience, reason=send.reason,
                  reminder_number=send.reminder_number)


def _send(notification: Notification, send: Send, *, config: NotifyConfig,
          sender: WebhookSender, now: datetime) -> list[NotificationDelivery]:
    deliveries: list[NotificationDelivery] = []
    for audience in send.audiences:
        names = config.channel_names(audience, notification.crew_id)
        if not names:
            logger.warning("no channel routed to audience %r (notification %d)", audience,
                           notification.id)
            deliveries.append(NotificationDelivery(
                step=send.step, audience=audience, reason=send.reason.value,
                reminder_number=send.reminder_number, channel="", sent_at=now, ok=False,
                attempts=0, status_code=None, error=f"no channel routed to {audience!r}"))
            continue
        notice = _notice(notification, send, audience)
        for name in names:
            channel = config.channels[name]
            result = sender.send(channel, channel.prepare(notice, now))
            deliveries.append(NotificationDelivery(
                step=send.step, audience=audience, reason=send.reason.value,
                reminder_number=send.reminder_number, channel=name, sent_at=now,
                ok=result.ok, attempts=result.attempts, status_code=result.status_code,
                error=result.error))
    return deliveries


def _policy(config: NotifyConfig, notification: Notification) -> EscalationPolicy:
    """The notification's policy; an unknown name falls back to ``default``, loudly, so a
    configuration change never silences reminders about people without water."""
    try:
        return config.policy(notification.policy)
    except NotifyConfigError:
        logger.error("notification %d names unknown policy %r; using 'default'",
                     notification.id, notification.policy)
        return config.policy("default")


def deliver_due(*, db_session: Session, config: NotifyConfig, sender: WebhookSender,
                now: datetime | None = None) -> list[NotificationDelivery]:
    """Send what every open notification needs at ``now``; commit after each one.

    A copy that could not be delivered after its retries still counts as sent for the
    escalation ladder (the next reminder or step follows on time) and is logged with its
    error in ``notification_deliveries``.
    """
    now = now or utcnow()
    query = (select(Notification)
             .where(Notification.next_check_at.is_not(None), Notification.next_check_at <= now,
                    Notification.acknowledged_at.is_(None), Notification.closed_at.is_(None))
             .options(selectinload(Notification.deliveries))
             .order_by(Notification.next_check_at, Notification.id))
    sent: list[NotificationDelivery] = []
    for notification in db_session.scalars(query).all():
        decision = decide(_policy(config, notification),
                          raised_at=notification.raised_at, history=_history(notification),
                          acknowledged=False, now=now)
        if decision.send is not None:
            deliveries = _send(notification, decision.send, config=config, sender=sender,
                               now=now)
            notification.deliveries.extend(deliveries)
            sent.extend(deliveries)
        notification.next_check_at = decision.next_check_at
        db_session.commit()
    return sent
