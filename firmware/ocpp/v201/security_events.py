"""SecurityEventNotification from the charger's security log (OCPP 2.0.1 Part 2 A04,
the security event types of the appendix "Security Events").

Every part records into firmware/security_log.py (the station itself: start-up, reset,
time set by the CSMS, a CSMS certificate that fails the check, a CSMS that refuses our
credentials; the console: its logins). This sink sends the kinds OCPP defines:

- critical ones (the appendix's "Critical" column, or recorded as critical) go into the
  station's persistent message queue, in order with the transaction events: they reach
  the CSMS after an outage or a restart (A04.FR.02);
- the others wait in memory (bounded) until the boot is accepted and are then sent once;
  a restart loses them, as OCPP allows.

Kinds OCPP does not define (e.g. the console's own) stay in the log only.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import websockets

from firmware.ocpp.link import CallFailed
from firmware.security_log import SecurityEvent, SecurityLog

log = logging.getLogger("chargebay.ocpp")

ACTION = "SecurityEventNotification"

# OCPP 2.0.1 Part 2 appendix "Security Events": type -> critical.
SECURITY_EVENT_TYPES: dict[str, bool] = {
    "FirmwareUpdated": True,
    "FailedToAuthenticateAtCsms": False,
    "CsmsFailedToAuthenticate": False,
    "SettingSystemTime": True,
    "StartupOfTheDevice": True,
    "ResetOrReboot": True,
    "SecurityLogWasCleared": True,
    "ReconfigurationOfSecurityParameters": False,
    "MemoryExhaustion": True,
    "InvalidMessages": False,
    "AttemptedReplayAttacks": False,
    "TamperDetectionActivated": True,
    "InvalidFirmwareSignature": False,
    "InvalidFirmwareSigningCertificate": False,
    "InvalidCsmsCertificate": False,
    "InvalidChargingStationCertificate": False,
    "InvalidTLSVersion": False,
    "InvalidTLSCipherSuite": False,
}
TECH_INFO_MAX = 255  # SecurityEventNotificationRequest.techInfo: string[0..255]
TYPE_MAX = 50  # .type: string[0..50]
HELD_MAX = 100  # non-critical events kept while not online; the oldest go first


class _Queue(Protocol):
    def append(self, action: str, payload: dict[str, Any]) -> int: ...


Send = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class SecurityEvents:
    def __init__(self, security: SecurityLog, queue: _Queue, utc: Callable[[], datetime],
                 queued: Callable[[], None], iso: Callable[[datetime], str]) -> None:
        self.queue = queue
        self.utc = utc
        self.queued = queued  # wake the delivery of the queue
        self.iso = iso
        self.held: deque[dict[str, Any]] = deque(maxlen=HELD_MAX)
        self.sent = 0
        self._unsubscribe: Callable[[], None] | None = security.subscribe(self.on_event)

    def unsubscribe(self) -> None:
        """Stop listening (once; a station stopped twice calls it twice)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def on_event(self, event: SecurityEvent) -> None:
        """The log's listener: never raises (a failure here must not stop the recorder)."""
        try:
            critical = SECURITY_EVENT_TYPES.get(event.kind)
            if critical is None or len(event.kind) > TYPE_MAX:
                return
            payload: dict[str, Any] = {"type": event.kind, "timestamp": self.iso(self.utc())}
            if event.tech_info:
                payload["techInfo"] = event.tech_info[:TECH_INFO_MAX]
            if critical or event.critical:
                self.queue.append(ACTION, payload)  # durable, in order (A04.FR.02)
                self.queued()
            else:
                self.held.append(payload)
        except Exception:  # noqa: BLE001 - logged; the recorder goes on
            log.exception("security event %s not queued", event.kind)

    async def send_held(self, send: Send) -> None:
        """Once online: the non-critical events held meanwhile, oldest first. One that
        fails is dropped (not critical); a lost connection keeps the rest for later."""
        while self.held:
            payload = self.held[0]
            try:
                await send(ACTION, payload)
                self.sent += 1
            except (ConnectionError, websockets.ConnectionClosed):
                return
            except CallFailed as exc:
                log.warning("SecurityEventNotification %s not delivered: %s",
                            payload["type"], exc)
            self.held.popleft()
