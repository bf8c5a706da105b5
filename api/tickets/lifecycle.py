"""The ticket lifecycle: which status may follow which, and who may make each move.

    open -> scheduled -> en_route -> in_progress -> resolved -> verified
                 \\___________________/                    \\-> reopened -> scheduled ...
    open | scheduled | reopened -> cancelled (a false alarm, a duplicate)

``system`` moves are made by the service itself (telemetry verification, an alert raised
again); people with the listed roles may make them by hand, with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.auth.models import Role
from api.tickets.models import TicketStatus

S = TicketStatus
_DISPATCH = frozenset({Role.ADMIN, Role.DISPATCHER})
_FIELD = frozenset({Role.ADMIN, Role.DISPATCHER, Role.CREW_MEMBER})


@dataclass(frozen=True, slots=True)
class Move:
    sources: frozenset[TicketStatus]
    roles: frozenset[Role]
    #: the service itself may make this move (verification, alert intake, planner)
    system: bool = False
    #: a person making this move must say why
    reason_required: bool = False


MOVES: dict[TicketStatus, Move] = {
    S.SCHEDULED: Move(frozenset({S.OPEN, S.SCHEDULED, S.REOPENED}), _DISPATCH, system=True),
    S.EN_ROUTE: Move(frozenset({S.SCHEDULED}), _FIELD),
    S.IN_PROGRESS: Move(frozenset({S.SCHEDULED, S.EN_ROUTE}), _FIELD),
    S.RESOLVED: Move(frozenset({S.IN_PROGRESS}), _FIELD),
    S.VERIFIED: Move(frozenset({S.RESOLVED}), _DISPATCH, system=True, reason_required=True),
    S.REOPENED: Move(frozenset({S.RESOLVED, S.VERIFIED}), _DISPATCH, system=True,
                     reason_required=True),
    S.CANCELLED: Move(frozenset({S.OPEN, S.SCHEDULED, S.REOPENED}), _DISPATCH,
                      reason_required=True),
}


def allowed_targets(current: TicketStatus) -> list[TicketStatus]:
    """Statuses reachable from ``current`` in one move, in lifecycle order."""
    return [target for target, move in MOVES.items() if current in move.sources]
