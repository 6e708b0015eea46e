"""The console's shell: one session on the configured device, inside the charger's
event loop.

Input is read when the device is readable (at most READ_CHUNK bytes a turn) and fed to
the pure session; output goes through a bounded buffer written when the device takes it.
If nobody reads (no terminal, a stuck cable) the buffer fills and what does not fit is
dropped and counted, so the charger never waits on the console. A device that goes
away (cable pulled) is closed and opened again every REOPEN_S until it is back; the
session survives (a logged-in engineer who plugs back in finds the prompt again, until
the idle logout).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import serial

from firmware.console import commands, passwords
from firmware.console.context import Context
from firmware.console.records import ErrorHistory, ForwardWarnings, RingHandler
from firmware.console.session import Out, Record, Run, Session, Verify
from firmware.console.settings import ConsoleSettings
from firmware.tasks import TaskOwner
from hal.console_port import PTY, ConsolePort, PortGone

log = logging.getLogger("chargebay.console")
READ_CHUNK = 1024
OUTPUT_LIMIT = 64 * 1024  # bytes waiting for the terminal; beyond it output is dropped
REOPEN_S = 1.0
TICK_S = 1.0

Say = Callable[[str], None]


# The OCPP library logs every message it sends and receives at INFO on logger "ocpp"; the
# console keeps those lines (its `ocpp` command) without printing them: while any console
# runs, that logger is at INFO, does not propagate, and hands WARNING and worse on.
_ocpp_users: list[RingHandler] = []
_ocpp_saved: list[tuple[int, bool]] = []
_FORWARD = ForwardWarnings()


def _capture_ocpp(ring: RingHandler) -> None:
    ocpp_log = logging.getLogger("ocpp")
    if not _ocpp_users:
        _ocpp_saved[:] = [(ocpp_log.level, ocpp_log.propagate)]
        ocpp_log.setLevel(logging.INFO)
        ocpp_log.propagate = False
        ocpp_log.addHandler(_FORWARD)
    _ocpp_users.append(ring)
    ocpp_log.addHandler(ring)


def _release_ocpp(ring: RingHandler) -> None:
    ocpp_log = logging.getLogger("ocpp")
    ocpp_log.removeHandler(ring)
    if ring in _ocpp_users:
        _ocpp_users.remove(ring)
        if not _ocpp_users and _ocpp_saved:
            level, propagate = _ocpp_saved[0]
            ocpp_log.setLevel(level)
            ocpp_log.propagate = propagate
            ocpp_log.removeHandler(_FORWARD)


class Console:
    def __init__(self, charger: Any, settings: ConsoleSettings, say: Say | None = None,
                 reboot: Callable[[], None] | None = None) -> None:
        self.charger = charger
        self.settings = settings
        self.say = say
        self.clock = charger.clock
        ident = charger.config.identity
        evse_ids = tuple(charger.controller.connectors)
        self.session = Session(ident.charge_point_id, settings.max_failures,
                               settings.lockout_s, settings.idle_logout_s,
                               lambda typed: commands.complete(typed, evse_ids))
        self.port = ConsolePort(settings.device, settings.baud)
        self.log_ring = RingHandler()
        self.traffic = RingHandler(keep=200)
        self.errors = ErrorHistory(self._utc, lambda e: tuple(
            str(c) for c in charger.controller.status(e).faults))
        self.ctx = Context(charger, settings, self.log_ring, self.traffic, self.errors,
                           self._utc, self.stats)
        if reboot is not None:
            self.ctx.extra["reboot"] = reboot
        self.tasks = TaskOwner("console")
        self.output_dropped = 0
        self.opens = 0
        self._out = bytearray()
        self._open = False
        self._gone = asyncio.Event()

    def _utc(self) -> datetime:
        station = self.charger.station
        return station.utc() if station is not None else datetime.now(UTC)

    def stats(self) -> dict[str, int]:
        s, e = self.session.counters, self.session.editor.stats
        return {"opens": self.opens, "output_dropped": self.output_dropped,
                "garbage": e.garbage, "overlong": e.overlong, "escapes": e.escapes,
                "flood_dropped": s.flood_dropped, "busy_dropped": s.busy_dropped,
                "locked_dropped": s.locked_dropped, "logins": s.logins,
                "failures": s.failures, "lockouts": s.lockouts}

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        logging.getLogger("chargebay").addHandler(self.log_ring)
        _capture_ocpp(self.traffic)
        self.charger.controller.observers.append(self.errors.observe)
        self.tasks.spawn(self._serve(), "console-serve")
        self.tasks.spawn(self._ticker(), "console-tick")

    async def stop(self) -> None:
        if self.errors.observe in self.charger.controller.observers:
            self.charger.controller.observers.remove(self.errors.observe)
        self._close_port()  # first: no callback may start a task while they stop
        await self.tasks.stop()
        logging.getLogger("chargebay").removeHandler(self.log_ring)
        _release_ocpp(self.traffic)

    # --- the device ------------------------------------------------------------------------

    async def _serve(self) -> None:
        missing_said = False
        while True:
            try:
                name = self.port.open()
            except (OSError, serial.SerialException) as exc:
                if not missing_said:  # once per absence, not every second
                    log.warning("console device %s not there (%s); waiting for it",
                                self.settings.device, exc)
                    missing_said = True
                await self.clock.sleep(REOPEN_S)
                continue
            missing_said = False
            self.opens += 1
            self._open = True
            self._gone.clear()
            line = f"console on {name}"
            log.info("%s%s", line, "" if self.settings.device == PTY
                     else f" at {self.settings.baud} baud")
            if self.say is not None and self.opens == 1:
                self.say(line)
            loop = asyncio.get_running_loop()
            loop.add_reader(self.port.fileno(), self._readable)
            self._emit(self.session.connected(self.clock.now()))
            await self._gone.wait()
            self._close_port()
            log.warning("console device %s went away; waiting for it", name)
            await self.clock.sleep(REOPEN_S)

    def _close_port(self) -> None:
        if self._open:
            loop = asyncio.get_running_loop()
            fd = self.port.fileno()
            loop.remove_reader(fd)
            loop.remove_writer(fd)
            self._open = False
        self.port.close()
        self._out.clear()

    def _lost(self) -> None:
        if self._open:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self.port.fileno())
            loop.remove_writer(self.port.fileno())
        self._gone.set()

    def _readable(self) -> None:
        try:
            data = self.port.read(READ_CHUNK)
        except PortGone:
            self._lost()
            return
        if data:
            self._emit(self.session.feed(data, self.clock.now()))

    def _write(self, data: bytes | bytearray) -> None:
        if not self._open or self._gone.is_set():
            return
        room = OUTPUT_LIMIT - len(self._out)
        if len(data) > room:
            self.output_dropped += len(data) - max(room, 0)
            data = data[:max(room, 0)]
        was_empty = not self._out
        self._out += data
        if was_empty:
            self._flush()

    def _flush(self) -> None:
        try:
            while self._out:
                sent = self.port.write(bytes(self._out[:4096]))
                if sent == 0:
                    break
                del self._out[:sent]
        except PortGone:
            self._lost()
            return
        loop = asyncio.get_running_loop()
        if self._out:
            loop.add_writer(self.port.fileno(), self._flush)
        else:
            loop.remove_writer(self.port.fileno())

    # --- the session's requests --------------------------------------------------------

    def _emit(self, out: Out) -> None:
        if out.data:
            self._write(out.data)
        for request in out.requests:
            match request:
                case Record(kind, info, critical):
                    self.charger.security.record(kind, info, critical)
                case Verify(user, password):
                    self.tasks.spawn(self._verify(user, password), "console-login")
                case Run(user, role, line):
                    self.tasks.spawn(self._run(user, role, line), "console-command")

    async def _verify(self, user: str, password: str) -> None:
        entry = self.settings.users.get(user)
        stored = entry.password if entry is not None else passwords.dummy_hash()
        # scrypt takes tens of milliseconds: off the event loop, so control never waits.
        ok = await asyncio.to_thread(passwords.verify, password, stored)
        ok = ok and entry is not None
        self._emit(self.session.verified(ok, entry.role if entry else None,
                                         self.clock.now()))

    async def _run(self, user: str, role: str, line: str) -> None:
        self.ctx.user, self.ctx.role = user, role
        text = await commands.run(self.ctx, line)
        self._emit(self.session.finished(text, self.clock.now()))

    async def _ticker(self) -> None:
        while True:
            await self.clock.sleep(TICK_S)
            self._emit(self.session.tick(self.clock.now()))
