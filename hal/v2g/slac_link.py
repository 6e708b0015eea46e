"""SLAC on one connector, as the pilot asks for it: the thin asyncio shell around the
pure ``Matcher`` (hal/v2g/slac.py) and the modem's raw socket (hal/v2g/slac_port.py).

``follow(True)`` when the vehicle is plugged with 5 % PWM starts a matching with a
fresh NMK/NID; ``follow(False)`` (unplugged, or the pilot left 5 %) aborts it and gives
the modem a random key of no session, so the last EV's network is left (ISO 15118-3:
TP_match_leave, 1 s; the loop reads the pilot every control tick, 0.1 s). The SECC asks
``admit()`` before it answers SDP or accepts TCP on this connector: only once an EV has
matched, and that first SDP request is the EV having joined. A matching that fails
(after the standard's retries, in the matcher) is reported once through ``on_failed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from hal import vehicle_link as vl
from hal.clock import Clock
from hal.v2g.slac import Matcher, Stage
from hal.v2g.slac_messages import QCA_LOCAL, Frame, SlacError
from hal.v2g.slac_port import PortStats

log = logging.getLogger("chargebay.slac")


class FramePort(Protocol):
    """What the shell needs of a modem interface (PacketPort, or a test's pair)."""

    mac: bytes
    stats: PortStats

    def start(self, on_frame: Callable[[Frame], None]) -> None: ...
    def send(self, frame: Frame) -> bool: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SlacRecord:
    """How one plug-in's matching ended (kept for reports and tests)."""

    outcome: str  # "joined", "failed", "left" (aborted by the pilot before a result)
    reason: str
    started_at: float
    ended_at: float
    failures: int  # failed attempts the standard's retries covered
    runs_seen: int  # EVs heard (a neighbour's EV through crosstalk included)
    ev_mac: bytes = b""


@dataclass
class SlacCounters:
    started: int = 0
    joined: int = 0
    failed: int = 0
    errors: int = 0  # the matcher raised something other than SlacError (a bug): dropped
    records: list[SlacRecord] = field(default_factory=list)


class SlacConnector:
    def __init__(self, connector: int, port: FramePort, clock: Clock,
                 on_failed: Callable[[int, str], None], modem_mac: bytes = QCA_LOCAL,
                 on_data_link: Callable[[int, bool], None] = lambda c, ready: None) -> None:
        self.connector = connector
        self.on_data_link = on_data_link  # (connector, matched): matching began / matched
        self.modem_mac = modem_mac
        self.port = port
        self.clock = clock
        self.on_failed = on_failed
        self.matcher: Matcher | None = None
        self.counters = SlacCounters()
        self._timer: asyncio.TimerHandle | None = None
        self._reported = False
        self._matched = False  # D-LINK_READY told for this plug-in

    def start(self) -> None:
        self.port.start(self._frame)

    def close(self) -> None:
        self._cancel()
        self.port.close()

    @property
    def stage(self) -> Stage | None:
        return self.matcher.stage if self.matcher is not None else None

    def follow(self, wanted: bool) -> None:
        """The pilot's word: a vehicle with 5 % PWM (True) or not (False)."""
        now = self.clock.now()
        if wanted and self.matcher is None:
            self.matcher = Matcher(self.port.mac, modem_mac=self.modem_mac)
            self._reported = self._matched = False
            self.counters.started += 1
            self._tell_data_link(False)
            self._after(self.matcher.start(now))
        elif not wanted and self.matcher is not None:
            matcher, self.matcher = self.matcher, None
            self._cancel()
            if matcher.stage is Stage.JOINED:
                self._record(matcher, "joined", "", now)
            elif not self._reported:  # (a failure was recorded when it happened)
                self._record(matcher, "left", f"aborted while {matcher.stage.value}", now)
            self._send(matcher.leave())

    def admit(self) -> bool:
        """May an EV's SDP request / TCP connection be served on this connector now?"""
        matcher = self.matcher
        if matcher is None or matcher.stage not in (Stage.MATCHED, Stage.JOINED):
            return False
        if matcher.stage is Stage.MATCHED:
            matcher.joined()
            self.counters.joined += 1
            self._cancel()  # the join timer no longer runs
        return True

    # --- the matcher's inputs -------------------------------------------------------------

    def _frame(self, frame: Frame) -> None:
        matcher = self.matcher
        if matcher is None:
            return  # no vehicle: nothing to match (a neighbour's EV, a modem's notice)
        try:
            out = matcher.on_frame(frame, self.clock.now())
        except SlacError:
            self.port.stats.malformed += 1
            return
        except Exception:  # a bug must not end SLAC on every connector: logged, dropped
            self.counters.errors += 1
            log.exception("connector %d: SLAC frame %#06x failed", self.connector,
                          frame.mmtype)
            return
        self._after(out)

    def _due(self) -> None:
        self._timer = None
        matcher = self.matcher
        if matcher is None:
            return
        try:
            out = matcher.on_time(self.clock.now())
        except Exception:
            self.counters.errors += 1
            log.exception("connector %d: SLAC timer failed", self.connector)
            return
        self._after(out)

    def _after(self, out: list[Frame]) -> None:
        self._send(out)
        matcher = self.matcher
        if matcher is None:
            return
        if matcher.stage is Stage.FAILED:
            self._cancel()
            if not self._reported:
                self._reported = True
                self.counters.failed += 1
                self._record(matcher, "failed", matcher.reason, self.clock.now())
                log.warning("connector %d: SLAC failed: %s", self.connector, matcher.reason)
                try:
                    self.on_failed(self.connector, matcher.reason)
                except Exception:  # reporting must not end the reader or the timer
                    self.counters.errors += 1
                    log.exception("connector %d: reporting the failure failed", self.connector)
            return
        if matcher.stage in (Stage.MATCHED, Stage.JOINED) and not self._matched:
            self._matched = True
            self._tell_data_link(True)
        self._arm(matcher.deadline)

    def _tell_data_link(self, ready: bool) -> None:
        try:
            self.on_data_link(self.connector, ready)
        except Exception:  # reporting must not end the reader or the timer
            self.counters.errors += 1
            log.exception("connector %d: reporting the data link failed", self.connector)

    def _send(self, frames: list[Frame]) -> None:
        for frame in frames:
            self.port.send(frame)

    def _arm(self, at: float | None) -> None:
        self._cancel()
        if at is not None:
            self._timer = self.clock.call_later(at - self.clock.now(), self._due)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _record(self, matcher: Matcher, outcome: str, reason: str, now: float) -> None:
        if len(self.counters.records) < 1000:
            self.counters.records.append(SlacRecord(
                outcome, reason, matcher.started_at, now, matcher.failures,
                matcher.runs_seen, matcher.ev_mac))


class FailedLink:
    """The VehicleLink handed to the controller when matching failed: its one request
    is LinkLost, so the core ends the plug-in in a safe state with its catalogue fault
    (vehicle_comm_lost, cleared on unplug) the way every lost link does."""

    def __init__(self, reason: str) -> None:
        self._reason: str | None = reason

    async def receive(self) -> vl.VehicleRequest:
        if self._reason is None:
            await asyncio.Event().wait()  # the loop ends the task after LinkLost
        reason, self._reason = self._reason, None
        return vl.LinkLost(f"SLAC: {reason}")

    def answer(self, response: vl.VehicleResponse) -> None:
        pass  # nothing on the wire to answer


class SlacLinks:
    """SLAC for every connector that names a modem interface: the driver's part between
    the pilot (``follow_pilot``), the SECC (``admit``) and the controller (``on_link``
    gets a FailedLink when matching failed)."""

    def __init__(self, modems: dict[int, str], clock: Clock,
                 port: Callable[[str], FramePort] | None = None,
                 modem_macs: dict[int, bytes] | None = None) -> None:
        self.modems = modems  # connector -> modem interface
        self.modem_macs = modem_macs or {}  # connector -> its modem's management address
        self.clock = clock
        self._port = port
        self.connectors: dict[int, SlacConnector] = {}
        self._on_link: Callable[[int, vl.VehicleLink], None] = lambda c, link: None
        self.on_data_link: Callable[[int, bool], None] = lambda c, ready: None

    def open(self, on_link: Callable[[int, vl.VehicleLink], None]) -> None:
        """Opens every modem's raw socket; PortError (naming the interface and why)
        for the first that cannot be, with the ones opened so far closed again."""
        from hal.v2g.slac_port import PacketPort

        self._on_link = on_link
        try:
            for connector, interface in self.modems.items():
                if self._port is not None:
                    port = self._port(interface)
                else:
                    packet = PacketPort(interface)
                    packet.open()
                    port = packet
                slac = SlacConnector(connector, port, self.clock, self._failed,
                                     self.modem_macs.get(connector, QCA_LOCAL),
                                     lambda c, ready: self.on_data_link(c, ready))
                self.connectors[connector] = slac
                slac.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for slac in self.connectors.values():
            slac.close()
        self.connectors.clear()

    def follow_pilot(self, connector: int, state: str, duty_percent: float) -> None:
        slac = self.connectors.get(connector)
        if slac is None:
            return
        # IEC 61851-1 A.2: 5 % duty = digital communication; ISO 15118-3: matching runs
        # while the vehicle is connected (B, or C/D once it asked for energy) at 5 %.
        slac.follow(state in ("B", "C", "D") and abs(duty_percent - 5.0) < 0.5)

    def admit(self, connector: int) -> bool:
        slac = self.connectors.get(connector)
        if slac is None:
            return connector not in self.modems  # no modem: no SLAC to wait for
        return slac.admit()

    def _failed(self, connector: int, reason: str) -> None:
        self._on_link(connector, FailedLink(reason))
