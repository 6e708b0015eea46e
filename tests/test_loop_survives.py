"""The control loop never dies silently (issue 16): a driver that raises, a vehicle task
that dies, a session machine that raises and a tick task that stops are each a fault the
controller sees, logs and survives: safe state on the plant, then the bay charges again.
The whole service on simulated hardware, in virtual time (looptime)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import can
import looptime
import pytest

from firmware import config as cfg
from firmware.charger import Charger
from firmware.core import events as ev
from firmware.core.transitions import Phase
from firmware.errors import ErrorCode
from firmware.service import running
from hal.clock import Clock
from sim.runner import play
from sim.scenario import parse
from sim.world import SimWorld

CONFIG = cfg.load(Path(__file__).resolve().parent.parent / "examples" / "sim.toml")
NO_OCPP = replace(CONFIG, extra={k: v for k, v in CONFIG.extra.items() if k != "ocpp"})
CHARGE = """
plug 1 eactros600 soc=30
authorize 1 rfid 04A1B2C3D4E5F6
wait 1 Charging timeout=2m
sleep 20s
"""
AGAIN = """
unplug 1
wait 1 Available timeout=2m
""" + CHARGE


def virtual(body: Any) -> Any:
    loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
    try:
        return loop.run_until_complete(body())
    finally:
        loop.close()


def plant_safe(world: SimWorld, evse: int = 1) -> bool:
    return not world.io.bays[evse].contactors and world.bays[evse].plant.current_a < 1.0


async def until(clock: Clock, done: Any, within_s: float) -> bool:
    end = clock.now() + within_s
    while clock.now() < end:
        if done():
            return True
        await clock.sleep(0.1)
    return bool(done())


class DownBus:
    """``ip link set can0 down`` under the driver: every call raises."""

    def __init__(self, real: can.BusABC) -> None:
        self.real = real

    def recv(self, timeout: float | None = None) -> None:
        raise can.CanOperationError("Network is down [Error Code 100]")

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        raise can.CanOperationError("Network is down [Error Code 100]")

    def shutdown(self) -> None:
        self.real.shutdown()


def test_can_interface_down_mid_session_is_comm_lost_not_a_dead_tick_nor_a_weld() -> None:
    async def body() -> dict[str, Any]:
        clock = Clock(1.0, virtual=True)
        world = SimWorld(NO_OCPP, clock)
        async with running(world.config, clock, world) as charger:
            ctl = charger.controller
            await play(world, parse(CHARGE))
            assert ctl.status(1).phase is Phase.CHARGING
            stage = ctl.power
            real = stage.bus  # type: ignore[attr-defined]
            stage.bus = DownBus(real)  # type: ignore[attr-defined]
            safe = await until(clock, lambda: plant_safe(world), 10.0)
            faults = set(ctl.status(1).faults)
            await clock.sleep(10.0)
            ticking = ctl.watchdog is not None and clock.now() - ctl.watchdog.last_beat < 1.0
            stage.bus = real  # type: ignore[attr-defined]
            await play(world, parse(AGAIN))
            return {"safe": safe, "faults": faults, "ticking": ticking,
                    "died": ctl.tasks.failures, "phase": ctl.status(1).phase,
                    "violations": [(v.at_s, v.rule, v.detail)
                                   for v in world.monitor.violations][:5],
                    "energy": [s.energy_kwh for s in world.sessions]}

    got = virtual(body)
    assert got["safe"] and got["ticking"] and got["died"] == 0
    assert ErrorCode.COMM_LOST in got["faults"]
    assert ErrorCode.WELDED_CONTACTOR not in got["faults"]  # the false latch of the break
    assert got["phase"] is Phase.CHARGING  # recovered: the next truck charges
    assert got["violations"] == []
    assert len(got["energy"]) == 2 and got["energy"][1] > 0.5


def test_a_vehicle_task_that_dies_ends_the_session_safely(
        caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> dict[str, Any]:
        clock = Clock(1.0, virtual=True)
        world = SimWorld(NO_OCPP, clock)
        async with running(world.config, clock, world) as charger:
            ctl = charger.controller
            await play(world, parse(CHARGE))
            link = ctl.connectors[1].link
            assert link is not None

            async def broken() -> Any:
                raise RuntimeError("decoder bug")

            link.receive = broken  # type: ignore[method-assign]
            await asyncio.sleep(0)
            safe = await until(clock, lambda: plant_safe(world), 10.0)
            stopped = ctl.status(1).phase
            await play(world, parse(AGAIN))
            return {"safe": safe, "stopped": stopped, "died": ctl.tasks.failures,
                    "phase": ctl.status(1).phase,
                    "violations": len(world.monitor.violations)}

    with caplog.at_level(logging.ERROR, logger="chargebay.loop"):
        got = virtual(body)
    assert got["safe"] and got["died"] == 1
    assert got["stopped"] is not Phase.CHARGING
    assert any("vehicle-1" in r.getMessage() for r in caplog.records)  # logged, named
    assert got["phase"] is Phase.CHARGING and got["violations"] == 0


def test_a_session_machine_that_raises_is_held_safe_then_starts_afresh(
        caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> dict[str, Any]:
        clock = Clock(1.0, virtual=True)
        world = SimWorld(NO_OCPP, clock)
        async with running(world.config, clock, world) as charger:
            ctl = charger.controller
            await play(world, parse(CHARGE))
            session = ctl.connectors[1].session

            def broken(event: object, now: float) -> list[Any]:
                raise ZeroDivisionError("a bug in the machine")

            session.handle = broken  # type: ignore[method-assign]
            safe = await until(clock, lambda: plant_safe(world), 5.0)
            fresh = await until(clock, lambda: ctl.connectors[1].session is not session, 20.0)
            await play(world, parse(AGAIN))
            return {"safe": safe, "fresh": fresh, "phase": ctl.status(1).phase,
                    "failures": dict(ctl.failures),
                    "other_bay": ctl.status(2).phase,
                    "violations": len(world.monitor.violations)}

    with caplog.at_level(logging.ERROR, logger="chargebay.loop"):
        got = virtual(body)
    assert got["safe"] and got["fresh"] and got["failures"].get("session", 0) >= 1
    assert got["other_bay"] is Phase.AVAILABLE
    assert got["phase"] is Phase.CHARGING and got["violations"] == 0


def test_a_replaced_machine_keeps_the_availability_it_was_given() -> None:
    """A connector the CSMS made Inoperative stays Unavailable through a machine that
    raised and was replaced (as across a reboot); an event from outside that makes the
    machine raise is contained, never the caller's exception."""
    async def body() -> tuple[Phase, bool, Phase, Phase]:
        clock = Clock(1.0, virtual=True)
        world = SimWorld(NO_OCPP, clock)
        async with running(world.config, clock, world) as charger:
            ctl = charger.controller
            ctl.set_availability(1, False)
            await clock.sleep(1.0)
            before = ctl.status(1).phase
            session = ctl.connectors[1].session

            def broken(event: object, now: float) -> list[Any]:
                raise ZeroDivisionError("a bug in the machine")

            session.handle = broken  # type: ignore[method-assign]
            ctl.dispatch(1, ev.Tick())  # raises inside: held safe, not here
            fresh = await until(clock, lambda: ctl.connectors[1].session is not session, 10.0)
            await clock.sleep(1.0)
            after = ctl.status(1).phase
            ctl.set_availability(1, True)
            await clock.sleep(1.0)
            return before, fresh, after, ctl.status(1).phase

    assert virtual(body) == (Phase.UNAVAILABLE, True, Phase.UNAVAILABLE, Phase.AVAILABLE)


def test_the_watchdog_notices_a_tick_task_that_stops_and_starts_it_again() -> None:
    async def body() -> dict[str, Any]:
        clock = Clock(1.0, virtual=True)
        world = SimWorld(NO_OCPP, clock)
        async with running(world.config, clock, world) as charger:
            ctl = charger.controller
            await play(world, parse(CHARGE))
            tick = next(t for t in ctl.tasks.running if t.get_name() == "control-tick")
            tick.cancel()  # a task that stops without an exception: only a watchdog sees it
            await clock.sleep(0.5)
            assert ctl.watchdog is not None
            silent_during = clock.now() - ctl.watchdog.last_beat
            safe = await until(clock, lambda: plant_safe(world), 5.0)
            await clock.sleep(2.0)
            beating = clock.now() - ctl.watchdog.last_beat < 0.5
            faults = set(ctl.status(1).faults)
            await play(world, parse(AGAIN))  # nothing latched: the bay charges again
            return {"silent": silent_during, "safe": safe, "beating": beating,
                    "barks": ctl.watchdog.barks, "violations": len(world.monitor.violations),
                    "charger": isinstance(charger, Charger), "faults": faults,
                    "phase": ctl.status(1).phase}

    got = virtual(body)
    assert got["silent"] >= 0.4  # the tick really stopped
    assert got["barks"] == 1 and got["safe"] and got["beating"]
    assert got["faults"]  # the board's rule acted (pilot F, contactors open): a fault stop
    assert got["phase"] is Phase.CHARGING and got["violations"] == 0
