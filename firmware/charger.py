"""The composition root: the whole charger, built from its config, in one place.

Nothing else wires drivers. ``Charger.build`` picks each hardware role's driver by name
from the registry (firmware/drivers.py), builds the controller (the control loop around
the core's machines) and, with an ``[ocpp]`` section, the OCPP station; the roles later
issues fill (screen, card reader, payment terminal, meter, console) keep an empty slot.
``chargebay run`` and the simulator's scenario player both build it this way; the
simulator only hands in the far ends of the wires (firmware/drivers.py ``Wires``).

Start order: IO board first (it holds the contactors open and the pilot at F until the
controller speaks), then the power stage, the control tick, the vehicle links, OCPP.
Stop order (``stop``), bounded in time (docs/architecture.md "Stopping"):
1. every running session ends in order (StopRequested "Reboot": ramp down, contactors
   open, output below 60 V, lock released), up to SESSIONS_STOP_S;
2. the OCPP station gets up to OCPP_FLUSH_S to deliver what is queued (the Ended events);
   what it cannot deliver stays in its SQLite queue and goes out after the next start;
3. the station, the vehicle links and the drivers close (IO board: contactors open,
   pilot F; power stage: modules off).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import serial

from firmware import drivers
from firmware.authorization import Authorization
from firmware.bay.compose import BayParts
from firmware.bay.compose import check as check_bay
from firmware.config import ChargerConfig, ConfigError
from firmware.console.settings import parse as parse_console
from firmware.core.events import DataLinkChanged, StopReason
from firmware.drivers import HardwareMissing, Wires
from firmware.loop import Controller
from firmware.ocpp.settings import OcppSettings, OcppSettingsError
from firmware.ocpp.settings import parse as parse_ocpp
from firmware.ocpp.v201.device_model import VARIABLES as DEVICE_VARIABLES
from firmware.security_log import SecurityLog
from hal.clock import Clock
from hal.io_board import IoBoard
from hal.power_stage import PowerStage
from hal.vehicle_link import FollowsPilot, VehicleLinks

log = logging.getLogger("chargebay.charger")

SESSIONS_STOP_S = 12.0  # ramp-down 2 s + contactor drop-out + discharge < 60 V + unlock 2 s
OCPP_FLUSH_S = 5.0
STOP_BOUND_S = SESSIONS_STOP_S + OCPP_FLUSH_S + 3.0  # what docs/architecture.md promises
SHUTDOWN_REASON = StopReason.REBOOT  # OCPP ReasonEnumType for a controller being stopped

Say = Callable[[str], None]


def check(config: ChargerConfig) -> None:
    """Everything ``build`` would refuse, as a ConfigError naming the key: driver names
    and the sections other parts own."""
    drivers.check(config)
    if "ocpp" in config.extra:
        _ocpp_settings(config)
    check_bay(config)
    if "console" in config.extra:
        parse_console(config.extra["console"])


def _ocpp_settings(config: ChargerConfig) -> OcppSettings:
    """The [ocpp] section, parsed; a bad key is the ConfigError that names it."""
    try:
        return parse_ocpp(dict(config.extra["ocpp"]),
                          {(v.component, v.name) for v in DEVICE_VARIABLES})
    except OcppSettingsError as exc:
        raise ConfigError(exc.key, exc.reason) from None


@dataclass
class Charger:
    config: ChargerConfig
    clock: Clock
    power: PowerStage
    io: IoBoard
    vehicle_links: VehicleLinks
    controller: Controller
    authorization: Authorization  # every token source feeds it (card reader, app, payment)
    security: SecurityLog  # every part records its security events here
    station: Any = None  # firmware.ocpp.v201.station.Station with an [ocpp] section
    # Slots that later issues fill; None until their driver exists.
    slots: dict[str, Any] = field(default_factory=lambda: {
        "screen": None, "card_reader": None, "payment": None, "meter": None,
        "console": None})
    # Set by the console's `reboot`: the service stops the charger in order and starts it
    # again (firmware/service.py).
    reboot_requested: asyncio.Event = field(default_factory=asyncio.Event)
    _started: list[str] = field(default_factory=list)
    _closed: bool = False  # stop() and cut_power() close once; later calls do nothing

    @classmethod
    def build(cls, config: ChargerConfig, clock: Clock, wires: Wires | None = None,
              say: Say | None = None) -> Charger:
        drivers.check(config)  # the [ocpp] section is parsed (and so checked) below
        check_bay(config)
        wires = wires or Wires()
        power = drivers.build("power_stage", config, clock, wires)
        io = drivers.build("io_board", config, clock, wires)
        links = drivers.build("vehicle_link", config, clock, wires)
        controller = Controller(config, clock, power, io)
        if isinstance(links, FollowsPilot):  # iso15118: SLAC starts on B with 5 % PWM
            controller.pilot_followers.append(links.follow_pilot)
            def data_link(evse: int, ready: bool) -> None:  # (told from inside the pilot
                clock.call_later(0.0, controller.dispatch, evse, DataLinkChanged(ready))
            links.on_data_link = data_link  # command: dispatched on the loop's next turn)
        authorization = Authorization(controller, clock.now)
        # Wall time for the security log runs with the (maybe virtual) clock; the OCPP
        # station, when there is one, is the better source (the CSMS sets the time).
        t0, utc0 = clock.now(), datetime.now(UTC)
        security = SecurityLog(lambda: utc0 + timedelta(seconds=clock.now() - t0))
        charger = cls(config, clock, power, io, links, controller, authorization, security)
        if "ocpp" in config.extra:
            # The station is one of the authorization's sources (remote start) and its
            # backend (Authorize, local list, cache, offline policy).
            from firmware.ocpp.storage import StateDirError
            from firmware.ocpp.v201.station import Station

            settings = _ocpp_settings(config)
            try:
                charger.station = Station(controller, settings, clock, say=say,
                                          ping_interval=None if clock.virtual else 30.0,
                                          authorization=authorization, security=security)
            except StateDirError as exc:  # one line from `chargebay run`, exit 2
                raise HardwareMissing("ocpp.state_dir", f"state file {exc.path}",
                                      f"{exc.reason}; {exc.todo}") from None
        # The bay: prices, the screen, the card terminal and the card reader.
        terminal = drivers.build("payment", config, clock, wires)
        reader = drivers.build("card_reader", config, clock, wires)
        bay = BayParts.build(config, clock, controller, authorization, terminal, reader,
                              say)
        charger.slots.update(screen=bay, payment=terminal, card_reader=reader)
        if bay is not None and charger.station is not None:
            charger.station.bay = bay.shell  # display messages, CostUpdated, remote stop
            bay.shell.utc = charger.station.utc  # display messages' start and end times
            bay.shell.messages.keep_in(charger.station.kv)  # they survive a restart
        if "console" in config.extra:
            from firmware.console.server import Console

            charger.slots["console"] = Console(
                charger, parse_console(config.extra["console"]), say=say,
                reboot=charger.reboot_requested.set)
        return charger

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the hardware and start every part. HardwareMissing if a device is not
        there (everything opened so far is closed again)."""
        try:
            await self._start_controller()
            self._started.append("controller")
            await self.vehicle_links.start(self.controller.attach_vehicle)
            self._started.append("vehicle_links")
            if self.station is not None:
                await self.station.start()
                self._started.append("station")
            if self.slots["screen"] is not None:
                self._started.append("bay")  # first: a half-started bay is closed too
                try:
                    await self.slots["screen"].start()
                except (OSError, serial.SerialException) as exc:  # only the reader opens
                    reason = getattr(exc, "strerror", None) or str(exc)
                    port = getattr(self.slots["card_reader"], "port_name", "?")
                    raise HardwareMissing("card_reader.port", f"serial device {port}",
                                          reason) from None
            if self.slots["console"] is not None:
                await self.slots["console"].start()
                self._started.append("console")
        except BaseException:
            await self._close_started()
            raise

    async def _start_controller(self) -> None:
        """The controller opens the IO board (the only driver that opens a device in
        ``start``: the CAN bus opened in its factory); a missing device becomes one
        HardwareMissing naming it and its config key."""
        board = self.config.io_board
        try:
            await self.controller.start()
        except (OSError, serial.SerialException) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise HardwareMissing("io_board.port", f"serial device {board.port}",
                                  reason) from None

    async def stop(self) -> dict[str, Any]:
        """Ordered, bounded shutdown (module docstring). Returns what it found, for the
        log and the tests: which connectors were not safe in time, what stayed queued."""
        report: dict[str, Any] = {"unsafe": [], "queued": 0}
        if "controller" in self._started:
            report["unsafe"] = await self.controller.shutdown_sessions(SHUTDOWN_REASON,
                                                                       SESSIONS_STOP_S)
            for evse_id, why in report["unsafe"]:
                log.error("connector %d not safe after %.0f s: %s", evse_id,
                          SESSIONS_STOP_S, why)
        if "station" in self._started:
            report["queued"] = await self.station.flush(OCPP_FLUSH_S)
        await self._close_started()
        return report

    async def cut_power(self) -> None:
        """What a power cut leaves behind: every part closed where it stands, no session
        ended, nothing flushed (the OCPP queue holds what was written before). For the
        power-loss tests in one process; on a cabinet it is SIGKILL or the mains."""
        await self._close_started()

    async def _close_started(self) -> None:
        if self._closed:
            return
        self._closed = True
        if "console" in self._started:  # started last, stopped first
            await self.slots["console"].stop()
        if "bay" in self._started:
            await self.slots["screen"].close()
        if "station" in self._started:
            await self.station.stop()
        self.authorization.close()
        if "vehicle_links" in self._started:
            await self.vehicle_links.close()
        if "controller" in self._started:
            await self.controller.stop()  # outputs off, IO board safe, drivers closed
        else:
            await self.power.close()  # the CAN bus its factory opened
        self._started.clear()
