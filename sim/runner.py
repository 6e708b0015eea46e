"""Plays a scenario against the controller on simulated hardware, and reports.

``--speed N`` runs the ordinary event loop with every wait divided by N; ``--speed max``
runs on a looptime event loop (virtual time jumps ahead whenever nothing is runnable),
so a 45-minute session takes a few seconds of wall time.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import looptime

from firmware import words
from firmware.config import ChargerConfig
from firmware.core import events as ev
from firmware.core.transitions import Phase
from firmware.service import running
from hal.clock import Clock
from sim.battery import PRESETS
from sim.scenario import Step, check
from sim.world import SimWorld

POLL_S = 0.5  # how often a wait re-checks its condition (simulated seconds)


class ScenarioFailed(RuntimeError):
    pass


@dataclass
class Progress:
    """Live progress lines for a person watching (make run)."""

    out: TextIO = sys.stdout
    every_s: float = 60.0
    last: dict[int, float] = field(default_factory=dict)

    def on_command(self, evse_id: int, cmd: object, now: float) -> None:
        """Every screen change, as the driver at the bay would read it."""
        if isinstance(cmd, ev.Screen):
            headline, detail = words.screen_text(cmd)
            detail = f" ({detail})" if detail else ""
            self.out.write(f"[{_hms(now)}] bay {evse_id} screen: {cmd.phase.value}: "
                           f"{headline}{detail}\n")

    def show(self, world: SimWorld, now: float, force: bool = False) -> None:
        for evse_id, bay in world.bays.items():
            if bay.truck is None:
                continue
            if not force and now - self.last.get(evse_id, -1e9) < self.every_s:
                continue
            self.last[evse_id] = now
            st = world.controller.status(evse_id)
            soc = bay.truck.battery.soc_percent
            self.out.write(
                f"[{_hms(now)}] bay {evse_id} {st.phase.value:<13} {st.voltage_v:6.0f} V "
                f"{st.current_a:6.1f} A {st.voltage_v * st.current_a / 1000:6.1f} kW "
                f"{st.energy_wh / 1000:7.2f} kWh  SoC {soc:5.1f} %  {_hms(st.elapsed_s)}\n")
            self.out.flush()


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


async def play(world: SimWorld, steps: list[Step], progress: Progress | None = None,
               say: Callable[[str], None] | None = None) -> None:
    for step in steps:
        await do(world, step, progress, say)
    world.close_records()


async def do(world: SimWorld, step: Step, progress: Progress | None = None,
             say: Callable[[str], None] | None = None) -> None:
    """One scenario step, done to the running charger from outside (as a truck, a driver,
    the operator or the central system would). The control interface uses it too."""
    clock = world.clock
    check_against(world.config, [step], f"line {step.line}")
    if say:
        say(f"[{_hms(clock.now())}] {step.verb} {step.connector or ''} "
            f"{' '.join(step.args)}".rstrip())
    match step.verb:
        case "plug":
            world.plug(step.connector, step.args[0], float(step.options.get("soc", 20)),
                       float(step.options.get("target", 100)))
        case "authorize":
            await world.authorize(step.connector, step.args[0], step.args[1])
        case "csms":
            if world.station is None:
                raise ScenarioFailed(f"line {step.line}: no [ocpp] section in the config")
            await world.csms_switch(step.args[0] == "up")
        case "pay":
            await world.pay(step.connector, step.args[0] if step.args else "approve")
        case "press":
            world.press(step.connector, step.args[0])
        case "tap":
            await world.tap_card(step.connector, step.args[0])
        case "terminal":
            world.terminal_lost(step.args[0] == "down")
        case "stop":
            world.request_stop(step.connector, step.args[0] if step.args else "Local")
        case "unplug":
            world.unplug(step.connector)
        case "fault" | "clear":
            world.inject(step.connector, step.args[0], step.args[1:],
                         active=step.verb == "fault")
        case "sleep":
            await _sleep(world, step.seconds, progress)
        case "wait":
            phase = step.phase
            ok = await _wait(world, step.seconds, _in_phase(world, step.connector, phase),
                             progress)
            if not ok:
                got = world.controller.status(step.connector).phase.value
                raise ScenarioFailed(f"line {step.line}: connector {step.connector} did "
                                     f"not reach {phase.value if phase else '?'} "
                                     f"(it is {got})")
        case "wait-soc":
            target = float(step.args[0])
            ok = await _wait(world, step.seconds, _soc_reached(world, step.connector, target),
                             progress)
            if not ok:
                raise ScenarioFailed(f"line {step.line}: SoC {target} not reached")
        case "expect":
            now_in = world.controller.status(step.connector).phase
            if now_in is not step.phase:
                raise ScenarioFailed(f"line {step.line}: expected {step.phase}, "
                                     f"got {now_in}")


def check_against(config: ChargerConfig, steps: list[Step], name: str) -> None:
    """The steps held against this charger (ScenarioError naming the line)."""
    check(steps, [c.evse_id for c in config.connectors], PRESETS,
          config.power_stage.module_addresses, name)


def _in_phase(world: SimWorld, connector: int, phase: Phase | None) -> Callable[[], bool]:
    return lambda: world.controller.status(connector).phase is phase


def _soc_reached(world: SimWorld, connector: int, target: float) -> Callable[[], bool]:
    bay = world.bays[connector]
    return lambda: bay.truck is not None and bay.truck.battery.soc_percent >= target


async def _sleep(world: SimWorld, seconds: float, progress: Progress | None) -> None:
    """Let time pass, waking only to print progress."""
    clock = world.clock
    end = clock.now() + seconds
    while (left := end - clock.now()) > 1e-9:
        if progress is not None:
            progress.show(world, clock.now())
        await clock.sleep(min(left, progress.every_s if progress else left))


async def _wait(world: SimWorld, seconds: float, done: Callable[[], bool],
                progress: Progress | None) -> bool:
    clock = world.clock
    end = clock.now() + seconds
    while clock.now() < end:
        if done():
            return True
        if progress is not None:
            progress.show(world, clock.now())
        await clock.sleep(min(POLL_S, max(end - clock.now(), 0.0)))
    return done()


@dataclass
class Outcome:
    world: SimWorld
    error: str | None
    wall_s: float
    sim_s: float

    ocpp: dict[str, object] | None = None
    at_end: Any = None  # what ``run(at_end=...)`` saw after the last step, before the stop

    def report(self) -> dict[str, object]:
        out: dict[str, object] = {
            "sessions": [s.as_json() for s in self.world.sessions],
            "safety_violations": len(self.world.monitor.violations),
            "sim_s": round(self.sim_s, 1), "wall_s": round(self.wall_s, 3),
        }
        if self.world.monitor.violations:
            out["violations"] = [asdict(v) for v in self.world.monitor.violations[:20]]
        if self.ocpp is not None:
            out["ocpp"] = self.ocpp
        if self.error:
            out["error"] = self.error
        return out


async def _run(config: ChargerConfig, steps: list[Step], speed: float,
               progress: Progress | None, say: Callable[[str], None] | None,
               virtual: bool = False, csms_url: str | None = None,
               at_end: Callable[[SimWorld], Any] | None = None) -> Outcome:
    clock = Clock(speed, virtual=virtual)
    world = SimWorld(config, clock, say=say, csms_url=csms_url)
    wall = time.perf_counter()
    error = None
    ocpp = None
    seen: Any = None
    # The scenario drives the same service ``chargebay run`` is, built the same way.
    async with running(config, clock, world, say) as charger:
        if progress is not None:
            charger.controller.observers.append(progress.on_command)
        try:
            if not await world.until_online():
                raise ScenarioFailed("the OCPP station did not come online in 60 s")
            await play(world, steps, progress, say)
            if at_end is not None:
                seen = at_end(world)
            await world.settle()
        except ScenarioFailed as exc:
            error = str(exc)
        sim_s = clock.now()
        world.close_records()
        ocpp = world.ocpp_report()
    return Outcome(world, error, time.perf_counter() - wall, sim_s, ocpp, seen)


def run(config: ChargerConfig, steps: list[Step], speed: float | None,
        progress: Progress | None = None, say: Callable[[str], None] | None = None,
        csms_url: str | None = None, at_end: Callable[[SimWorld], Any] | None = None
        ) -> Outcome:
    """speed None = as fast as possible (virtual time)."""
    if speed is None:
        loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
        try:
            return loop.run_until_complete(_run(config, steps, 1.0, progress, say,
                                                virtual=True, csms_url=csms_url,
                                                at_end=at_end))
        finally:
            loop.close()
    return asyncio.run(_run(config, steps, speed, progress, say, csms_url=csms_url,
                            at_end=at_end))
