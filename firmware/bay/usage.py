"""What each connector's session used, for its price: watched from the controller's
commands (ev.Screen carries the phase on every change, SessionStarted / SessionEnded
frame the session), never from inside the core.

Charging time runs from the first Charging phase to Stopping; occupation from the end of
the session until the truck is unplugged. A session ``started`` (is owed anything) only
once energy transfer began: one that never reached Charging costs nothing and its card
reservation is released.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from firmware.bay.tariff import Usage
from firmware.core import events as ev
from firmware.core.transitions import Phase


@dataclass
class Tracked:
    token: str
    source: str
    started_at: float
    charging_at: float | None = None
    charging_s: float = 0.0
    ended_at: float | None = None
    energy_wh: float = 0.0
    stop_reason: ev.StopReason | None = None

    def usage(self, now: float, energy_wh: float | None = None) -> Usage:
        charging = self.charging_s
        if self.charging_at is not None:
            charging += now - self.charging_at
        occupied = now - self.ended_at if self.ended_at is not None else 0.0
        energy = self.energy_wh if energy_wh is None else energy_wh
        return Usage(energy, charging, occupied,
                     started=self.charging_at is not None or self.charging_s > 0)


Listener = Callable[[int, str, Tracked, float], None]  # evse, what, session, now


class UsageMeter:
    """One Tracked per connector; listeners hear 'started', 'ended', 'left' (unplug)."""

    def __init__(self) -> None:
        self.current: dict[int, Tracked] = {}
        self.listeners: list[Listener] = []

    def observe(self, evse_id: int, cmd: ev.Command, now: float) -> None:
        t = self.current.get(evse_id)
        if isinstance(cmd, ev.SessionStarted):
            t = self.current[evse_id] = Tracked(cmd.token, cmd.source, now)
            self._tell(evse_id, "started", t, now)
        elif t is None:
            return
        elif isinstance(cmd, ev.Screen):
            if cmd.phase is Phase.CHARGING and t.charging_at is None and t.ended_at is None:
                t.charging_at = now
            elif cmd.phase in (Phase.STOPPING, Phase.FINISHED, Phase.FAULTED,
                               Phase.AVAILABLE) and t.charging_at is not None:
                t.charging_s += now - t.charging_at
                t.charging_at = None
            t.energy_wh = max(t.energy_wh, cmd.energy_wh)
            if cmd.phase is Phase.AVAILABLE and t.ended_at is not None:
                self._tell(evse_id, "left", t, now)
                del self.current[evse_id]
        elif isinstance(cmd, ev.SessionEnded):
            if t.charging_at is not None:
                t.charging_s += now - t.charging_at
                t.charging_at = None
            t.ended_at = now
            t.energy_wh = cmd.energy_wh
            t.stop_reason = cmd.reason
            self._tell(evse_id, "ended", t, now)

    def _tell(self, evse_id: int, what: str, t: Tracked, now: float) -> None:
        for listener in list(self.listeners):
            listener(evse_id, what, t, now)
