"""The control interface of a running simulated charger (``chargebay run
examples/sim.toml``): one line in, one line out, on 127.0.0.1 only.

    $ chargebay drive plug 1 eactros600 soc=20
    ok
    $ chargebay drive authorize 1 rfid 04A1B2C3D4E5F6
    ok
    $ chargebay drive status
    {"1": {"phase": "Charging", "voltage_v": 731.2, ...}, "2": {...}}

A line is a scenario command (docs/scenarios.md: plug, authorize, stop, unplug, fault,
clear, csms, wait, sleep, expect, ...) or ``status``. The answer is ``ok``, the status
as one JSON object, or ``error: WHY``. A bad line is answered and changes nothing; the
connection stays open for the next line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from firmware.config import ChargerConfig
from firmware.drivers import HardwareMissing, Wires
from sim.runner import ScenarioFailed, do
from sim.scenario import parse_line
from sim.world import SimWorld

log = logging.getLogger("chargebay.sim.control")
MAX_LINE = 1024


class ControlServer:
    def __init__(self, world: SimWorld, address: str) -> None:
        host, _, port = address.rpartition(":")
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"the control interface listens on loopback only, not {host!r}")
        self.world = world
        self.host, self.port = host, int(port)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._client, self.host, self.port,
                                                      limit=MAX_LINE)
        except OSError as exc:  # the port is taken (another simulated charger runs)
            raise HardwareMissing("simulator.control", f"control port {self.host}:"
                                  f"{self.port}", exc.strerror or str(exc)) from None
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("simulator control interface on %s:%d", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    raw = await reader.readline()
                except ValueError:  # a line longer than MAX_LINE
                    writer.write(b"error: line too long\n")
                    break
                if not raw:
                    break
                writer.write((await self.execute(raw.decode("utf-8", "replace")) + "\n")
                             .encode())
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def execute(self, line: str) -> str:
        text = line.strip()
        if self.world.charger is None:
            return "error: the charger is not running yet"
        if text == "status":
            return json.dumps(self.status())
        try:
            step = parse_line(text, 1)
            if step is None:
                return "error: empty line"
            if step.connector and step.connector not in self.world.bays:
                return f"error: no connector {step.connector}"
            await do(self.world, step)
        except (ValueError, ScenarioFailed, ConnectionError) as exc:
            return f"error: {exc}"
        except Exception as exc:  # a bad command must not take the simulator down
            log.exception("control command %r failed", text)
            return f"error: {type(exc).__name__}: {exc}"
        return "ok"

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for evse_id, bay in self.world.bays.items():
            st = self.world.controller.status(evse_id)
            truck = bay.truck
            out[str(evse_id)] = {
                "phase": st.phase.value, "voltage_v": round(st.voltage_v, 1),
                "current_a": round(st.current_a, 1),
                "energy_kwh": round(st.energy_wh / 1000.0, 3),
                "soc": None if truck is None else round(truck.battery.soc_percent, 1),
                "faults": list(st.faults), "stop_reason": st.stop_reason}
        station = self.world.station
        out["ocpp_online"] = None if station is None else station.online.is_set()
        out["safety_violations"] = len(self.world.monitor.violations)
        return out


class ControlledWorld(SimWorld):
    """The simulator plug-in ``chargebay run`` loads: the world, driven from outside
    through the control interface while the charger runs."""

    control: ControlServer | None = None

    async def start(self) -> tuple[ChargerConfig, Wires]:
        wired = await super().start()
        address = self.section.get("control")
        if address:  # bound now, so a busy port fails the start; served once attached
            control = ControlServer(self, str(address))
            try:
                await control.start()
            except BaseException:
                await super().close()
                raise
            self.control = control
        return wired

    async def close(self) -> None:
        if self.control is not None:
            await self.control.close()
        await super().close()
