"""Per-gateway sequence tracking: duplicates and gaps, with late arrivals filling gaps.

Each gateway numbers its telemetry and event messages with one counter. A jump forward
opens a gap; a number inside a known gap fills it (late, not lost); a number seen before is a
duplicate (QoS 1 redelivery or an outbox replay). With a shared subscription each collector
sees only its share of a gateway's messages, so gaps are exact only where one collector
serves the gateway (see collector/README.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

_MAX_OPEN_GAPS = 10_000
_RECENT = 4096


@dataclass
class _Gateway:
    highest: int = -1
    missing: set[int] = field(default_factory=set)
    recent: set[int] = field(default_factory=set)


class SequenceTracker:
    def __init__(self) -> None:
        self._gateways: dict[str, _Gateway] = {}
        self._lock = threading.Lock()
        self.duplicates = 0
        self.gaps = 0  # messages currently missing, summed over gateways

    def observe(self, gateway: str, seq: int) -> str:
        """Record one message; return 'new', 'late', 'duplicate' or 'restart'."""
        with self._lock:
            state = self._gateways.setdefault(gateway, _Gateway())
            if state.highest < 0 or seq == state.highest + 1:
                verdict = "new"
            elif seq > state.highest:
                skipped = range(state.highest + 1, seq)
                if len(state.missing) + len(skipped) <= _MAX_OPEN_GAPS:
                    state.missing.update(skipped)
                self.gaps += len(skipped)
                verdict = "new"
            elif seq in state.missing:
                state.missing.discard(seq)
                self.gaps -= 1
                return "late"
            elif seq in state.recent or seq >= state.highest - _RECENT:
                self.duplicates += 1
                return "duplicate"
            else:
                # Far below anything recent: the gateway lost its counter and started over.
                self.gaps -= len(state.missing)
                state.missing.clear()
                state.recent.clear()
                verdict = "restart"
            state.highest = seq
            state.recent.add(seq)
            if len(state.recent) > 2 * _RECENT:
                state.recent = {s for s in state.recent if s > seq - _RECENT}
            return verdict

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                name: {"highest_seq": s.highest, "missing": len(s.missing)}
                for name, s in self._gateways.items()
            }
