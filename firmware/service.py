"""``chargebay run FILE``: the charger as one service, until SIGTERM or SIGINT.

The charger itself is built by the composition root (firmware/charger.py). With a
``[simulator]`` section the far ends of its wires are simulated: the simulator is found
by name among the installed plug-ins (entry point group ``chargebay.simulators``, as
python-can finds third-party interfaces), started first, and hands the charger the ends
of its wires; the product never imports it. Without that section every wire is real and
a missing device stops the start with one line naming it and its config key.

On SIGTERM/SIGINT the charger stops in order within ``charger.STOP_BOUND_S``
(docs/architecture.md "Stopping").
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import entry_points
from typing import Protocol

from firmware.charger import Charger
from firmware.charger import check as check_charger
from firmware.config import ChargerConfig, ConfigError
from firmware.drivers import HardwareMissing, Wires
from hal.clock import Clock

log = logging.getLogger("chargebay.service")
SIMULATOR_GROUP = "chargebay.simulators"


class Simulator(Protocol):
    """What a simulator plug-in offers the service: it owns the far end of every wire.
    Its factory (the class) also has ``check(config)`` for its own config section."""

    async def start(self) -> tuple[ChargerConfig, Wires]:
        """Bring up the simulated hardware; return the config with the wire endpoints
        it made (CAN channel, pty, CSMS address) and the wire ends to hand in."""

    def attach(self, charger: Charger) -> None:
        """The charger is running: watch it (reports, safety monitor) from outside."""

    async def close(self) -> None: ...


SimulatorFactory = Callable[..., Simulator]


def simulator_factory(name: str = "world") -> SimulatorFactory:
    """The installed simulator plug-in called ``name``."""
    found = entry_points(group=SIMULATOR_GROUP, name=name)
    for entry in found:
        factory: SimulatorFactory = entry.load()
        return factory
    raise ConfigError("simulator", f"no simulator plug-in {name!r} is installed "
                      f"(entry point group {SIMULATOR_GROUP})")


def check(config: ChargerConfig) -> None:
    """The whole file as ``chargebay run`` would take it: the charger's checks
    (firmware.charger.check) and the simulator's section, if there is one."""
    check_charger(config)
    if "simulator" in config.extra:
        simulator_factory().check(config)  # type: ignore[attr-defined]


@asynccontextmanager
async def running(config: ChargerConfig, clock: Clock, simulator: Simulator | None = None,
                  say: Callable[[str], None] | None = None) -> AsyncIterator[Charger]:
    """The charger started (with its simulator first, if any); stopped in order on exit."""
    wires = None
    if simulator is not None:
        config, wires = await simulator.start()
    try:
        charger = Charger.build(config, clock, wires, say=say)
        await charger.start()
        try:
            if simulator is not None:
                simulator.attach(charger)
            yield charger
        finally:
            report = await charger.stop()
            unsafe = ", ".join(f"{e}: {why}" for e, why in report["unsafe"])
            (log.error if unsafe else log.info)(
                "stopped: %s; %d OCPP messages kept queued for the next start",
                f"NOT SAFE {unsafe}" if unsafe else "every connector safe", report["queued"])
    finally:
        if simulator is not None:
            await simulator.close()


def run_service(config: ChargerConfig, say: Callable[[str], None] | None = None) -> int:
    """``chargebay run``: returns the exit status."""
    clock = Clock()
    make: Callable[[], Simulator] | None = None
    if "simulator" in config.extra:
        factory = simulator_factory()
        make = lambda: factory(config, clock, say=say)  # noqa: E731 - a new one per start
    try:
        asyncio.run(_serve(config, clock, make, say))
    except HardwareMissing as exc:
        print(f"chargebay: {exc}", file=sys.stderr)
        return 2
    return 0


async def _serve(config: ChargerConfig, clock: Clock, make: Callable[[], Simulator] | None,
                 say: Callable[[str], None] | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        simulator = make() if make is not None else None
        async with running(config, clock, simulator, say) as charger:
            log.info("chargebay %s running: %d connectors%s",
                     config.identity.charge_point_id, len(config.connectors),
                     ", simulated hardware" if simulator else "")
            reboot = asyncio.ensure_future(charger.reboot_requested.wait())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({reboot, stopped}, return_when=asyncio.FIRST_COMPLETED)
            reboot.cancel()
            stopped.cancel()
            if stop.is_set():
                log.info("stopping (signal): sessions end in order")
            else:  # the console's `reboot`: stopped in order, then built and started anew
                log.info("rebooting (console): sessions end in order")


__all__ = ["Simulator", "check", "run_service", "running", "simulator_factory"]
