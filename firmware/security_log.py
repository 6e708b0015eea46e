"""The security event log: one record per security-relevant event, whoever saw it.

OCPP 2.0.1 calls these security events (Part 2, Appendix 1 "Security Events": e.g.
StartupOfTheDevice, ResetOrReboot, SettingSystemTime, InvalidCsmsCertificate); the field
engineer's console adds its logins, failures and actions. Parts *record* here and never
talk to each other: the OCPP station subscribes and sends SecurityEventNotification for
the kinds OCPP defines (critical ones queued like transaction events), the console's
`log` command reads the recent ones. Kept in memory, bounded; the station's queue is where
the ones that must reach the CSMS survive a restart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

RECENT = 500  # records kept for the console and diagnostics


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    at: datetime
    kind: str  # an OCPP security event type where one fits (e.g. "ResetOrReboot")
    tech_info: str = ""  # free text for the engineer; never a secret
    critical: bool = False  # OCPP: must reach the CSMS even after an outage


Listener = Callable[[SecurityEvent], None]


class SecurityLog:
    def __init__(self, now: Callable[[], datetime], keep: int = RECENT) -> None:
        self._now = now
        self._recent: deque[SecurityEvent] = deque(maxlen=keep)
        self._listeners: list[Listener] = []

    def record(self, kind: str, tech_info: str = "", critical: bool = False) -> SecurityEvent:
        event = SecurityEvent(self._now(), kind, tech_info, critical)
        self._recent.append(event)
        for listener in list(self._listeners):
            listener(event)  # a listener's failure is its own bug; it must not raise
        return event

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def recent(self, count: int = RECENT) -> list[SecurityEvent]:
        return list(self._recent)[-count:]
