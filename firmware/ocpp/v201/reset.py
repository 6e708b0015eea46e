"""Reset of the station or of one EVSE (OCPP 2.0.1 Part 2, B11 without / B12 with an
ongoing transaction), as a part of the Station (station.py).

One EVSE: OnIdle waits for its transaction (Scheduled), Immediate stops it first
(stoppedReason ImmediateReset, triggerReason ResetCommand); once idle and safe its
machine starts afresh (Controller.reset_connector) and reports its status again. The
station: the same for every EVSE, the Ended events delivered first, then the OCPP side
reboots: BootNotification with RemoteReset (Immediate) or ScheduledReset (OnIdle, once
every EVSE is idle). (Partial: the process itself does not restart.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from firmware.core.events import StopReason
from firmware.loop import Controller
from firmware.ocpp.v201.link import Link
from firmware.ocpp.v201.transactions import Transactions
from firmware.security_log import SecurityLog
from hal.clock import Clock

# A station Reset: the CALLRESULT leaves before anything else happens; the sessions an
# Immediate reset stops get up to RESET_STOP_S to end (ramp-down, contactors open,
# output below 60 V: the charger's own stop bound is 12 s) and their Ended events up to
# RESET_FLUSH_S to be delivered before the connection closes for the reboot.
RESET_ANSWER_S = 0.5
RESET_STOP_S = 15.0
RESET_FLUSH_S = 10.0


class StationReset:
    """The Station's reset part; the attributes below are the Station's."""

    controller: Controller
    clock: Clock
    tx: Transactions
    security: SecurityLog
    link: Link | None
    online: asyncio.Event
    evse_ids: tuple[int, ...]
    evse_resets: set[int]
    boot_reason: str
    booted: bool
    _reset_pending: str | None
    _status_sent: dict[int, str]

    if TYPE_CHECKING:  # the Station's own
        def busy(self, evse_id: int) -> bool: ...
        def stored(self, key: str) -> str | None: ...
        def note(self, text: str) -> None: ...
        def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None: ...
        async def flush(self, seconds: float) -> int: ...
        async def send_statuses(self, link: Link, again: Iterable[int] = ()) -> None: ...

    # --- reset (B11, B12) -------------------------------------------------------------------

    def reset(self, kind: str, evse_id: int | None) -> str:
        """Reset of one EVSE or of the station (``kind`` Immediate or OnIdle); returns the
        ResetStatusEnumType the CSMS gets."""
        evses = [evse_id] if evse_id is not None else list(self.evse_ids)
        if any(e not in self.evse_ids for e in evses):
            return "Rejected"
        busy = [e for e in evses if self.busy(e)]
        if evse_id is not None:  # one EVSE: reset when idle (B11), stop it first (B12)
            self.evse_resets.add(evse_id)
            if busy and kind == "Immediate":
                self.controller.request_stop(evse_id, StopReason.IMMEDIATE_RESET)
            self.spawn(self._reset_evses_soon(), "ocpp-evse-reset")  # after the answer
            return "Scheduled" if busy and kind == "OnIdle" else "Accepted"
        if self._reset_pending == "now":
            return "Rejected"  # one station reset under way (an Immediate overrides OnIdle)
        if kind == "OnIdle" and busy:
            self._reset_pending = "idle"  # carried out once every EVSE is idle (B11.FR.02)
            return "Scheduled"
        for e in busy:  # Immediate: stop what runs, then reset (B12)
            self.controller.request_stop(e, StopReason.IMMEDIATE_RESET)
        self._reset_pending = "now"
        self.spawn(self._restart_link("RemoteReset"), "ocpp-reset")
        return "Accepted"

    def _reset_when_idle(self) -> None:
        if self._reset_pending == "idle" and not any(self.busy(e) for e in self.evse_ids):
            self._reset_pending = "now"
            # BootReasonEnumType: a reset the CSMS scheduled for when the station is idle.
            self.spawn(self._restart_link("ScheduledReset"), "ocpp-reset")

    async def _reset_evses_soon(self) -> None:
        self.reset_evses()

    def reset_evses(self) -> None:
        """Carry out the EVSE resets that wait for their EVSE to be idle and safe (called
        by the 1-s ticker and right after a Reset); the rest are tried on the next tick.
        A reset EVSE keeps its persisted availability (G03.FR.06) and reports its status
        again."""
        for evse_id in sorted(self.evse_resets):
            if self.busy(evse_id) or not self.controller.reset_connector(evse_id):
                continue
            self.evse_resets.discard(evse_id)
            self.note(f"OCPP: EVSE {evse_id} reset")
            if self.stored(f"availability:{evse_id}") == "Inoperative":
                self.controller.set_availability(evse_id, False)
            self._status_sent.pop(evse_id, None)
            if self.online.is_set() and self.link is not None:
                self.spawn(self.send_statuses(self.link), "ocpp-status")

    async def _restart_link(self, boot_reason: str) -> None:
        """Reset of the station: the transactions it stopped end and their Ended events
        reach the CSMS first (B11 / B12: the reset follows the stop), then every
        connector's machine starts afresh (once idle and safe) and the OCPP side comes
        back with BootNotification(``boot_reason``). (Partial: the process itself does
        not restart.)"""
        await self.clock.sleep(RESET_ANSWER_S)  # the Reset answer goes out first
        end = self.clock.now() + RESET_STOP_S
        while any(self.tx.transaction_id(e) is not None for e in self.evse_ids) \
                and self.clock.now() < end:
            await self.clock.sleep(0.1)
        self.security.record("ResetOrReboot", f"Reset by the CSMS ({boot_reason})",
                             critical=True)
        await self.flush(RESET_FLUSH_S)
        self.boot_reason = boot_reason
        self.booted = False  # a reset station boots again
        self._status_sent.clear()  # a rebooted station reports every connector again
        self.evse_resets.update(self.evse_ids)  # and its connectors start afresh
        self.reset_evses()
        if self.link is not None:
            await self.link._connection.close()
        else:  # lost meanwhile: the next connection boots anyway
            self._reset_pending = None
