"""A scriptable CSMS fixture: the real controller on simulated hardware, the real OCPP
station, and the local CSMS, all on one virtual-time loop (looptime).

    def test_x():
        async def body(r: OcppRig) -> None:
            await r.expect("BootNotification")
            await r.command("GetVariables", {...})
        run_rig(body)

``expect(action, subset, within)`` waits (in simulated seconds) for a message from the
station whose payload contains ``subset``; ``command(action, payload)`` sends a CALL and
returns the answer; ``raw(text)`` sends any frame and returns the station's raw reply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import looptime

from firmware import config as cfg
from firmware.core.transitions import Phase
from firmware.service import running
from hal.clock import Clock
from sim.scenario import parse
from sim.world import SimWorld

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "sim.toml"
CP_ID = "CB-SIM-0001"


def subset(want: Any, got: Any) -> bool:
    """Every key of ``want`` is in ``got`` with a matching value (recursively)."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and subset(v, got[k])
                                             for k, v in want.items())
    return bool(want == got)


class OcppRig:
    """The charger as ``chargebay run`` builds it (firmware.service.running), on the
    simulated world, with the local CSMS as the test system."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world
        assert world.csms is not None and world.station is not None
        self.csms = world.csms
        self.station = world.station
        self.clock = world.clock

    async def expect(self, action: str, want: dict[str, Any] | None = None,
                     within: float = 60.0, after: int = 0) -> dict[str, Any]:
        return await self.csms.wait_for(action, lambda p: subset(want or {}, p), within,
                                        after)

    def mark(self) -> int:
        return len(self.csms.received)

    async def command(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.csms.send(CP_ID, action, payload)

    async def raw(self, text: str, within: float = 5.0) -> list[Any]:
        """Send a raw frame to the station; the first reply frame that is not a CALL."""
        seen = len(self.csms.frames)
        await self.csms.sessions[CP_ID]._send(text)
        end = self.clock.now() + within
        while self.clock.now() < end:
            for frame in self.csms.frames[seen:]:
                msg = json.loads(frame)
                if msg[0] != 2:
                    return list(msg)
            await self.clock.hold(asyncio.sleep(0.001))
            await self.clock.sleep(0.01)
        raise TimeoutError("no reply frame")

    async def play(self, script: str) -> None:
        from sim.runner import play

        await play(self.world, parse(script), None, None)

    def phase(self, evse: int = 1) -> Phase:
        return self.world.controller.status(evse).phase

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)


_STATION_PARTS = {"Station", "Handlers", "Authorizer", "Delivery", "ConnectionLoop"}


def station_tasks() -> list[str]:
    """Pending tasks running the station's code (by the coroutine's class, or an
    ``ocpp-`` task name): none may be left once Station.stop() has returned."""
    out = []
    for task in asyncio.all_tasks():
        name = getattr(task.get_coro(), "__qualname__", "")
        if name.split(".")[0] in _STATION_PARTS or task.get_name().startswith("ocpp"):
            out.append(f"{task.get_name()} {name}")
    return out


def run_rig(body: Callable[[OcppRig], Awaitable[None]], *, state_dir: Path | None = None,
            variables: dict[str, str] | None = None, boot_status: str = "Accepted",
            tokens: list[str] | None = None, power_cut: bool = False,
            sections: dict[str, Any] | None = None,
            ocpp: dict[str, Any] | None = None) -> None:
    """``power_cut``: end with the power going (no ordered stop, no Ended sent), as a
    restart test needs; else the charger stops in order as on SIGTERM. ``ocpp``: more
    ``[ocpp]`` keys (e.g. on_storage_loss)."""
    config = cfg.load(CONFIG)
    section = dict(config.extra["ocpp"])
    if state_dir is not None:
        section["state_dir"] = str(state_dir)
    if variables:
        section["variables"] = variables
    section.update(ocpp or {})
    extra = {**config.extra, "ocpp": section}
    if tokens is not None:
        extra["simulator"] = {**extra.get("simulator", {}), "tokens": tokens}
    extra.update(sections or {})  # more config sections (the bay's: tariff, screen, ...)
    config = replace(config, extra=extra)
    left: list[str] = []

    async def main() -> None:
        clock = Clock(1.0, virtual=True)
        world = SimWorld(config, clock, csms_boot_status=boot_status)
        async with running(config, clock, world) as charger:
            if boot_status == "Accepted":
                assert await world.until_online()
            await body(OcppRig(world))
            if power_cut:
                await charger.cut_power()
        left.extend(station_tasks())  # the stop cancelled and awaited the station's own
        # Follow-ups the package started with ensure_future (after-handlers) die here.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert not left, f"station tasks left after stop(): {left}"
