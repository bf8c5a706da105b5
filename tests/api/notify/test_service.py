"""Notifications in the database, delivered to a real local server on a simulated clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit.models import AuditEntry
from api.auth.models import Role
from api.auth.security import Principal
from api.crews.models import Crew
from api.errors import Conflict, Forbidden, NotFound
from api.notify import service
from api.notify.config import NotifyConfig
from api.notify.message import NoticeSeverity
from api.notify.models import Notification
from api.notify.sender import WebhookSender

from .recorder import Answer, RecordingServer

T0 = datetime(2026, 7, 14, 1, 0, tzinfo=UTC)
DISPATCHER = Principal(name="li", role=Role.DISPATCHER, user_id=2)


def minutes(value: float) -> datetime:
    return T0 + timedelta(minutes=value)


@pytest.fixture
def crew_id(db_session: Session) -> int:
    crew = Crew(name="Crew 1", skills=["pipe"], zones=[], home_latitude=39.0,
                home_longitude=112.0)
    db_session.add(crew)
    db_session.commit()
    return crew.id


@pytest.fixture
def config(recorder: RecordingServer, crew_id: int) -> NotifyConfig:
    return NotifyConfig.model_validate({
        "channels": {
            "crew-1-group": {"type": "wecom", "url": f"{recorder.url}/wecom/crew1?key=k1"},
            "crews-default": {"type": "webhook", "url": f"{recorder.url}/hook/crews"},
            "dispatch-room": {"type": "dingtalk",
                              "url": f"{recorder.url}/dingtalk?access_token=d",
                              "secret": "SECdispatch"},
        },
        "routes": {"crew": ["crews-default"], "dispatcher": ["dispatch-room"]},
        "crew_routes": {crew_id: ["crew-1-group"]},
    })


def raise_leak(db_session: Session, crew_id: int | None,
               text: str = "night flow 2.4 m3/h") -> Notification:
    return service.raise_notice(db_session=db_session, subject="ticket:42",
                                title="Leak in dma-v003", text=text,
                                severity=NoticeSeverity.CRITICAL, crew_id=crew_id,
                                url="http://api/crew/tickets/42", now=T0)


def paths(recorder: RecordingServer) -> list[str]:
    return [request.path for request in recorder.requests]


def test_reminders_escalate_to_the_dispatcher_until_acknowledged(
        db_session: Session, config: NotifyConfig, sender: WebhookSender,
        recorder: RecordingServer, crew_id: int) -> None:
    notification = raise_leak(db_session, crew_id)
    for minute in (0, 10, 29):
        service.deliver_due(db_session=db_session, config=config, sender=sender,
                            now=minutes(minute))
    assert paths(recorder) == ["/wecom/crew1"]
    assert recorder.requests[0].json()["markdown"]["content"].startswith(
        "### Leak in dma-v003")
    service.deliver_due(db_session=db_session, config=config, sender=sender, now=minutes(30))
    service.deliver_due(db_session=db_session, config=config, sender=sender, now=minutes(60))
    assert paths(recorder) == ["/wecom/crew1", "/wecom/crew1", "/dingtalk", "/wecom/crew1"]
    escalated = recorder.requests[2]
    assert escalated.query["access_token"] == "d" and "sign" in escalated.query
    assert escalated.json()["markdown"]["title"] == "[Escalated] Leak in dma-v003"

    service.acknowledge(db_session=db_session, notification_id=notification.id,
                        actor=DISPATCHER, now=minutes(70))
    service.deliver_due(db_session=db_session, config=config, sender=sender, now=minutes(300))
    assert len(recorder.requests) == 4

    stored = service.get(db_session=db_session, notification_id=notification.id)
    assert [(d.step, d.audience, d.reason, d.reminder_number, d.channel, d.ok)
            for d in stored.deliveries] == [
        (0, "crew", "first", 0, "crew-1-group", True),
        (0, "crew", "reminder", 1, "crew-1-group", True),
        (1, "dispatcher", "escalation", 0, "dispatch-room", True),
        (1, "crew", "escalation", 0, "crew-1-group", True),
    ]
    assert stored.acknowledged_by == "user:li" and stored.next_check_at is None
    audit = db_session.scalars(select(AuditEntry)).all()
    assert [(a.action, a.entity_id) for a in audit] == [
        ("notification.acknowledge", str(notification.id))]


def test_raising_the_same_subject_again_refreshes_the_open_notification(
        db_session: Session, crew_id: int) -> None:
    first = raise_leak(db_session, crew_id)
    again = raise_leak(db_session, crew_id, text="night flow 3.1 m3/h")
    assert again.id == first.id
    assert again.text == "night flow 3.1 m3/h" and again.raised_at == T0
    assert len(service.get_all(db_session=db_session, open_only=True)) == 1


def test_closing_the_subject_stops_the_reminders(db_session: Session, config: NotifyConfig,
                                                 sender: WebhookSender,
                                                 recorder: RecordingServer,
                                                 crew_id: int) -> None:
    notification = raise_leak(db_session, crew_id)
    service.deliver_due(db_session=db_session, config=config, sender=sender, now=T0)
    assert service.close_subject(db_session=db_session, subject="ticket:42",
                                 now=minutes(5)) == 1
    service.deliver_due(db_session=db_session, config=config, sender=sender, now=minutes(90))
    assert len(recorder.requests) == 1
    with pytest.raises(Conflict, match="closed"):
        service.acknowledge(db_session=db_session, notification_id=notification.id,
                            actor=DISPATCHER)


def test_a_crew_member_acknowledges_only_their_own_crews_notifications(
        db_session: Session, crew_id: int) -> None:
    notification = raise_leak(db_session, crew_id)
    stranger = Principal(name="wang", role=Role.CREW_MEMBER, user_id=3, crew_id=crew_id + 1)
    with pytest.raises(Forbidden, match="own crew"):
        service.acknowledge(db_session=db_session, notification_id=notification.id,
                            actor=stranger)
    member = Principal(name="zhao", role=Role.CREW_MEMBER, user_id=4, crew_id=crew_id)
    acknowledged = service.acknowledge(db_session=db_session,
                                       notification_id=notification.id, actor=member)
    assert acknowledged.acknowledged_by == "user:zhao"
    again = service.acknowledge(db_session=db_session, notification_id=notification.id,
                                actor=DISPATCHER)
    assert again.acknowledged_by == "user:zhao"
    with pytest.raises(NotFound):
        service.acknowledge(db_session=db_session, notification_id=999, actor=DISPATCHER)


def test_failed_and_unrouted_copies_are_logged_and_the_ladder_goes_on(
        db_session: Session, sender: WebhookSender, recorder: RecordingServer) -> None:
    config = NotifyConfig.model_validate({
        "channels": {"crews": {"type": "webhook", "url": f"{recorder.url}/crews"}},
        "routes": {"crew": ["crews"]},  # nobody routed for the dispatcher
    })
    recorder.default = Answer(500, None)
    notification = raise_leak(db_session, crew_id=None)
    service.deliver_due(db_session=db_session, config=config, sender=sender, now=T0)
    service.deliver_due(db_session=db_session, config=config, sender=sender, now=minutes(60))
    stored = service.get(db_session=db_session, notification_id=notification.id)
    assert [(d.audience, d.channel, d.ok, d.attempts, d.error) for d in stored.deliveries] == [
        ("crew", "crews", False, 3, "HTTP 500"),
        ("dispatcher", "", False, 0, "no channel routed to 'dispatcher'"),
        ("crew", "crews", False, 3, "HTTP 500"),
    ]
    assert stored.next_check_at == minutes(90)


def test_routes_must_name_configured_channels() -> None:
    with pytest.raises(ValueError, match="unknown channels: nowhere"):
        NotifyConfig.model_validate({"routes": {"crew": ["nowhere"]}})
